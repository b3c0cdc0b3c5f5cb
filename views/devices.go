package views

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// ImportStart is the device import's first page.
type ImportStart struct {
	Error   string
	Paste   string
	Single  SingleDevice
	MaxRows int // device rows one file may have
	Access  Access

	Open      []ImportListItem // the viewer's own drafts, checks and imports under way
	OpenCount int              // how many there are, also beyond those listed
	Recent    []ImportListItem // a page of the tenant's imports, newest first
	Total     int              // the tenant's imports in all
	Older     bool             // Recent is a page further back than the newest
	OlderURL  string           // the page of the imports older than Recent's; "" on the last
}

// ImportListItem is one of the tenant's recent imports or drafts, as the import page lists it.
type ImportListItem struct {
	ID      string
	Created time.Time
	Owner   string
	Mine    bool   // the signed-in person's own
	Source  string // the file's name, "Pasted text" or "One device"
	State   string // draft, checking, sending, finished
	Counts  ImportCounts
	Ready   int // a draft's rows without a problem
}

// SingleDevice is the one-device form.
type SingleDevice struct{ Serial, Hash, GroupTag, User string }

// ImportRow is one row of the file: its pre-flight, and once submitted its outcome. Hash is
// only the hash's ends.
type ImportRow struct {
	Line                         int
	Serial, Hash, GroupTag, User string
	ProductKey                   string
	Notes, Errors                []string
	AlreadyImported              bool // registered, or being imported, when the serials were checked
	LeftOutByOwner               bool // a row with problems its owner chose to leave out rather than fix
	RegisteredID                 string
	RegisteredGroupTag           string
	RegisteredUser               string
	ImportingJob                 string

	Verdict                    string        // the outcome, once submitted: a store.Verdict* constant
	Outcome                    explain.State // the outcome's badge
	Detail                     string        // what happened and what to do
	ErrorLabel, RegistrationID string
	Reconciled                 bool
	Batch                      int

	// TooLong names the fields ("serial", "productKey", "groupTag", "user") whose value in the
	// file is too long for its column: the value above is its ends alone, and the fix form
	// starts such a field empty.
	TooLong []string
}

// Prefill is what the fix form's field starts with: value, or nothing when the file's value is
// too long for the column (it may be a hardware hash, never shown whole).
func (r ImportRow) Prefill(field, value string) string {
	if slices.Contains(r.TooLong, field) {
		return ""
	}
	return value
}

// FieldErrors are the row's problems with field ("serial", "productKey", "hash", "groupTag",
// "user"), by the column each message names first; "" gives those that name none.
func (r ImportRow) FieldErrors(field string) []string {
	var out []string
	for _, e := range r.Errors {
		if errorField(e) == field {
			out = append(out, e)
		}
	}
	return out
}

// errorField is the fix form's field a pre-flight message is about (the check's messages start
// with the column's name).
func errorField(msg string) string {
	for _, f := range []struct{ prefix, field string }{
		{"Device Serial Number", "serial"}, {"Windows Product ID", "productKey"}, {"Hardware hash", "hash"}, {"Hardware Hash", "hash"},
		{"This hardware hash", "hash"}, {"Group Tag", "groupTag"}, {"Assigned User", "user"},
	} {
		if strings.HasPrefix(msg, f.prefix) {
			return f.field
		}
	}
	return ""
}

// TooLongNote says, under a fix form's field, that the file's value did not fit the column.
func (r ImportRow) TooLongNote(field, shown string) string {
	if !slices.Contains(r.TooLong, field) {
		return ""
	}
	return "The file has " + shown + " here, too long for this column: type the right value."
}

// SaysMore reports whether the pre-flight has more to say of the row than its verdict: problems,
// repairs, or what the tenant holds (a plain row's empty list would weigh on a 10,000-row page).
func (r ImportRow) SaysMore() bool {
	return len(r.Errors) > 0 || len(r.Notes) > 0 || r.RegisteredID != "" || r.ImportingJob != "" || r.AlreadyImported
}

// PreflightVerdict is the row's pre-flight result.
func (r ImportRow) PreflightVerdict() string {
	switch {
	case r.LeftOutByOwner:
		return explain.PreflightLeftOut
	case len(r.Errors) > 0:
		return explain.PreflightProblem
	case r.RegisteredID != "":
		return explain.PreflightRegistered
	case r.ImportingJob != "":
		return explain.PreflightBeingImported
	case r.AlreadyImported:
		return explain.PreflightAlreadyImported
	case len(r.Notes) > 0:
		return explain.PreflightFixed
	}
	return explain.PreflightReady
}

