package web

import (
	"context"
	"errors"

	"golang.org/x/oauth2"
)

// OwnerTokens lends work that goes on outside any request (an import a person started) that
// person's own delegated token, from one of their live sessions, renewed through TokenFor like
// a request's. Using a session this way neither touches nor extends it: when its person goes
// idle it ends, and the work waits.
type OwnerTokens struct {
	Sessions interface {
		LiveSessionsOfUser(ctx context.Context, userKey string) ([]string, error)
	}
	Shell *Shell
}

// OwnerToken is a token of a live session of userKey (tid:oid); refused, when set, is a token
// Microsoft Graph answered 401 to. ErrSessionEnded means the person has no live session.
func (o OwnerTokens) OwnerToken(ctx context.Context, userKey, refused string) (oauth2.TokenSource, error) {
	keys, err := o.Sessions.LiveSessionsOfUser(ctx, userKey)
	if err != nil {
		return nil, errStateUnavailable(err)
	}
	for _, key := range keys {
		ts, err := o.Shell.TokenFor(ctx, key, refused)
		if errors.Is(err, ErrSessionEnded) {
			continue // that session could not be renewed; another may
		}
		return ts, err
	}
	return nil, ErrSessionEnded
}
