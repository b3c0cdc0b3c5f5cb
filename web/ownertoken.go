package web

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/web/store"
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

// RememberWriteRefused records, in every live session of userKey (tid:oid), that Microsoft Graph
// refused a change of theirs with 403 for their role or permissions, as RememberWriteRefused does
// for a request: a background job met the refusal with their token, and their pages, in any
// session and on any desk, offer no more changes.
func (o OwnerTokens) RememberWriteRefused(ctx context.Context, userKey string, at time.Time, graphSaid string) error {
	b, err := json.Marshal(writeRefusal{At: at, Said: graphSaid})
	if err != nil {
		return err
	}
	keys, err := o.Sessions.LiveSessionsOfUser(ctx, userKey)
	if err != nil {
		return errStateUnavailable(err)
	}
	for _, key := range keys {
		if _, err := o.Shell.sessions.UpdateLocked(ctx, key, func(values map[any]any) (store.SessionChange, error) {
			if _, ok := values[valWriteRefused]; ok {
				return store.KeepSession, nil
			}
			values[valWriteRefused] = string(b)
			return store.SaveSession, nil
		}); err != nil {
			return err
		}
	}
	return nil
}
