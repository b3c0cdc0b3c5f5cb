package importer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// lookedIn names, for the activity record, where a device whose import answer was lost is looked
// for, in the order lookUp asks.
const lookedIn = "imported devices and registered Autopilot devices"

// Finding is what a lookup found for a row. DeviceID, when set, is an imported device the worker
// follows to its final state; without it, State is final already.
type Finding struct {
	DeviceID string
	State    graphclient.DeviceImportState
}

// lookups is what lookUp learnt of the rows it was given: the finding of each row found, by line,
// and the rows looked for everywhere without a finding. A row in neither was not looked for:
// stopped says why.
type lookups struct {
	found    map[int]Finding
	notFound []store.ImportRow
	stopped  error
}

// lookUp looks rows up by serial number, in JSON batches of 20 serials (graph-facts §7): among
// imported device identities first, then, for the rows not found there, among registered
// Autopilot devices. Once Intune has registered a device its import record may already have left
// the staging list (it is often emptied after each import), but the registration is there, and
// a registration is final. accept, when set, says which findings end a row's search; a row whose
// finding it refuses is looked for in the next place.
//
// A lookup that fails stops the search: the rows already answered keep their findings, the rest
// stay unsearched, and the failure is in stopped. The error, when there is one, ends the turn
// and nothing learnt may be written: the lease could not be held (jobs.ErrLeaseLost when another
// worker has the job now).
func (r *run) lookUp(ctx context.Context, rows []store.ImportRow, accept func(store.ImportRow, Finding) bool) (lookups, error) {
	out := lookups{found: map[int]Finding{}}
	open := rows
	for _, where := range []graphclient.SerialSources{graphclient.InImported, graphclient.InRegistered} {
		var next []store.ImportRow
		for chunk := range slices.Chunk(open, graphclient.BatchLimit) {
			if err := r.Hold(ctx); err != nil {
				return out, err
			}
			serials := make([]string, len(chunk))
			for i, row := range chunk {
				serials[i] = row.Serial
			}
			found, _, err := jobs.Call(ctx, r.Turn, func(ts oauth2.TokenSource) ([]graphclient.SerialLookup, *graphclient.Exchange, error) {
				found, _, err := r.w.o.Graph.LookUpSerials(ctx, ts, serials, where)
				return found, nil, err
			})
			if errors.Is(err, jobs.ErrLeaseLost) {
				return out, err
			}
			for i, row := range chunk {
				if i >= len(found) {
					break
				}
				if e := found[i].Err; e != nil && !unsearchable(e) {
					out.stopped = cmp.Or(out.stopped, e)
					continue
				}
				f, ok := findingOf(found[i], row)
				if ok && (accept == nil || accept(row, f)) {
					out.found[row.Line] = f
				} else {
					next = append(next, row)
				}
			}
			if out.stopped = cmp.Or(out.stopped, err); out.stopped != nil {
				return out, nil
			}
		}
		open = next
	}
	out.notFound = open
	return out, nil
}

// unsearchable reports whether a serial cannot be looked up at all (no valid search, or one that
// matches too many devices to read): its row counts as not found, so after the last look it is
// "outcome unknown — check", rather than holding its batch up for good.
func unsearchable(err error) bool {
	ge, ok := graphclient.AsError(err)
	return ok && ge.Kind == graphclient.KindInvalidInput
}

// findingOf is what one serial's lookup holds for row. Among imported identities, when Graph
// returns the records' hashes only the record with this row's hash is taken, so an older import
// of the same serial is never mistaken for this one; of several, one that did not fail.
func findingOf(l graphclient.SerialLookup, row store.ImportRow) (Finding, bool) {
	if len(l.Registered) > 0 {
		return Finding{State: graphclient.DeviceImportState{DeviceImportStatus: "complete", DeviceRegistrationID: l.Registered[0].ID}}, true
	}
	hash, _ := devicecsv.DecodeHash(row.Hash)
	var best *graphclient.DeviceIdentity
	for i := range l.Imported {
		d := &l.Imported[i]
		if !strings.EqualFold(d.SerialNumber, row.Serial) || d.ID == "" {
			continue
		}
		if len(d.HardwareIdentifier) > 0 && len(hash) > 0 && !bytes.Equal(d.HardwareIdentifier, hash) {
			continue // another import of the same serial
		}
		if best == nil || best.State.Status() == "error" && d.State.Status() != "error" {
			best = d
		}
	}
	if best == nil {
		return Finding{}, false
	}
	return Finding{DeviceID: best.ID, State: best.State}, true
}
