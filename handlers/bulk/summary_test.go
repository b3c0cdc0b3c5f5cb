package bulk

import (
	"testing"

	"autopilotdesk/web/store"
)

// A batch's record counts its devices in words that agree with the number.
func TestChunkSummaryAgreesInNumber(t *testing.T) {
	r := &run{job: &store.BulkJob{Action: ActionGroupTag, GroupTag: "Kiosk", Devices: 1000}}
	got := r.chunkSummary(2, 5, map[string]int{DeviceDone: 1, DeviceUnknown: 3, DeviceQueued: 1})
	if want := "Batch 2 of the bulk change of 1,000 devices to set the group tag to “Kiosk” (5 devices): 1 accepted, 3 answers lost, 1 to be sent again."; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := r.chunkSummary(1, 1, map[string]int{DeviceUnknown: 1}); got != "Batch 1 of the bulk change of 1,000 devices to set the group tag to “Kiosk” (1 device): 1 answer lost." {
		t.Errorf("one lost: %s", got)
	}
}
