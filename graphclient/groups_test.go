package graphclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// memberOf answers checkMemberGroups with groups.
func memberOf(groups ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]any{"value": groups})
		w.Write(b)
	}
}

func TestCheckMemberGroupsAsksTwentyAtATime(t *testing.T) {
	var ids []string
	for i := range 25 {
		ids = append(ids, fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	}
	s := &script{answers: []func(http.ResponseWriter, *http.Request){memberOf(ids[3]), memberOf(ids[22])}}
	c, _ := newTestClient(t, s)
	got, _, err := c.CheckMemberGroups(context.Background(), tokens, ids)
	if err != nil || !slices.Equal(got, []string{ids[3], ids[22]}) {
		t.Fatalf("member of %v, %v", got, err)
	}
	if s.count() != 2 || s.received[0].URL.Path != "/v1.0/me/checkMemberGroups" {
		t.Errorf("%d requests, first to %s", s.count(), s.received[0].URL.Path)
	}
	var first struct {
		GroupIDs []string `json:"groupIds"`
	}
	json.Unmarshal([]byte(s.bodies[0]), &first)
	if len(first.GroupIDs) != 20 {
		t.Errorf("first request checked %d ids, want 20", len(first.GroupIDs))
	}
	if _, _, err := c.CheckMemberGroups(context.Background(), tokens, []string{"help-desk"}); err == nil || s.count() != 2 {
		t.Errorf("a group name that is not an id: %v, %d requests", err, s.count())
	}
}
