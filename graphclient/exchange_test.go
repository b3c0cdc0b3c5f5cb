package graphclient

import "testing"

// The exchanges of one operation read as one: every attempt in order, the rest from the last.
func TestJoinedKeepsEveryAttemptInOrder(t *testing.T) {
	first := &Exchange{Attempts: []Attempt{{URL: "1"}}, Outcome: OutcomeUnknown}
	second := &Exchange{Attempts: []Attempt{{URL: "2"}, {URL: "3"}}, Reconciliation: &Reconciliation{Looked: true}}
	j := Joined(first, nil, second)
	if len(j.Attempts) != 3 || j.Attempts[0].URL != "1" || j.Attempts[2].URL != "3" || j.Outcome != "" || j.Reconciliation == nil {
		t.Errorf("joined %+v", j)
	}
	if len(first.Attempts) != 1 || len(second.Attempts) != 2 {
		t.Error("joining changed the exchanges joined")
	}
	if j := Joined(nil, first); j == nil || len(j.Attempts) != 1 || j.Outcome != OutcomeUnknown {
		t.Errorf("one exchange: %+v", j)
	}
	if Joined() != nil || Joined(nil, nil) != nil {
		t.Error("no exchange joined into one")
	}
}
