package graphclient

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

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

// A call Graph refuses with 401 is sent once more with a renewed token, never a third time, and
// the exchange keeps both attempts; any other answer is final.
func TestWithRenewalSendsOnceMoreAfterA401(t *testing.T) {
	first := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "old"})
	renewed := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "new"})
	refusedWith := ""
	renew := func(refused oauth2.TokenSource) (oauth2.TokenSource, error) {
		tok, _ := refused.Token()
		refusedWith = tok.AccessToken
		return renewed, nil
	}
	var sent []string
	call := func(answer error) func(oauth2.TokenSource) (int, *Exchange, error) {
		return func(ts oauth2.TokenSource) (int, *Exchange, error) {
			tok, _ := ts.Token()
			sent = append(sent, tok.AccessToken)
			ex := &Exchange{Attempts: []Attempt{{URL: tok.AccessToken}}}
			if tok.AccessToken == "old" || answer != nil {
				return 0, ex, &Error{Kind: KindUnauthorized, StatusCode: 401}
			}
			return 7, ex, nil
		}
	}
	v, ex, err := WithRenewal(first, renew, call(nil))
	if err != nil || v != 7 || refusedWith != "old" || len(sent) != 2 || sent[1] != "new" || len(ex.Attempts) != 2 {
		t.Errorf("renewed call: %v %v, refused %q, sent %v, exchange %+v", v, err, refusedWith, sent, ex)
	}
	sent = nil
	if _, ex, err := WithRenewal(first, renew, call(errors.New("still refused"))); !isUnauthorized(err) || len(sent) != 2 || len(ex.Attempts) != 2 {
		t.Errorf("refused twice: %v, sent %v", err, sent)
	}
	sent = nil
	if _, _, err := WithRenewal(renewed, func(oauth2.TokenSource) (oauth2.TokenSource, error) {
		t.Error("renewed without a 401")
		return nil, nil
	}, call(nil)); err != nil || len(sent) != 1 {
		t.Errorf("a good token: %v, sent %v", err, sent)
	}
	sent = nil
	gone := errors.New("session ended")
	if _, ex, err := WithRenewal(first, func(oauth2.TokenSource) (oauth2.TokenSource, error) { return nil, gone }, call(nil)); !errors.Is(err, gone) || len(sent) != 1 || ex == nil {
		t.Errorf("renewal refused: %v, sent %v, exchange %+v", err, sent, ex)
	}
}

func isUnauthorized(err error) bool {
	ge, ok := AsError(err)
	return ok && ge.Kind == KindUnauthorized
}

// A look without an id takes a match for the create sent only when it is the one match the
// caller has no record of creating; a miss is "not created" only once Graph has had time to
// list a new upload.
func TestJudgeALookForALostCreate(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	a, b := Upload{ID: "a"}, Upload{ID: "b"}
	for _, c := range []struct {
		name       string
		matches    []Upload
		recorded   map[string]bool
		settles    time.Time
		found      string
		undecided  int
		notCreated bool
		waits      bool
	}{
		{name: "one unknown match", matches: []Upload{a}, recorded: map[string]bool{}, settles: now.Add(time.Minute), found: "a"},
		{name: "one earlier create and one unknown", matches: []Upload{a, b}, recorded: map[string]bool{"a": true}, settles: now, found: "b"},
		{name: "only earlier creates, late enough", matches: []Upload{a}, recorded: map[string]bool{"a": true}, settles: now, notCreated: true},
		{name: "only earlier creates, too soon", matches: []Upload{a}, recorded: map[string]bool{"a": true}, settles: now.Add(time.Second), waits: true},
		{name: "two unknown matches", matches: []Upload{a, b}, recorded: map[string]bool{}, settles: now, undecided: 2},
		{name: "the history cannot say", matches: []Upload{a}, recorded: nil, settles: now, undecided: 1},
		{name: "nothing, too soon", recorded: map[string]bool{}, settles: now.Add(time.Minute), waits: true},
		{name: "nothing, late enough", recorded: map[string]bool{}, settles: now, notCreated: true},
	} {
		rc := &Reconciliation{Looked: true, Matches: c.matches}
		rc.Judge(c.recorded, c.settles, now)
		found := ""
		if rc.Found != nil {
			found = rc.Found.ID
		}
		if found != c.found || rc.Undecided() != c.undecided || rc.NotCreated() != c.notCreated || !rc.NotUntil.IsZero() != c.waits {
			t.Errorf("%s: found %q, undecided %d, not created %v, not until %v", c.name, found, rc.Undecided(), rc.NotCreated(), rc.NotUntil)
		}
	}
	partial := &Reconciliation{Looked: true, Partial: true}
	if partial.Judge(map[string]bool{}, now, now); partial.NotCreated() {
		t.Error("a look that did not read every page shows the create was not made")
	}
}
