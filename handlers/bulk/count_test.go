package bulk

import (
	"testing"

	"autopilotdesk/web/store"
)

// Only devices whose change was found made by reading them count as found by reading: those read
// and still not showing it (unconfirmed), or gone (not found), do not.
func TestCountFindsOnlyDevicesFoundByReading(t *testing.T) {
	var devices []store.BulkDevice
	add := func(n int, state string, reconciled bool) {
		for range n {
			devices = append(devices, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: state, Reconciled: reconciled}})
		}
	}
	add(12, DeviceDone, false)
	add(2, DeviceDone, true)
	add(3, DeviceUnconfirmed, true)
	add(1, DeviceNotFound, true)
	c := Count(devices)
	if c.Reconciled != 2 || c.Done != 14 || c.Unconfirmed != 3 || c.NotFound != 1 || c.Devices != 18 {
		t.Errorf("counted %+v", c)
	}
}

// A finished change is offered again only for the devices it may still change: refused, not sent
// for a refusal that held for all, or never shown changed; never for those done, gone, or left to
// a later change, nor any still on their way.
func TestAgainOffersOnlyDevicesTheChangeMayStillChange(t *testing.T) {
	for _, tc := range []struct {
		state, reason string
		again         bool
	}{
		{DeviceRefused, "", true}, {DeviceUnconfirmed, "", true}, {DeviceSkipped, "", true},
		{DeviceSkipped, store.BulkReasonSuperseded, false}, {DeviceDone, "", false}, {DeviceNotFound, "", false},
		{DeviceQueued, "", false}, {DeviceInFlight, "", false}, {DeviceUnknown, "", false},
	} {
		d := store.BulkDevice{BulkOutcome: store.BulkOutcome{State: tc.state, Reason: tc.reason}}
		if got := Again(d); got != tc.again {
			t.Errorf("%s/%s: again %v, want %v", tc.state, tc.reason, got, tc.again)
		}
	}
}
