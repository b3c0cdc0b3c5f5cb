package handlers

import (
	"context"
	"log/slog"

	"autopilotdesk/web/store"
)

// AuditedLog records activity and writes the same event as a structured audit line, so a SIEM
// sees every create, change, delete, import and sync without reading the database.
type AuditedLog struct {
	ActivityLog
	Log *slog.Logger
}

// RecordActivity records a, then logs it with "audit": true (never the exchange or any hash).
func (l AuditedLog) RecordActivity(ctx context.Context, a *store.Activity) error {
	if err := l.ActivityLog.RecordActivity(ctx, a); err != nil {
		return err
	}
	l.audit(ctx, a)
	return nil
}

// RecordSubmission records a with its form key done, then logs it as RecordActivity does.
func (l AuditedLog) RecordSubmission(ctx context.Context, a *store.Activity, formKey string) error {
	if err := l.ActivityLog.RecordSubmission(ctx, a, formKey); err != nil {
		return err
	}
	l.audit(ctx, a)
	return nil
}

func (l AuditedLog) audit(ctx context.Context, a *store.Activity) {
	l.Log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.Bool("audit", true), slog.String("event", a.Action), slog.String("outcome", a.Outcome),
		slog.String("activity_id", a.ID), slog.String("tid", a.TenantID), slog.String("oid", a.ObjectID),
		slog.String("upn", a.ActorUPN), slog.String("target", a.Target), slog.Int("status", a.StatusCode),
		slog.String("request_id", a.RequestID), slog.String("client_request_id", a.ClientRequestID),
		slog.String("summary", a.Summary))
}
