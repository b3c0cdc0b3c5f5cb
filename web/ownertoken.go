package web

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// quietSessions is what work done on someone's behalf outside any request needs from the session
// store: their live sessions, read and written without counting as use, so a session still ends
// when its person goes idle or reaches the session's lifetime.
type quietSessions interface {
	LiveSessionsOf(ctx context.Context, userKey string) ([]string, error)
	LoadQuietly(ctx context.Context, idHash string) (map[any]any, bool, error)
	SaveQuietly(ctx context.Context, idHash string, values map[any]any) error
	EndQuietly(ctx context.Context, idHash string) error
}

// OwnerToken returns a Graph token from a live session of userKey (tid:oid), for work that
// continues on that person's behalf outside any request, such as an import they started. The
// session is neither touched nor extended; its tokens are renewed, when due or when force is set,
// through the same renewal as requests. ErrSessionEnded means the person has no live session:
// the work waits until they sign in again.
func (s *Shell) OwnerToken(ctx context.Context, userKey string, force bool) (oauth2.TokenSource, error) {
	store, ok := s.sessions.(quietSessions)
	if !ok {
		return nil, errors.New("web: the session store cannot lend tokens to background work")
	}
	ids, err := store.LiveSessionsOf(ctx, userKey)
	if err != nil {
		return nil, fmt.Errorf("find sessions: %w", errStateUnavailable(err))
	}
	for _, id := range ids {
		h := quietSession{store: store, idHash: id, userKey: userKey}
		tok, ok, err := h.reload(ctx)
		if err != nil {
			return nil, fmt.Errorf("read session: %w", errStateUnavailable(err))
		}
		if !ok {
			continue
		}
		if !force && tok.AccessToken != "" && s.now().Add(renewBefore).Before(tok.Expiry) {
			return oauth2.StaticTokenSource(tok.oauth2()), nil
		}
		next, err := s.renew(ctx, h, tok, force)
		if errors.Is(err, ErrSessionEnded) {
			continue // that session cannot be renewed; another may
		}
		if err != nil {
			return nil, err
		}
		return oauth2.StaticTokenSource(next.oauth2()), nil
	}
	return nil, ErrSessionEnded
}

// quietSession is one of a person's sessions, lent to background work.
type quietSession struct {
	store           quietSessions
	idHash, userKey string
}

func (q quietSession) lockKey() string { return q.idHash }
func (q quietSession) who() string     { return q.userKey }

func (q quietSession) reload(ctx context.Context) (SessionTokens, bool, error) {
	values, ok, err := q.store.LoadQuietly(ctx, q.idHash)
	if err != nil || !ok {
		return SessionTokens{}, false, err
	}
	if u, _ := values[valUser].(SessionUser); u.Key() != q.userKey {
		return SessionTokens{}, false, nil
	}
	t, _ := values[valTokens].(SessionTokens)
	return t, true, nil
}

func (q quietSession) save(ctx context.Context, t SessionTokens) error {
	values, ok, err := q.store.LoadQuietly(ctx, q.idHash)
	if err != nil {
		return err
	}
	if !ok {
		return ErrSessionEnded
	}
	values[valTokens] = t
	return q.store.SaveQuietly(ctx, q.idHash, values)
}

func (q quietSession) end(ctx context.Context) { _ = q.store.EndQuietly(ctx, q.idHash) }
