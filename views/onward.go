package views

import (
	"regexp"
	"strings"

	"autopilotdesk/graphclient/guid"
)

// Link is a way on from a page: where, and in words.
type Link struct {
	URL, Text string
}

// Onward are the links from a recorded action to what it touched: the upload, the import job and
// its report, the device, the bulk change, the registration page. A target that is not an id the
// desk made (a record kept before it said) gives the list its object lives in.
func Onward(action, outcome, target string) []Link {
	id := guid.Valid(target)
	switch action {
	case "create-upload":
		if id && outcome == "success" {
			return []Link{{"/uploads/" + target, "Open the upload"}}
		}
		return []Link{{"/uploads", "Uploads"}}
	case "update-upload":
		// Changed or not, the upload is still there: its page shows its status and changes it.
		if id {
			return []Link{{"/uploads/" + target, "Open the upload"}}
		}
		return []Link{{"/uploads", "Uploads"}}
	case "delete-upload":
		if id && outcome != "success" {
			return []Link{{"/uploads/" + target, "Open the upload"}}
		}
		return []Link{{"/uploads", "Uploads"}}
	case "import", "import-finished", "import-stopped", "registration-approved":
		if id {
			return []Link{{ImportJobURL(target), "Open the import"}, {ImportJobURL(target) + "/report.csv", "Outcome report (CSV)"}}
		}
		return []Link{{"/devices/import", "Import devices"}}
	case "sync":
		if id {
			return []Link{{ImportJobURL(target), "Open the import"}, {"/devices", "Registered devices"}}
		}
		return []Link{{"/devices", "Registered devices"}}
	case "device-properties", "device-assign-user", "device-unassign-user":
		if target != "" {
			return []Link{{"/devices/" + target, "Open the device"}}
		}
		return []Link{{"/devices", "Registered devices"}}
	case "device-delete":
		if target != "" && outcome != "success" {
			return []Link{{"/devices/" + target, "Open the device"}}
		}
		return []Link{{"/devices", "Registered devices"}}
	case "bulk-change":
		if id {
			return []Link{{"/devices/bulk/" + target, "Open the bulk change"}}
		}
		return []Link{{"/devices/bulk", "Bulk changes"}}
	case "registration-code-created", "registration-code-revoked", "registration-received", "registration-rejected", "registration-expired":
		return []Link{{"/registration", "Registration from the device"}}
	}
	return nil
}

// actionWords are what a recorded action did (done) and what it set out to do (tried); %s is
// what it touched.
var actionWords = map[string][2]string{
	"create-upload":             {"Created upload %s", "Create upload %s"},
	"update-upload":             {"Changed the status of upload %s", "Change the status of upload %s"},
	"delete-upload":             {"Deleted upload %s", "Delete upload %s"},
	"import":                    {"Import of %s", "Import of %s"},
	"import-finished":           {"Import of %s finished", "Import of %s finished"},
	"import-stopped":            {"Stopped an import: %s not sent", "Stop an import"},
	"sync":                      {"Autopilot sync requested", "Autopilot sync"},
	"device-properties":         {"Changed device %s", "Change device %s"},
	"device-assign-user":        {"Assigned a user to device %s", "Assign a user to device %s"},
	"device-unassign-user":      {"Unassigned the user of device %s", "Unassign the user of device %s"},
	"device-delete":             {"Deleted the registration of device %s", "Delete the registration of device %s"},
	"bulk-change":               {"Bulk change of %s", "Bulk change of %s"},
	"registration-code-created": {"Created a registration code", "Create a registration code"},
	"registration-code-revoked": {"Revoked a registration code", "Revoke a registration code"},
	"registration-received":     {"Hardware hashes received from a device", "Hardware hashes from a device"},
	"registration-approved":     {"Approved devices for import", "Approve devices for import"},
	"registration-rejected":     {"Rejected devices", "Reject devices"},
	"registration-expired":      {"Devices dropped: nobody approved them in time", "Devices dropped: nobody approved them in time"},
}

var devicesCount = regexp.MustCompile(`\b\d{1,3}(,\d{3})+ devices?\b|\b\d+ devices?\b`)

