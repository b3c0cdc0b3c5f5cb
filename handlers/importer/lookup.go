package importer

import (
	"bytes"
	"context"
	"strings"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/web/store"
)

// A Lookup is one place in Graph where a device of a batch whose answer never arrived may be
// found. The reconciler asks each lookup in turn, first to last, until one finds the device:
// imported device identities first, then registered Autopilot devices.
type Lookup interface {
	// Name says where it looks, for the report ("imported devices").
	Name() string
	// Find reports what Graph holds for the row; found is false when this place has no record of it.
	Find(ctx context.Context, ts oauth2.TokenSource, row store.ImportRow) (f Finding, found bool, err error)
}

// Finding is what a lookup found for a row. DeviceID, when set, is an imported device the worker
// follows to its final state; without it, State is final already.
type Finding struct {
	DeviceID string
	State    graphclient.DeviceImportState
}

// SerialFinder is the part of Graph ImportedDevices needs.
type SerialFinder interface {
	FindDevicesBySerial(ctx context.Context, ts oauth2.TokenSource, serial string) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error)
}

// ImportedDevices looks a row up among imported device identities by serial number. When Graph
// returns the records' hashes, only the record with this row's hash is taken, so an older
// import of the same serial is never mistaken for this one.
type ImportedDevices struct{ Graph SerialFinder }

// Name implements Lookup.
func (ImportedDevices) Name() string { return "imported devices" }

// Find implements Lookup.
func (l ImportedDevices) Find(ctx context.Context, ts oauth2.TokenSource, row store.ImportRow) (Finding, bool, error) {
	found, _, err := l.Graph.FindDevicesBySerial(ctx, ts, row.Serial)
	if err != nil {
		return Finding{}, false, err
	}
	hash, _ := devicecsv.DecodeHash(row.Hash)
	var best *graphclient.DeviceIdentity
	for i := range found {
		d := &found[i]
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
		return Finding{}, false, nil
	}
	return Finding{DeviceID: best.ID, State: best.State}, true, nil
}

// AutopilotFinder is the part of Graph RegisteredDevices needs.
type AutopilotFinder interface {
	FindAutopilotDevicesBySerial(ctx context.Context, ts oauth2.TokenSource, serial string) ([]graphclient.AutopilotDevice, *graphclient.Exchange, error)
}

// RegisteredDevices looks a row up among registered Autopilot devices by serial number: once
// Intune has registered a device its import record may already have left the staging list (it
// is often emptied after each import), but the registration is there. A registration is final.
type RegisteredDevices struct{ Graph AutopilotFinder }

// Name implements Lookup.
func (RegisteredDevices) Name() string { return "registered Autopilot devices" }

// Find implements Lookup.
func (l RegisteredDevices) Find(ctx context.Context, ts oauth2.TokenSource, row store.ImportRow) (Finding, bool, error) {
	found, _, err := l.Graph.FindAutopilotDevicesBySerial(ctx, ts, row.Serial)
	if err != nil || len(found) == 0 {
		return Finding{}, false, err
	}
	return Finding{State: graphclient.DeviceImportState{DeviceImportStatus: "complete", DeviceRegistrationID: found[0].ID}}, true, nil
}
