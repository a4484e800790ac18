package metadata

import (
	"context"
	"time"
)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Seq      int64
	At       time.Time
	Actor    string // username, or what was typed for failed logins
	Action   string // e.g. login, logout, user.disable
	Target   string
	IP       string
	Provider string
	Outcome  string // success, failure, denied
	Details  string // JSON object
}

// InsertAudit appends an event, filling in Seq and (if zero) At.
func (q q) InsertAudit(ctx context.Context, e *AuditEvent) error {
	if e.At.IsZero() {
		e.At = q.now().UTC()
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	return q.d.translate(q.row(ctx, `INSERT INTO audit (at, actor, action, target, ip, provider, outcome, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`, micros(e.At), e.Actor, e.Action, e.Target, e.IP, e.Provider,
		e.Outcome, e.Details).Scan(&e.Seq))
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string
	Since  time.Time
	Until  time.Time
	// Before is a cursor: only events with Seq < Before.
	Before int64
	Limit  int
}

// Audit returns events matching f, newest first.
func (q q) Audit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error) {
	query := `SELECT seq, at, actor, action, target, ip, provider, outcome, details FROM audit WHERE 1 = 1`
	var args []any
	if f.Actor != "" {
		query += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		query += ` AND action = ?`
		args = append(args, f.Action)
	}
	if !f.Since.IsZero() {
		query += ` AND at >= ?`
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		query += ` AND at < ?`
		args = append(args, micros(f.Until))
	}
	if f.Before > 0 {
		query += ` AND seq < ?`
		args = append(args, f.Before)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &e.IP, &e.Provider, &e.Outcome, &e.Details); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}
