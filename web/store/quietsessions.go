package store

import (
	"context"
	"errors"
	"fmt"
)

// Work that continues on a person's behalf outside any request (an import they started) borrows
// the tokens of one of their live sessions. These methods read and write such a session without
// counting as use: its last-seen time never moves, so it still ends when its person goes idle or
// reaches its lifetime, whatever the background work does.

// LiveSessionsOf lists the id hashes of userKey's sessions that are neither idle nor past their
// lifetime, the most recently used first.
func (s *SessionStore) LiveSessionsOf(ctx context.Context, userKey string) ([]string, error) {
	if userKey == "" {
		return nil, errors.New("store: live sessions: empty user key")
	}
	now := s.db.now()
	var ids []string
	err := s.db.queryAll(ctx, `SELECT id_hash FROM sessions WHERE user_key = ? AND last_seen_at >= ? AND absolute_expires_at > ? ORDER BY last_seen_at DESC LIMIT 20`,
		[]any{userKey, ms(now.Add(-s.opts.IdleTimeout)), ms(now)}, func(scan func(...any) error) error {
			var id string
			err := scan(&id)
			ids = append(ids, id)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: live sessions: %w", err)
	}
	return ids, nil
}

// LoadQuietly reads the values of a live session without touching it; ok is false when the
// session has ended.
func (s *SessionStore) LoadQuietly(ctx context.Context, idHash string) (values map[any]any, ok bool, err error) {
	now := s.db.now()
	var data []byte
	var userKey string
	err = s.db.queryRow(ctx, `SELECT data, user_key FROM sessions WHERE id_hash = ? AND last_seen_at >= ? AND absolute_expires_at > ?`,
		[]any{idHash, ms(now.Add(-s.opts.IdleTimeout)), ms(now)}, &data, &userKey)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: load session: %w", err)
	}
	if values, err = s.opts.Codec.Decode(data); err != nil {
		return nil, false, nil
	}
	if userKey != "" {
		values[userKeyName] = userKey
	}
	return values, true, nil
}

// SaveQuietly writes the values of a live session, leaving its last-seen time as it is. A
// session that ended meanwhile gives ErrNotFound and is not brought back.
func (s *SessionStore) SaveQuietly(ctx context.Context, idHash string, values map[any]any) error {
	kept := make(map[any]any, len(values))
	for k, v := range values {
		if k != userKeyName {
			kept[k] = v
		}
	}
	data, err := s.opts.Codec.Encode(kept)
	if err != nil {
		return fmt.Errorf("store: encode session: %w", err)
	}
	c := s.db.sessionCache
	defer c.lock(idHash)()
	now := s.db.now()
	n, err := s.db.execCount(ctx, `UPDATE sessions SET data = ? WHERE id_hash = ? AND last_seen_at >= ? AND absolute_expires_at > ?`,
		data, idHash, ms(now.Add(-s.opts.IdleTimeout)), ms(now))
	c.remove(idHash) // the next request reads the row again
	if err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// EndQuietly deletes a session whose tokens can no longer be renewed.
func (s *SessionStore) EndQuietly(ctx context.Context, idHash string) error {
	return s.db.deleteSession(ctx, idHash)
}
