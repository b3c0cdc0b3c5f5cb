// Package jsonbatch is the wire format of Microsoft Graph's JSON batching (POST /$batch) as Graph
// documents it: the requests a batch carries and the answers it returns. The client writes
// requests and reads answers; the emulator reads requests and writes answers.
package jsonbatch

import "encoding/json"

// Limit is how many requests Graph takes in one JSON batch.
const Limit = 20

// Request is one request of a batch, its URL relative to the version root (/users, not
// https://graph.microsoft.com/v1.0/users).
type Request struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// Response is Graph's answer to one request of a batch, matched to it by ID.
type Response struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Batch is the body of POST /$batch.
type Batch struct {
	Requests []Request `json:"requests"`
}

// Answer is the body of Graph's answer to a batch; the responses come in any order.
type Answer struct {
	Responses []Response `json:"responses"`
}
