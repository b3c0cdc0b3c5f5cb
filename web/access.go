package web

import (
	"encoding/json"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

const valWriteRefused = "writeRefused"

// WriteAccess is what the desk can honestly say about whether the signed-in person may change
// Autopilot devices. It is never guessed from a name or a group: a person is read-only when their
// token's granted scopes name the read permission and not the write one, or once Microsoft Graph
// refused one of their changes with 403 (remembered for the rest of the session). Otherwise the
// desk offers the change and lets Graph decide. Facts only; the pages put them into words.
type WriteAccess struct {
	ReadOnly  bool
	ByScopes  bool      // the token's granted scopes say so
	RefusedAt time.Time // else: when Graph refused a change with 403
	GraphSaid string    // and what Graph said
}

type writeRefusal struct {
	At   time.Time `json:"at"`
	Said string    `json:"said"` // Graph's message
}

// Access is the signed-in person's WriteAccess.
func Access(c echo.Context) WriteAccess {
	sess := Session(c)
	if sess == nil {
		return WriteAccess{}
	}
	if raw, ok := sess.Values[valWriteRefused].(string); ok {
		var r writeRefusal
		if json.Unmarshal([]byte(raw), &r) == nil {
			return WriteAccess{ReadOnly: true, RefusedAt: r.At, GraphSaid: r.Said}
		}
	}
	tokens, _ := sess.Values[valTokens].(SessionTokens)
	if g := graphclient.GrantedBy(tokens.Scope); g.Read && !g.Write {
		return WriteAccess{ReadOnly: true, ByScopes: true}
	}
	return WriteAccess{}
}

// RememberWriteRefused records that Graph refused a change of the signed-in person with 403, so
// the rest of their session shows pages without change controls.
func RememberWriteRefused(c echo.Context, at time.Time, graphSaid string) error {
	sess := Session(c)
	st := state(c)
	if sess == nil || sess.ID == "" || st.shell == nil {
		return nil
	}
	b, err := json.Marshal(writeRefusal{At: at, Said: graphSaid})
	if err != nil {
		return err
	}
	sess.Values[valWriteRefused] = string(b)
	// Under the session's lock, so tokens another request renewed meanwhile are not overwritten.
	_, err = st.shell.sessions.UpdateLocked(c.Request().Context(), store.SessionKey(sess.ID), func(values map[any]any) (store.SessionChange, error) {
		values[valWriteRefused] = string(b)
		return store.SaveSession, nil
	})
	return err
}
