package graphclient

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/guid"
)

// checkMemberGroupsLimit is how many group ids Graph checks in one request.
const checkMemberGroupsLimit = 20

// CheckMemberGroups asks Graph which of groupIDs the signed-in user belongs to, directly or
// through other groups (POST /me/checkMemberGroups, allowed with User.Read). The desk asks when
// the ID token could not list the user's groups (Entra's overage past 200 groups). Ids that are
// not GUIDs are refused before anything is sent; more than 20 ids take several requests.
func (c *Client) CheckMemberGroups(ctx context.Context, ts oauth2.TokenSource, groupIDs []string) ([]string, *Exchange, error) {
	for _, id := range groupIDs {
		if !guid.Valid(id) {
			return nil, nil, invalidID("A group id", id)
		}
	}
	var member []string
	var last *Exchange
	for start := 0; start < len(groupIDs); start += checkMemberGroupsLimit {
		chunk := groupIDs[start:min(start+checkMemberGroupsLimit, len(groupIDs))]
		var out struct {
			Value []string `json:"value"`
		}
		ex, err := c.do(ctx, ts, call{op: "check-member-groups", method: http.MethodPost, url: c.base + "/me/checkMemberGroups",
			body: jsonBody(struct {
				GroupIDs []string `json:"groupIds"`
			}{chunk})}, &out)
		last = ex
		if err != nil {
			return nil, ex, err
		}
		member = append(member, out.Value...)
	}
	return member, last, nil
}
