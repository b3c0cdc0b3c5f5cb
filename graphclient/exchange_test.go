package graphclient

import (
	"errors"
	"testing"

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
