package emulator

import (
	"encoding/json"
	"net/http"
	"slices"

	"autopilotdesk/graphclient/guid"
)

// checkMemberGroups answers POST /me/checkMemberGroups: which of up to 20 group ids the caller
// belongs to. Graph allows it with User.Read or any broader directory permission.
func (e *Emulator) checkMemberGroups(a answer, r *http.Request, p Principal, body []byte) {
	if r.Method != http.MethodPost {
		a.fail(http.StatusMethodNotAllowed, "Request_BadRequest", "The HTTP method is not allowed for the resource.")
		return
	}
	if !hasScope(p, "User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All") {
		a.fail(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	var in struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.GroupIDs) == 0 {
		a.fail(http.StatusBadRequest, "Request_BadRequest", "Invalid request: groupIds must be a non-empty list of group ids.")
		return
	}
	if len(in.GroupIDs) > 20 {
		a.fail(http.StatusBadRequest, "Request_BadRequest", "Invalid request: too many groupIds; at most 20 are allowed.")
		return
	}
	member := []string{}
	for _, id := range in.GroupIDs {
		if !guid.Valid(id) {
			a.fail(http.StatusBadRequest, "Request_BadRequest", "Invalid GUID:"+id)
			return
		}
		if slices.Contains(p.Groups, id) && !slices.Contains(member, id) {
			member = append(member, id)
		}
	}
	a.json(http.StatusOK, map[string]any{"@odata.context": metadata("v1.0", "Collection(Edm.String)"), "value": member})
}
