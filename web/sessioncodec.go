package web

import (
	"encoding/json"
	"fmt"
)

// SessionCodec stores the desk's session values as one JSON document of a known shape: the
// signed-in user, the tokens and string values (the CSRF token, a form kept across a sign-in).
// Decoding it costs a fraction of gob's, which compiles its types again for every session read.
type SessionCodec struct{}

type sessionRecord struct {
	User    *SessionUser      `json:"user,omitempty"`
	Tokens  *SessionTokens    `json:"tokens,omitempty"`
	Strings map[string]string `json:"strings,omitempty"`
}

// Encode implements store.SessionCodec. A value of any other kind is a programming error and
// is refused, so it cannot vanish silently on the next read.
func (SessionCodec) Encode(values map[any]any) ([]byte, error) {
	var rec sessionRecord
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("session key %v: only string keys can be stored", k)
		}
		switch v := v.(type) {
		case SessionUser:
			if key != valUser {
				return nil, fmt.Errorf("session key %q: a user is stored under %q only", key, valUser)
			}
			rec.User = &v
		case SessionTokens:
			if key != valTokens {
				return nil, fmt.Errorf("session key %q: tokens are stored under %q only", key, valTokens)
			}
			rec.Tokens = &v
		case string:
			if key == valUser || key == valTokens {
				return nil, fmt.Errorf("session key %q holds a string", key)
			}
			if rec.Strings == nil {
				rec.Strings = make(map[string]string, len(values))
			}
			rec.Strings[key] = v
		default:
			return nil, fmt.Errorf("session key %q: values of type %T cannot be stored", key, v)
		}
	}
	return json.Marshal(rec)
}

// Decode implements store.SessionCodec.
func (SessionCodec) Decode(data []byte) (map[any]any, error) {
	var rec sessionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("session record: %w", err)
	}
	values := make(map[any]any, len(rec.Strings)+4)
	if rec.User != nil {
		values[valUser] = *rec.User
	}
	if rec.Tokens != nil {
		values[valTokens] = *rec.Tokens
	}
	for k, v := range rec.Strings {
		values[k] = v
	}
	return values, nil
}
