package handlers

import (
	"fmt"
	"net/http"

	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
	"autopilotdesk/web"
)

// The forms whose size grows with a file's rows or a list's devices get body limits of their
// own, sized from the most their pages offer; every other form keeps the shell's small limit.

// formRoom is what a form carries besides its repeated fields: the security token, the list's
// own address, a group tag typed in any script (each character percent-encoded as up to 9 bytes).
const formRoom = 16 << 10

// tickBytes is one ticked box of an import's pre-flight as a browser sends it: "leaveOut=" and a
// line number of up to 7 digits, with the "&" between fields.
const tickBytes = len("leaveOut=") + 7 + 1

// deviceTickBytes is one ticked device of the list: "device=" and its id, with the "&".
const deviceTickBytes = len("device=") + 36 + 1

// fixRowBytes is one row of the fix form at its longest: six field names with the line number,
// and the four values at the length the form allows, each character percent-encoded (3 bytes).
const fixRowBytes = 6*len("row-1234567-productKey=&") +
	3*(devicecsv.MaxSerialLength+devicecsv.MaxProductKeyLength+devicecsv.MaxGroupTagLength+devicecsv.MaxUserLength)

// fixNewHashes is how many new hardware hashes the fix form takes pasted at once, each at the
// longest a hash is (8 KB, about 11,000 base64 characters, percent-encoded).
const fixNewHashes, newHashBytes = 100, 3 * 11000

// importSubmitLimit bounds the import form of a pre-flight: every row of a file at maxRows ticked.
func importSubmitLimit(maxRows int) int64 { return int64(maxRows*tickBytes + formRoom) }

// importFixLimit bounds the fix form: every row of a file at maxRows to fix, and new hashes.
func importFixLimit(maxRows int) int64 {
	return int64(maxRows*fixRowBytes + fixNewHashes*newHashBytes + formRoom)
}

// bulkFormLimit bounds the list's bulk form: every device the longest list shows, ticked, so
// that ticking more than a bulk change takes is answered by the list itself.
const bulkFormLimit = int64(maxListDevices*deviceTickBytes + formRoom)

// formLimits gives the forms that grow with a file or a list their own limits and answers.
func formLimits(shell *web.Shell, maxRows int) {
	shell.FormLimit("/devices/import/:id/submit", importSubmitLimit(maxRows), &views.ErrorPage{Status: http.StatusRequestEntityTooLarge,
		Title:    "The import form is larger than its page sends",
		Message:  fmt.Sprintf("The pre-flight page sends at most one “Leave out” tick for each of a file's rows (%s rows at most), and what arrived is larger, so it was not read. Nothing was imported.", explain.Number(maxRows)),
		NextStep: "Open the pre-flight again, tick “Leave out” where you want it and choose Import there."})
	shell.FormLimit("/devices/import/:id/fix", importFixLimit(maxRows), &views.ErrorPage{Status: http.StatusRequestEntityTooLarge,
		Title:    "The corrections are more than the desk takes at once",
		Message:  fmt.Sprintf("The corrected rows, with the new hardware hashes pasted, are larger than the desk reads at once (every row of a file with values at their longest, and %d new hashes). Nothing was changed.", fixNewHashes),
		NextStep: "Go back, paste fewer new hardware hashes at a time, or correct the CSV file itself and import it again."})
	shell.FormLimit("/devices/bulk", bulkFormLimit, &views.ErrorPage{Status: http.StatusRequestEntityTooLarge,
		Title:    "Too many devices ticked",
		Message:  fmt.Sprintf("A bulk change takes at most %s devices, and far more were ticked, so the change was not read. Nothing was changed.", explain.Number(maxBulkDevices)),
		NextStep: "Go back to the devices, narrow the list with a search or the filters, and tick at most " + explain.Number(maxBulkDevices) + " devices."})
	shell.FormLimit("/devices/bulk/serials", serialsFormLimit, &views.ErrorPage{Status: http.StatusRequestEntityTooLarge,
		Title:      "The file is larger than a bulk change takes",
		Message:    fmt.Sprintf("What you sent is over %d MB, more than a device CSV of %s devices with their hardware hashes, and a bulk change takes at most %s devices, so it was not read. Nothing was changed.", serialsFormLimit>>20, explain.Number(maxBulkDevices), explain.Number(maxBulkDevices)),
		NextStep:   "Go back, and paste the serial numbers alone (a column copied from the spreadsheet), or split the file into parts of at most " + explain.Number(maxBulkDevices) + " devices.",
		ActionURL:  "/devices/bulk/serials",
		ActionText: "Back to the form"})
}