// ImportCounts tally a submitted import's rows by verdict.
type ImportCounts struct {
	Rows, Final                                           int
	Queued, Sending, Unknown, Processing                  int
	Imported, Partial, Errors, Refused, NotFound, LeftOut int
	Stopped                                               int // not sent: the import was stopped before their batch went
	Reconciled                                            int
}

// UnknownBatch is a batch whose answer never arrived and whose devices are not all found yet.
type UnknownBatch struct {
	Batch, Devices, Lookups int
	LookFailures            int                 // looks in a row that could not be made
	LookFailure             explain.Explanation // why the last could not
	Asked                   bool                // its owner has just asked for a look
	SentAt, NextLook        time.Time
	Explanation             explain.Explanation
	Support                 graphclient.SupportDetails
	ActivityID              string
}

// RefusedBatch is a batch Graph refused before importing anything.
type RefusedBatch struct {
	Batch       int
	Explanation explain.Explanation
	Support     graphclient.SupportDetails
	ActivityID  string
}

// ImportWait is a pause Graph asked for.
type ImportWait struct {
	Reason string
	For    time.Duration
	Until  time.Time
}

// ImportJob is an import's page: its pre-flight while a draft, its progress and outcome once
// submitted.
type ImportJob struct {
	ID, State        string
	Owner, OwnerName string // who uploaded the file (name and UPN), and how to call them
	IsOwner          bool   // the signed-in person is the owner: only they may act on it
	Access           Access // read-only: the rows without the controls that import them
	Created          time.Time
	FileName         string // the name of the file the rows came from; "" when they were pasted, typed or approved
	ApprovedFrom     string // the registration codes whose devices' approval made the import, if so
	WaitAgain        bool   // Graph refused the approver's account: the devices wait again under Registration
	FileNotes        []string
	FileErrors       []string
	Rows             []ImportRow
	Valid, Invalid   int // rows without problems; rows with problems still to fix
	ProblemsLeftOut  int // rows with problems their owner chose to leave out
	Checked          bool
	Checking         *CheckProgress // the check of the serials under way
	Tally            *RowTally      // the rows' counts, when the page shows them and not the rows
	LastCheck        *CheckProgress // the last check that ended, as it stood
	Failure          *explain.Explanation
	Counts           ImportCounts
	Batches          int
	BatchesSent      int
	Unknown          []UnknownBatch
	Refused          []RefusedBatch
	QueuedBatches    int           // batches not sent yet: an import being sent may be stopped while there are some
	Stopped          *explain.Stop // who stopped the import, and when
	StoppedBatches   int           // the batches the stop kept from being sent
	Waiting          *ImportWait
	Paused           bool   // the owner has no live session
	Trouble          string // a passing problem the desk works around by itself
	RefreshSeconds   int
	// Ticks, when set, are the "Leave out" ticks of a submit sent back (by line): the page shows
	// them rather than the check's.
	Ticks map[int]bool
	// Shown is which of the rows of an import being sent or finished are in Rows: a long file's
	// page shows them a window at a time, and the outcome report has them all.
	Shown RowWindow
}

// MayImport reports whether the page offers to fix, leave out and import the draft's rows: to
// its owner, when they may change Autopilot devices.
func (j ImportJob) MayImport() bool { return j.IsOwner && !j.Access.ReadOnly }

// MayStop reports whether the page offers to stop sending: while batches wait to be sent, to
// anyone who may change Autopilot devices (the owner may be away while the wrong file goes).
func (j ImportJob) MayStop() bool {
	return j.State == "sending" && j.QueuedBatches > 0 && !j.Access.ReadOnly
}

// CheckProgress is how far a check of a draft's serials in the tenant has come: Done of Of
// serials looked up, Found of them in the tenant already, Step at a time; and once it has
// ended, when and whether its owner stopped it.
type CheckProgress struct {
	Done, Of, Found, Step int
	Started, Ended        time.Time
	Stopped               bool
}

// RowWindow is the part of a file's rows a page shows: from From (counted from 0), Size at most,
// of Total.
type RowWindow struct{ From, Size, Total int }

// URL is the job's page showing the rows from from.
func (j ImportJob) URL(from int) string {
	if from <= 0 {
		return ImportJobURL(j.ID)
	}
	return ImportJobURL(j.ID) + "?from=" + strconv.Itoa(from)
}

