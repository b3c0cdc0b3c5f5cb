package identity_test

import (
	"slices"
	"testing"

	"autopilotdesk/web/identity"
)

func TestCloudTable(t *testing.T) {
	for _, tc := range []struct{ name, login, graph string }{
		{"global", "https://login.microsoftonline.com", "https://graph.microsoft.com"},
		{"usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"},
		{"usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
		{" China ", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"},
	} {
		c, err := identity.CloudByName(tc.name)
		if err != nil || c.LoginHost != tc.login || c.GraphRoot != tc.graph {
			t.Errorf("%q: %+v, %v", tc.name, c, err)
			continue
		}
		if got, want := c.Issuer("tid-1"), tc.login+"/tid-1/v2.0"; got != want {
			t.Errorf("%q issuer %q, want %q", tc.name, got, want)
		}
		want := []string{"openid", "profile", "offline_access", tc.graph + "/DeviceManagementServiceConfig.ReadWrite.All"}
		if got := c.DefaultScopes(); !slices.Equal(got, want) {
			t.Errorf("%q scopes %q", tc.name, got)
		}
	}
	if _, err := identity.CloudByName("germany"); err == nil {
		t.Error("an unknown cloud was accepted")
	}
}
