package views

import "testing"

func TestActivityTitleNamesTheActionAndItsTarget(t *testing.T) {
	id := "5c0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
	cases := []struct {
		e    ActivityEntry
		want string
	}{
		{ActivityEntry{Action: "create-upload", Outcome: "success", Target: id}, "Created upload 5c0e1a2b…"},
		{ActivityEntry{Action: "create-upload", Outcome: "outcome-unknown"}, "Create upload — outcome unknown"},
		{ActivityEntry{Action: "create-upload", Outcome: "failure", Summary: "Microsoft Graph is throttling requests"}, "Create upload — not done"},
		// A batch's record reads as a part of its import or bulk change, never as one of its own;
		// records of the earlier words too.
		{ActivityEntry{Action: "import", Outcome: "outcome-unknown", Target: id, Summary: "Batch 1 (13 devices): Microsoft Graph's answer never arrived"}, "Import, batch 1: 13 devices — outcome unknown"},
		{ActivityEntry{Action: "import", Outcome: "success", Target: id, Summary: "Sent batch 2: Microsoft Graph accepted 1 device."}, "Import, batch 2: 1 device"},
		{ActivityEntry{Action: "import", Outcome: "success", Target: id, Summary: "Sent batch 3 of 10 of the import of 5,000 devices: Microsoft Graph accepted 500 devices."}, "Import of 5,000 devices: batch 3 of 10"},
		{ActivityEntry{Action: "import", Outcome: "success", Target: id, Summary: "Sent batch 1 of 1 of the import of 1 device: Microsoft Graph accepted 1 device."}, "Import of 1 device: batch 1 of 1"},
		{ActivityEntry{Action: "import", Outcome: "failure", Target: id, Summary: "Batch 10 of 10 of the import of 4,600 devices (100 devices): Microsoft Graph refused"}, "Import of 4,600 devices: batch 10 of 10 — not done"},
		{ActivityEntry{Action: "device-properties", Outcome: "success", Target: id, Serial: "PF3ABC12"}, "Changed device PF3ABC12"},
		{ActivityEntry{Action: "bulk-change", Outcome: "failure", Target: id}, "Bulk change of devices — not done"},
		{ActivityEntry{Action: "bulk-change", Outcome: "failure", Target: id,
			Summary: "Bulk change to set the group tag to “Made”, batch 1 (20 devices): 18 accepted, 1 refused, 1 answer lost."}, "Bulk change, batch 1: 20 devices — not every device was changed"},
		{ActivityEntry{Action: "bulk-change", Outcome: "success", Target: id,
			Summary: "Bulk change to set the group tag to “Sales-EMEA”, batch 1 (7 devices): 7 accepted."}, "Bulk change, batch 1: 7 devices"},
		{ActivityEntry{Action: "bulk-change", Outcome: "success", Target: id,
			Summary: "Batch 50 of the bulk change of 1,000 devices to unassign the user (9 devices): 9 accepted."}, "Bulk change of 1,000 devices: batch 50"},
		{ActivityEntry{Action: "bulk-change", Outcome: "success", Target: id,
			Summary: "Bulk change of 1,000 devices to unassign the user: read 20 devices whose answer was lost; 20 show the change, 0 could not be confirmed."}, "Bulk change of 1,000 devices"},
		{ActivityEntry{Action: "registration-code-created", Outcome: "success", Target: id}, "Created a registration code"},
		{ActivityEntry{Action: "import-finished", Outcome: "success", Target: id, Summary: "Import of 10,000 devices finished: 10,000 imported."}, "Import of 10,000 devices finished"},
		{ActivityEntry{Action: "import-finished", Outcome: "success", Target: id, Summary: "Import of 5,000 devices from “batch-a.csv” finished: 5,000 imported."}, "Import of 5,000 devices from “batch-a.csv” finished"},
		{ActivityEntry{Action: "import-finished", Outcome: "failure", Target: id, Summary: "Import of 1 device from “my list.csv” finished: 1 refused by Microsoft Graph."}, "Import of 1 device from “my list.csv” finished — not every device was imported"},
		{ActivityEntry{Action: "import-stopped", Outcome: "success", Target: id,
			Summary: "Stopped the import of Adele Vance's file “batch-b.csv”: 500 devices in 1 batch not sent."}, "Stopped the import of “batch-b.csv”: 500 devices not sent"},
		{ActivityEntry{Action: "import-stopped", Outcome: "success", Target: id,
			Summary: "Stopped the import of Adele Vance's file: 7,500 devices in 15 batches not sent."}, "Stopped an import: 7,500 devices not sent"},
	}
	for _, tc := range cases {
		if got := ActivityTitle(tc.e); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

// Every recorded action leads on to what it touched.
func TestEveryActionLeadsOnward(t *testing.T) {
	id := "5c0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
	want := map[string]string{
		"create-upload": "/uploads/" + id, "update-upload": "/uploads/" + id, "delete-upload": "/uploads",
		"import": ImportJobURL(id), "import-finished": ImportJobURL(id), "import-stopped": ImportJobURL(id), "sync": ImportJobURL(id), "registration-approved": ImportJobURL(id),
		"device-properties": "/devices/" + id, "device-assign-user": "/devices/" + id, "device-unassign-user": "/devices/" + id,
		"device-delete": "/devices", "bulk-change": "/devices/bulk/" + id,
		"registration-code-created": "/registration", "registration-code-revoked": "/registration", "registration-received": "/registration",
		"registration-rejected": "/registration", "registration-expired": "/registration",
	}
	for _, o := range activityActions {
		links := Onward(o.Value, "success", id)
		if len(links) == 0 || links[0].URL != want[o.Value] {
			t.Errorf("%s leads to %v, want %s", o.Value, links, want[o.Value])
		}
	}
	if links := Onward("import", "outcome-unknown", id); len(links) != 2 || links[1].URL != ImportJobURL(id)+"/report.csv" {
		t.Errorf("an import does not lead to its report: %v", links)
	}
}