// RowTally is a file's rows as counts: all of them, and those without a problem ticked to be left
// out.
type RowTally struct{ Rows, Ticked int }

// RowCount is how many rows the file has.
func (j ImportJob) RowCount() int {
	if j.Tally != nil {
		return j.Tally.Rows
	}
	return len(j.Rows)
}

// ToImport is how many devices "Import" sends as the page comes: the rows without a problem that
// are not ticked to be left out (the check ticks the serials the tenant already holds).
func (j ImportJob) ToImport() int { return j.Valid - j.LeftOut() }

// LeftOut is how many rows without a problem are ticked to be left out as the page comes.
func (j ImportJob) LeftOut() int {
	if j.Tally != nil {
		return j.Tally.Ticked
	}
	return len(j.TickedLines())
}

// TickedLines are the lines of the rows without a problem ticked to be left out as the page
// comes: those a check found in the tenant, or those ticked in the form sent back.
func (j ImportJob) TickedLines() []int {
	var lines []int
	for _, r := range j.Rows {
		if len(r.Errors) == 0 && j.Ticked(r) {
			lines = append(lines, r.Line)
		}
	}
	return lines
}

// Ticked reports whether r's "Leave out" box is ticked as the page comes.
func (j ImportJob) Ticked(r ImportRow) bool {
	if j.Ticks != nil {
		return j.Ticks[r.Line]
	}
	return r.AlreadyImported
}

// ImportButtonText is what the import button says for n devices to send.
func ImportButtonText(n int) string {
	if n == 0 {
		return "Nothing to import: every ready row is left out"
	}
	return "Import " + plural(n, "device", "devices")
}

// HasProductKeys reports whether any row has a Windows Product ID, so its column is shown.
func (j ImportJob) HasProductKeys() bool {
	for _, r := range j.Rows {
		if r.ProductKey != "" {
			return true
		}
	}
	return false
}

// Name says which import this is: its file's name, else when it was uploaded.
func (j ImportJob) Name() string {
	if j.FileName != "" {
		return j.FileName
	}
	return "Import of " + When(j.Created)
}

// Finished reports whether every row has its final verdict.
func (j ImportJob) Finished() bool { return j.State == "finished" }

// ImportedDevice is one device identity of an upload.
type ImportedDevice struct {
	Serial, Status, RegistrationID, ErrorName string
	ErrorCode, Batch                          int
}

// OpenOfMine counts the signed-in person's imports that are drafts or under way.
func (s ImportStart) OpenOfMine() int { return s.OpenCount }

// Showing says which of the tenant's imports the list shows, when it does not show them all.
func (s ImportStart) Showing() string {
	switch {
	case s.Older:
		return "Showing " + plural(len(s.Recent), "older import", "older imports") + " of " + thousands(s.Total) + " in all."
	case s.OlderURL != "":
		return "Showing the newest " + thousands(len(s.Recent)) + " of " + plural(s.Total, "import", "imports") + "."
	}
	return ""
}

// SourceName is the item's file name, or what it came from.
func (it ImportListItem) SourceName() string {
	if it.Source == "" {
		return "Import of " + When(it.Created)
	}
	return it.Source
}

// Standing says where an import stands, in counts that add up.
func (it ImportListItem) Standing() string {
	c := it.Counts
	switch it.State {
	case "draft":
		return plural(c.Rows, "row", "rows") + ", " + thousands(it.Ready) + " ready to import; nothing sent yet."
	case "checking":
		return plural(c.Rows, "row", "rows") + "; their serial numbers are being checked in your tenant."
	case "sending":
		return thousands(c.Final) + " of " + plural(c.Rows, "row", "rows") + " have their final verdict."
	}
	s := plural(c.Imported, "imported", "imported") + " of " + plural(c.Rows, "row", "rows")
	if other := c.Rows - c.Imported - c.LeftOut; other > 0 {
		s += ", " + thousands(other) + " not imported or to check"
	}
	if c.LeftOut > 0 {
		s += ", " + thousands(c.LeftOut) + " left out"
	}
	return s + "."
}

// Badge is where an import stands, as its badge says it: a finished one by what it made of the
// rows it sent (not those left out, nor those a stop kept from being sent).
func (it ImportListItem) Badge() explain.State {
	c := it.Counts
	return explain.ImportState(it.State, c.Imported, c.Rows-c.LeftOut-c.Stopped)
}
