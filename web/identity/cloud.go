package identity

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// PersonalAccountsTenantID is the tenant Microsoft gives every personal Microsoft account
// (outlook.com, hotmail.com); the Intune APIs do not accept them.
const PersonalAccountsTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Cloud is one Microsoft cloud: where people sign in and where Microsoft Graph answers.
type Cloud struct {
	Name, LoginHost, GraphRoot string
	// otherLoginHosts are older names of its sign-in host that issuers may carry.
	otherLoginHosts []string
}

var clouds = []Cloud{
	{Name: "global", LoginHost: "https://login.microsoftonline.com", GraphRoot: "https://graph.microsoft.com",
		otherLoginHosts: []string{"login.windows.net", "sts.windows.net"}},
	{Name: "usgov", LoginHost: "https://login.microsoftonline.us", GraphRoot: "https://graph.microsoft.us"},
	{Name: "usgovdod", LoginHost: "https://login.microsoftonline.us", GraphRoot: "https://dod-graph.microsoft.us"},
	{Name: "china", LoginHost: "https://login.partner.microsoftonline.cn", GraphRoot: "https://microsoftgraph.chinacloudapi.cn",
		otherLoginHosts: []string{"login.chinacloudapi.cn"}},
}

// SignsInAt reports whether host (a host name, any letter case) is one of this cloud's sign-in hosts.
func (c Cloud) SignsInAt(host string) bool {
	host = strings.ToLower(host)
	return strings.TrimPrefix(c.LoginHost, "https://") == host || slices.Contains(c.otherLoginHosts, host)
}

// CloudsOfLoginHost are the clouds whose sign-in host is host (US Government's two share one);
// none for any other host, such as another provider's.
func CloudsOfLoginHost(host string) []Cloud {
	var of []Cloud
	for _, c := range clouds {
		if c.SignsInAt(host) {
			of = append(of, c)
		}
	}
	return of
}

// CloudOfGraph returns the cloud whose Microsoft Graph root is rawURL (any letter case, with or
// without a path); ok is false for any other address, such as an emulator's.
func CloudOfGraph(rawURL string) (_ Cloud, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Cloud{}, false
	}
	for _, c := range clouds {
		if root, _ := url.Parse(c.GraphRoot); strings.EqualFold(u.Scheme, root.Scheme) && strings.EqualFold(u.Host, root.Host) {
			return c, true
		}
	}
	return Cloud{}, false
}

// CloudByName returns the cloud configured as name: global, usgov, usgovdod or china.
func CloudByName(name string) (Cloud, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	names := make([]string, 0, len(clouds))
	for _, c := range clouds {
		if c.Name == want {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return Cloud{}, fmt.Errorf("identity: unknown cloud %q (use one of %s)", name, strings.Join(names, ", "))
}

// Issuer is the issuer of a tenant's ID tokens in this cloud.
func (c Cloud) Issuer(tenantID string) string { return c.LoginHost + "/" + tenantID + "/v2.0" }

// DefaultScopes are what the desk asks for; the Graph host inside the permission must be the
// cloud's own, or Entra issues a token for the wrong Graph.
func (c Cloud) DefaultScopes() []string {
	return []string{"openid", "profile", "offline_access", c.GraphRoot + "/DeviceManagementServiceConfig.ReadWrite.All"}
}

// GroupCheckScope is the permission the desk adds when sign-in is limited to groups: with it,
// Graph says which groups a user belongs to when their ID token cannot list them all.
func (c Cloud) GroupCheckScope() string { return c.GraphRoot + "/User.Read" }