var (
	// batchNumber is how a record of one batch names it: "batch 3", "batch 3 of 10".
	batchNumber = regexp.MustCompile(`\b[Bb]atch (\d+(?: of \d+)?)\b`)
	// wholeCount is how it names the whole import or bulk change: "the bulk change of 1,000 devices".
	wholeCount = regexp.MustCompile(`\b(?:import|bulk change) of (\d{1,3}(?:,\d{3})+|\d+) devices?\b`)
)

// batchTitle names a record of an import's or a bulk change's batch as a part of the whole:
// "Bulk change of 1,000 devices: batch 3"; "Import, batch 2: 500 devices" for the records of the
// earlier words, which do not count the whole. ok is false for a record that is not a batch's.
func batchTitle(e ActivityEntry) (title string, ok bool) {
	what := "Import"
	if e.Action == "bulk-change" {
		what = "Bulk change"
	}
	whole, batch := wholeCount.FindStringSubmatch(e.Summary), batchNumber.FindStringSubmatch(e.Summary)
	switch {
	case whole != nil && batch != nil:
		return what + " of " + devicesWord(whole[1]) + ": batch " + batch[1], true
	case whole != nil:
		return what + " of " + devicesWord(whole[1]), true
	case batch != nil:
		title = what + ", batch " + batch[1]
		if m := devicesCount.FindString(e.Summary); m != "" {
			title += ": " + m
		}
		return title, true
	}
	return "", false
}

// devicesWord is a count of devices as a record wrote it ("1", "1,000") with its noun.
func devicesWord(n string) string {
	if n == "1" {
		return "1 device"
	}
	return n + " devices"
}

// ActivityTitle names a recorded action and its target in words, with its outcome when it is not
// a plain success: "Created upload 5c0e…", "Import of 5,000 devices: batch 3 of 10 — outcome unknown".
// A batch of an import or a bulk change is named as a part of the whole, as its summary says.
func ActivityTitle(e ActivityEntry) string {
	words, ok := actionWords[e.Action]
	if !ok {
		words = [2]string{e.Action, e.Action}
	}
	object := ShortID(e.Target)
	switch {
	case strings.HasPrefix(e.Action, "device-") && e.Serial != "":
		object = e.Serial
	case e.Action == "import" || e.Action == "import-finished" || e.Action == "import-stopped" || e.Action == "bulk-change":
		if m := devicesCount.FindString(e.Summary); m != "" {
			object = m
		} else {
			object = "devices"
		}
	}
	if file := importFileOf(e); file != "" && e.Action == "import-finished" {
		object += " from “" + file + "”"
	} else if file != "" && e.Action == "import-stopped" {
		words = [2]string{"Stopped the import of “" + file + "”: %s not sent", "Stop the import of “" + file + "”"}
	}
	form := words[1]
	if e.Outcome == "success" {
		form = words[0]
	}
	title := strings.TrimSpace(strings.ReplaceAll(form, "%s", object))
	if e.Action == "import" || e.Action == "bulk-change" {
		if batch, ok := batchTitle(e); ok {
			title = batch
		}
	}
	switch e.Outcome {
	case "failure":
		if e.Action == "import-finished" {
			return title + " — not every device was imported"
		}
		if e.Action == "bulk-change" && strings.Contains(e.Summary, " accepted") {
			return title + " — not every device was changed" // some were: the batch is not "not done"
		}
		title += " — not done"
	case "outcome-unknown":
		title += " — outcome unknown"
	case "in-progress":
		title += " — in progress"
	}
	return title
}

// importFileOf is the name of the file a finished or stopped import's summary quotes ("… from
// “batch-a.csv” finished: …", "… file “batch-a.csv”: …"), so two imports of as many devices read
// apart; "" when it quotes none.
func importFileOf(e ActivityEntry) string {
	end := -1
	switch e.Action {
	case "import-finished":
		end = strings.Index(e.Summary, "” finished: ")
	case "import-stopped":
		end = strings.Index(e.Summary, "”: ")
	}
	if end < 0 {
		return ""
	}
	start := strings.Index(e.Summary[:end], "“")
	if start < 0 {
		return ""
	}
	return e.Summary[start+len("“") : end]
}

// ShortID is the first block of a GUID, for naming an object in a sentence ("5c0e1a2b…"); other
// values are kept as they are.
func ShortID(id string) string {
	if guid.Valid(id) {
		return id[:8] + "…"
	}
	return id
}
