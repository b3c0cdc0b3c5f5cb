package store

import (
	"context"
	"errors"
	"time"
)

// maxFlowAge caps a sign-in flow's life whatever a caller asks for.
const maxFlowAge = 10 * time.Minute

// FlowRecord is a sign-in in progress, bound to the browser that started it. Only a hash of ID
// is stored.
type FlowRecord struct {
	ID, State, Nonce, Verifier, ReturnTo string
	CreatedAt                            time.Time
	Data                                 []byte // form values to restore after sign-in
}

// PutFlow stores a flow; CreatedAt defaults to now.
func (db *DB) PutFlow(ctx context.Context, f FlowRecord) error {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = db.now()
	}
	_, err := db.exec(ctx, `INSERT INTO flows (id_hash, state, nonce, verifier, return_to, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hashID(f.ID), f.State, f.Nonce, f.Verifier, f.ReturnTo, f.Data, ms(f.CreatedAt))
	return err
}

// ErrOtherFlow is TakeFlow's answer to a callback whose state is not the flow's: the answer of
// another sign-in, or a forged one. The flow stays, to finish with its own answer.
var ErrOtherFlow = errors.New("the callback's state is another sign-in's")

// TakeFlow removes and returns the flow in one statement, so a replayed callback finds nothing.
// Only the answer with the flow's state takes it (ErrOtherFlow otherwise). A missing, used, or
// expired flow (older than maxAge, and never older than 10 minutes) is ErrNotFound.
func (db *DB) TakeFlow(ctx context.Context, id, state string, maxAge time.Duration) (FlowRecord, error) {
	f := FlowRecord{ID: id}
	var created int64
	err := db.queryRow(ctx, `DELETE FROM flows WHERE id_hash = ? AND state = ? RETURNING state, nonce, verifier, return_to, data, created_at`,
		[]any{hashID(id), state}, &f.State, &f.Nonce, &f.Verifier, &f.ReturnTo, &f.Data, &created)
	if errors.Is(err, ErrNotFound) {
		var one int
		switch err := db.queryRow(ctx, `SELECT 1 FROM flows WHERE id_hash = ? AND created_at > ?`,
			[]any{hashID(id), ms(db.now().Add(-min(maxAge, maxFlowAge)))}, &one); {
		case err == nil:
			return FlowRecord{}, ErrOtherFlow
		case !errors.Is(err, ErrNotFound):
			return FlowRecord{}, err
		}
		return FlowRecord{}, ErrNotFound
	}
	if err != nil {
		return FlowRecord{}, err
	}
	f.CreatedAt = fromMS(created)
	if db.now().Sub(f.CreatedAt) > min(maxAge, maxFlowAge) {
		return FlowRecord{}, ErrNotFound
	}
	return f, nil
}

// FlowPending says whether a sign-in flow with this state was started and is neither finished nor
// expired. A callback that brings no flow cookie yet names a pending flow was started where the
// browser kept its cookie: at another address of the desk.
func (db *DB) FlowPending(ctx context.Context, state string) (bool, error) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM flows WHERE state = ? AND created_at > ?`, []any{state, ms(db.now().Add(-maxFlowAge))}, &one)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
