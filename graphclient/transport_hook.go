package graphclient

import "net/http"

// SetTransport replaces the transport of a client that is not yet in use. The bench command
// uses it to count the upstream connections the desk opens.
func (c *Client) SetTransport(rt http.RoundTripper) { c.http.Transport = rt }
