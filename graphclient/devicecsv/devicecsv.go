// Package devicecsv parses and pre-flights the Intune portal's Windows Autopilot
// device CSV ("Import devices") before anything is sent to Microsoft Graph.
//
// It accepts the files administrators actually have — saved by Excel with a BOM,
// as UTF-16, with quotes, semicolons, stray spaces, blank lines or unpadded
// hashes — repairs what can safely be repaired (each repair is recorded as a
// note), and reports in plain words every row that cannot be imported, including
// the checks the portal lacks (duplicates, implausible hashes, bad UPNs).
//
// Hardware hashes are sensitive: no note or error ever contains a whole hash;
// see [Truncate].
package devicecsv

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"autopilotdesk/graphclient/unseen"
)

// MaxRowsPerImport is the most devices one import call (and one portal file) may hold.
const MaxRowsPerImport = 500

// Header is the exact header line of the portal's template.
const Header = "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User"

const (
	colSerial = iota
	colProductKey
	colHash
	colGroupTag
	colUser
	numCols
	requiredCols = colHash + 1 // the first three columns must be present
)

var columnNames = [numCols]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"}

// Get-WindowsAutopilotInfo -Partner adds these columns: read for display, never sent to Intune.
const (
	colManufacturer = iota
	colModel
	numPartnerCols
)

var partnerColumnNames = [numPartnerCols]string{"Manufacturer name", "Device model"}

// MaxSerialLength bounds a serial number the desk imports or searches for: real ones are far
// shorter, and a longer value is a column out of place.
const MaxSerialLength = 128

// The longest value each other column may hold. A longer value cannot be imported, is never
// shown or kept whole (a hardware hash in the wrong column is one), and is most often a value of
// another column: the row's message says to check the columns' order.
const (
	MaxProductKeyLength = 64  // a product ID has 29 characters; the fix form takes 64
	MaxGroupTagLength   = 200 // Intune's limit
	MaxUserLength       = 113 // Entra ID's limit for a user principal name
)

const (
	minHashBytes  = 1000
	maxHashBytes  = 8192
	productKeyLen = 29
	maxShownLen   = 40 // longer values are shortened with Truncate in messages
)

// columnOrderHint ends the message of a value too long for its column.
const columnOrderHint = " Check that the columns are in the header's order."

// TooLong reports whether v has more than limit characters.
func TooLong(v string, limit int) bool { return len(v) > limit && utf8.RuneCountInString(v) > limit }

// Row is one device line of the file.
type Row struct {
	Line                                                           int      // 1-based line number in the file (header is line 1)
	SerialNumber, ProductKey, HardwareHash, GroupTag, AssignedUser string   // cleaned values; HardwareHash repaired/padded
	Manufacturer, Model                                            string   // from the capture script's -Partner columns, if any
	Notes                                                          []string // what was fixed
	Errors                                                         []string // why this row cannot be sent
}

// Verdict is "ok", "fixed" (valid, with notes) or "error".
func (r Row) Verdict() string {
	switch {
	case len(r.Errors) > 0:
		return "error"
	case len(r.Notes) > 0:
		return "fixed"
	}
	return "ok"
}

// Report is the result of [Parse].
type Report struct {
	Rows []Row
	// FileNotes are file-level fixes: BOM removed, UTF-16 converted, header case or
	// spacing fixed, quotes removed, delimiter detected, blank lines skipped, …
	FileNotes []string
	// FileErrors mean the file cannot be read at all; Rows is then empty.
	FileErrors []string
	// ValidCount counts the rows that can be sent (verdict "ok" or "fixed");
	// FixedCount counts those of them that needed a fix; ErrorCount counts the
	// rows that cannot be sent. ValidCount+ErrorCount == len(Rows).
	ValidCount, FixedCount, ErrorCount int
	// TooManyRows means the file has more device rows than [ParseLimit] allows:
	// reading stopped there, Rows is empty and FileErrors says so.
	TooManyRows bool
}

// Parse reads an Autopilot device CSV. It never panics, whatever the bytes.
func Parse(data []byte) *Report { return ParseLimit(data, 0) }

// ParseLimit is Parse for files of at most maxRows device rows (0: no limit). Reading stops at
// the first row past the limit, so a huge file costs no more than one at the limit.
func ParseLimit(data []byte, maxRows int) *Report { return parseSafely(data, maxRows, false) }

// ParseOwned is ParseLimit for a buffer the caller hands over: a UTF-8 file is read in place, not
// copied, and the report's values share its memory, so data must not change afterwards.
func ParseOwned(data []byte, maxRows int) *Report { return parseSafely(data, maxRows, true) }

func parseSafely(data []byte, maxRows int, owned bool) (rep *Report) {
	defer func() {
		if recover() != nil {
			rep = &Report{FileErrors: []string{"The file could not be checked because of an internal error in the checker; nothing was imported. Please report it."}}
		}
	}()
	return parse(data, maxRows, owned)
}

// TooManyRowsMessage is the refusal of a file over the row limit, in an administrator's words.
func TooManyRowsMessage(maxRows int) string {
	n := Thousands(maxRows)
	return fmt.Sprintf("The file has more than %s devices; the desk imports at most %s from one file. Split it into files of at most %s rows each (every file with the header line) and import them one after another.", n, n, n)
}

// Thousands writes n with comma separators, as the pages do: 10,000.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// headerCol describes one column of the file's header.
type headerCol struct {
	known int // column index in columnNames, or -1
	named bool
}

type parser struct {
	text  string
	pos   int
	line  int // line number where the next record starts
	delim byte

	le, nl    int // cached end of the current line and next '\n' (see lineEnd)
	lastQuote int // index of the last '"' in text, -1 if none, -2 until needed

	fields    []string
	sawQuotes bool

	header  []headerCol
	col     [numCols]int        // field index of each known column, -1 if absent
	partner [numPartnerCols]int // field index of each -Partner column, -1 if absent

	serials map[string]int
	hashes  map[string]int
}

func parse(data []byte, maxRows int, owned bool) *Report {
	rep := &Report{}
	text, notes, fatal := decodeText(data, owned)
	rep.FileNotes = append(rep.FileNotes, notes...)
	if fatal != "" {
		rep.FileErrors = append(rep.FileErrors, fatal)
		return rep
	}
	p := &parser{text: text, line: 1, delim: ',', le: -1, nl: -1, lastQuote: -2}
	blank := 0

	// Find the header line: skip blank lines and an Excel "sep=;" hint.
	sepHint := false
	for p.pos < len(text) {
		l, next := lineAt(text, p.pos)
		if isBlankLine(l) {
			blank++
		} else if t := strings.TrimSpace(l); !sepHint && len(t) == 5 && strings.EqualFold(t[:4], "sep=") {
			sepHint = true
			p.delim = t[4]
			rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("Skipped Excel's %q line at the top of the file; the Intune portal does not accept it.", t))
		} else {
			if !sepHint {
				p.delim = detectDelimiter(l)
			}
			break
		}
		p.pos, p.line = next, p.line+1
	}
	if p.pos >= len(text) {
		rep.FileErrors = append(rep.FileErrors, "The file contains no header and no devices. The first line must be: "+Header)
		return rep
	}
	switch p.delim {
	case ';':
		rep.FileNotes = append(rep.FileNotes, "The file uses semicolons (;) instead of commas to separate values, as Excel does in some regional settings. It was read correctly, but the Intune portal itself accepts only commas.")
	case '\t':
		rep.FileNotes = append(rep.FileNotes, "The file uses tabs instead of commas to separate values. It was read correctly, but the Intune portal itself accepts only commas.")
	case ',':
	default:
		rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("The file uses %q instead of commas to separate values. It was read correctly, but the Intune portal itself accepts only commas.", string(p.delim)))
	}

	headerFields, _ := p.next()
	if msg := p.readHeader(headerFields, rep); msg != "" {
		rep.FileErrors = append(rep.FileErrors, msg)
		return rep
	}

	estimate := min(strings.Count(text[p.pos:], "\n")+1, 1<<20)
	if maxRows > 0 {
		estimate = min(estimate, maxRows)
	}
	rep.Rows = make([]Row, 0, estimate)
	p.serials = make(map[string]int, estimate)
	p.hashes = make(map[string]int, estimate)
	for {
		fields, line := p.next()
		if fields == nil {
			break
		}
		if blankRecord(fields) {
			blank++
			continue
		}
		if maxRows > 0 && len(rep.Rows) == maxRows {
			return &Report{FileNotes: rep.FileNotes, FileErrors: []string{TooManyRowsMessage(maxRows)}, TooManyRows: true}
		}
		rep.Rows = append(rep.Rows, p.row(line, fields))
	}

	if p.sawQuotes {
		rep.FileNotes = append(rep.FileNotes, "Removed quotation marks around values (Excel adds them); the Intune portal does not accept quotes.")
	}
	if blank > 0 {
		rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("Skipped %s.", plural(blank, "empty line", "empty lines")))
	}
	if len(rep.Rows) == 0 {
		rep.FileErrors = append(rep.FileErrors, "The file has a header but no devices.")
		rep.Rows = nil
		return rep
	}
	for i := range rep.Rows {
		switch rep.Rows[i].Verdict() {
		case "ok":
			rep.ValidCount++
		case "fixed":
			rep.ValidCount++
			rep.FixedCount++
		default:
			rep.ErrorCount++
		}
	}
	if rep.ValidCount > MaxRowsPerImport {
		n := (rep.ValidCount + MaxRowsPerImport - 1) / MaxRowsPerImport
		rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("The file has %s devices ready to import; one import accepts at most %d (and at most 2 MB), so they will be sent in %d or more batches, one after another.", Thousands(rep.ValidCount), MaxRowsPerImport, n))
	}
	return rep
}

// readHeader maps the header fields to the known columns. It returns a fatal
// message when the required columns are missing.
func (p *parser) readHeader(fields []string, rep *Report) string {
	for i := range p.col {
		p.col[i] = -1
	}
	for i := range p.partner {
		p.partner[i] = -1
	}
	p.header = make([]headerCol, len(fields))
	var fixed, unknown, partner []string
	for i, f := range fields {
		name := strings.TrimSpace(f)
		k, exact := matchColumn(name)
		p.header[i] = headerCol{known: k, named: name != ""}
		pk := -1
		for j, want := range partnerColumnNames {
			if k < 0 && looseEqual(name, want) {
				pk = j
			}
		}
		switch {
		case pk >= 0 && p.partner[pk] < 0:
			p.partner[pk] = i
			partner = append(partner, show(name))
		case k >= 0 && p.col[k] >= 0:
			return fmt.Sprintf("The column %q appears twice in the header. Keep only one and upload the file again.", columnNames[k])
		case k >= 0:
			p.col[k] = i
			if !exact {
				fixed = append(fixed, show(name)+" → "+strconv.Quote(columnNames[k]))
			}
		case name != "":
			unknown = append(unknown, show(name))
		}
	}
	var missing []string
	found := 0
	for k := range numCols {
		if p.col[k] >= 0 {
			found++
		} else if k < requiredCols {
			missing = append(missing, strconv.Quote(columnNames[k]))
		}
	}
	if found == 0 {
		return "The first line of the file is not the Autopilot device header, so this does not look like an Autopilot device CSV. The first line must be: " + Header
	}
	if len(missing) > 0 {
		return fmt.Sprintf("The header is missing the required %s %s. The first line must be: %s (the last two columns are optional).",
			pluralWord(len(missing), "column", "columns"), strings.Join(missing, ", "), Header)
	}
	if len(fixed) > 0 {
		rep.FileNotes = append(rep.FileNotes, "Fixed the capitalisation or spacing of the header ("+strings.Join(fixed, ", ")+"); the Intune portal's header check is case-sensitive.")
	}
	last := -1
	for k := range numCols {
		if p.col[k] >= 0 {
			if p.col[k] < last {
				rep.FileNotes = append(rep.FileNotes, "The columns are in a different order from the portal's template; they were matched by name.")
				break
			}
			last = p.col[k]
		}
	}
	if len(partner) > 0 {
		rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("Read %s (written by Get-WindowsAutopilotInfo -Partner) to show which device each row is; %s never sent to Intune, and the Intune portal rejects files with these extra columns.",
			strings.Join(partner, " and "), pluralWord(len(partner), "it is", "they are")))
	}
	if len(unknown) > 0 {
		rep.FileNotes = append(rep.FileNotes, fmt.Sprintf("Ignored %s that %s not part of the Autopilot template: %s. The Intune portal rejects files with extra columns.",
			pluralWord(len(unknown), "a column", "columns"), pluralWord(len(unknown), "is", "are"), strings.Join(unknown, ", ")))
	}
	return ""
}

// matchColumn finds the known column whose name equals name ignoring case and
// whitespace; exact reports whether it matched byte for byte.
func matchColumn(name string) (k int, exact bool) {
	for k, want := range columnNames {
		if name == want {
			return k, true
		}
		if looseEqual(name, want) {
			return k, false
		}
	}
	return -1, false
}

// looseEqual compares ASCII strings ignoring case and all spaces and tabs.
func looseEqual(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && (a[i] == ' ' || a[i] == '\t' || a[i] == '_') {
			i++
		}
		for j < len(b) && b[j] == ' ' {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if lower(a[i]) != lower(b[j]) {
			return false
		}
		i, j = i+1, j+1
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lineAt returns the line starting at pos (without its terminator) and the
// position after the terminator (\r\n, \n or \r).
func lineAt(text string, pos int) (string, int) {
	for i := pos; i < len(text); i++ {
		switch text[i] {
		case '\n':
			return text[pos:i], i + 1
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				return text[pos:i], i + 2
			}
			return text[pos:i], i + 1
		}
	}
	return text[pos:], len(text)
}

// isBlankLine reports whether a raw line holds nothing but spaces, separators
// and quotes (Excel writes ",,,," for empty rows).
func isBlankLine(l string) bool {
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case ' ', '\t', ',', ';', '"':
		default:
			return false
		}
	}
	return true
}

func blankRecord(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// detectDelimiter picks the separator used in the header line.
func detectDelimiter(l string) byte {
	commas := strings.Count(l, ",")
	semis := strings.Count(l, ";")
	tabs := strings.Count(l, "\t")
	switch {
	case semis > commas && semis >= tabs:
		return ';'
	case tabs > commas && tabs > semis:
		return '\t'
	}
	return ','
}

// next returns the fields of the next record and the line it starts on, or nil
// at the end of the text. Fields are untrimmed; quoted fields are unquoted. The
// returned slice is reused by the following call.
func (p *parser) next() ([]string, int) {
	text, n := p.text, len(p.text)
	if p.pos >= n {
		return nil, 0
	}
	start := p.line
	p.fields = p.fields[:0]
	i := p.pos
	for {
		j := i
		for j < n && (text[j] == ' ' || (text[j] == '\t' && p.delim != '\t')) {
			j++
		}
		if j < n && text[j] == '"' {
			val, end, lines, ok := p.quoted(j)
			if ok {
				p.sawQuotes = true
				p.line += lines
				p.fields = append(p.fields, val)
				i = end
			} else {
				// Unterminated quote: treat it as text up to the end of the line.
				p.sawQuotes = true
				e := p.fieldEnd(j + 1)
				p.fields = append(p.fields, text[j+1:e])
				i = e
			}
		} else {
			e := p.fieldEnd(i)
			p.fields = append(p.fields, text[i:e])
			i = e
		}
		if i >= n {
			p.pos = n
			p.line++
			return p.fields, start
		}
		if text[i] == p.delim {
			i++
			continue
		}
		// End of line.
		if text[i] == '\r' && i+1 < n && text[i+1] == '\n' {
			i++
		}
		p.pos = i + 1
		p.line++
		return p.fields, start
	}
}

// lineEnd returns the index of the first '\r' or '\n' at or after i (or the
// end of the text). Positions only move forward, so the answer is cached: every
// byte is searched at most a few times, even for pathological files.
func (p *parser) lineEnd(i int) int {
	if i <= p.le {
		return p.le
	}
	if i > p.nl {
		if nl := strings.IndexByte(p.text[i:], '\n'); nl >= 0 {
			p.nl = i + nl
		} else {
			p.nl = len(p.text)
		}
	}
	if cr := strings.IndexByte(p.text[i:p.nl], '\r'); cr >= 0 {
		p.le = i + cr
	} else {
		p.le = p.nl
	}
	return p.le
}

// fieldEnd returns the index of the next delimiter or line break at or after i.
func (p *parser) fieldEnd(i int) int {
	le := p.lineEnd(i)
	if d := strings.IndexByte(p.text[i:le], p.delim); d >= 0 {
		return i + d
	}
	return le
}

// quoted reads the quoted field whose opening quote is at q. It returns the
// value, the index just past the field (at a delimiter, line break or the end),
// the number of line breaks inside the quotes, and false when the quote is never
// closed.
func (p *parser) quoted(q int) (val string, end, lines int, ok bool) {
	text := p.text
	if p.lastQuote == -2 {
		p.lastQuote = strings.LastIndexByte(text, '"')
	}
	if q >= p.lastQuote {
		return "", 0, 0, false
	}
	var b []byte
	seg := q + 1
	k := seg
	for {
		idx := strings.IndexByte(text[k:], '"')
		if idx < 0 {
			return "", 0, 0, false
		}
		lines += lineBreaks(text[k : k+idx])
		k += idx
		if k+1 < len(text) && text[k+1] == '"' {
			b = append(b, text[seg:k+1]...)
			k += 2
			seg = k
			continue
		}
		break
	}
	if b != nil {
		val = string(append(b, text[seg:k]...))
	} else {
		val = text[seg:k]
	}
	end = p.fieldEnd(k + 1)
	if junk := strings.TrimSpace(text[k+1 : end]); junk != "" {
		val += junk
	}
	return val, end, lines, true
}

// lineBreaks counts \r\n, \n and lone \r line breaks in s.
func lineBreaks(s string) int {
	n := strings.Count(s, "\n")
	if cr := strings.Count(s, "\r"); cr > 0 {
		n += cr - strings.Count(s, "\r\n")
	}
	return n
}

// row checks one device record.
func (p *parser) row(line int, fields []string) Row {
	r := Row{Line: line}
	get := func(k int) string {
		if i := p.col[k]; i >= 0 && i < len(fields) {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	r.SerialNumber = get(colSerial)
	r.ProductKey = get(colProductKey)
	rawHash := get(colHash)
	r.GroupTag = get(colGroupTag)
	r.AssignedUser = get(colUser)
	for k, dest := range [numPartnerCols]*string{&r.Manufacturer, &r.Model} {
		if i := p.partner[k]; i >= 0 && i < len(fields) {
			*dest = strings.TrimSpace(unseen.Drop(fields[i])) // shown only: what cannot be seen is dropped
		}
	}

	extra := 0
	for i, f := range fields {
		if i < len(p.header) && p.header[i].named {
			continue // a template column, or an unknown column already reported for the file
		}
		if strings.TrimSpace(f) != "" {
			extra++
		}
	}
	if extra > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("This row has %s beyond the header's columns; %s ignored.",
			plural(extra, "extra value", "extra values"), pluralWord(extra, "it was", "they were")))
	}

	// Serial number.
	if msg := SerialProblem(columnNames[colSerial], r.SerialNumber); msg != "" {
		if len(r.SerialNumber) > MaxSerialLength {
			msg += columnOrderHint
		}
		r.Errors = append(r.Errors, msg)
	}

	// Product key.
	if TooLong(r.ProductKey, MaxProductKeyLength) {
		r.Errors = append(r.Errors, fmt.Sprintf("Windows Product ID %s is %s characters long, and a product ID has %d (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)."+columnOrderHint, show(r.ProductKey), Thousands(utf8.RuneCountInString(r.ProductKey)), productKeyLen))
	} else if r.ProductKey != "" && !plausibleProductKey(r.ProductKey) {
		r.Errors = append(r.Errors, fmt.Sprintf("Windows Product ID is not in the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (29 characters; this one has %d). Correct it, or leave the column empty.", utf8.RuneCountInString(r.ProductKey)))
	}

	// Hardware hash.
	hashOK := false
	if rawHash == "" {
		r.Errors = append(r.Errors, "Hardware Hash is empty. Capture it on the device (Get-WindowsAutopilotInfo) or get it from the OEM, then add it.")
	} else {
		clean, notes, msg := cleanHash(rawHash)
		r.HardwareHash = clean
		r.Notes = append(r.Notes, notes...)
		if msg != "" {
			r.Errors = append(r.Errors, msg)
		} else {
			hashOK = true
		}
	}

	if msg := CheckGroupTag(r.GroupTag); TooLong(r.GroupTag, MaxGroupTagLength) {
		r.Errors = append(r.Errors, msg+columnOrderHint)
	} else if msg != "" {
		r.Errors = append(r.Errors, msg)
	}
	if msg := CheckAssignedUser(r.AssignedUser); TooLong(r.AssignedUser, MaxUserLength) {
		r.Errors = append(r.Errors, msg+columnOrderHint)
	} else if msg != "" {
		r.Errors = append(r.Errors, msg)
	}

	// Duplicates within the file.
	if r.SerialNumber != "" {
		key := strings.ToUpper(r.SerialNumber)
		if first, dup := p.serials[key]; dup {
			r.Errors = append(r.Errors, fmt.Sprintf("Device Serial Number %s is already on line %d. A device can be imported only once; remove one of the rows.", show(r.SerialNumber), first))
		} else {
			p.serials[key] = line
		}
	}
	if hashOK {
		if first, dup := p.hashes[r.HardwareHash]; dup {
			r.Errors = append(r.Errors, fmt.Sprintf("This hardware hash (%s) is already on line %d. The same device cannot be imported twice; remove one of the rows.", Truncate(r.HardwareHash), first))
		} else {
			p.hashes[r.HardwareHash] = line
		}
	}
	return r
}

// CheckGroupTag says what is wrong with a group tag, as the import's check says it ("" when
// nothing is).
func CheckGroupTag(tag string) string {
	if n := utf8.RuneCountInString(tag); n > MaxGroupTagLength {
		return fmt.Sprintf("Group Tag %s is %s characters long; Intune allows at most %d.", show(tag), Thousands(n), MaxGroupTagLength)
	}
	if c, found := unseen.Find(tag); found {
		return fmt.Sprintf("Group Tag %s contains %s. A group tag with it never matches a dynamic group's rule on the OrderID, so the device would miss its Autopilot profile. Remove it (type the tag again rather than copying it).", show(tag), unseen.Describe(c))
	}
	return ""
}

// CheckAssignedUser says what is wrong with an assigned user, as the import's check says it (""
// when nothing is; empty assigns nobody).
func CheckAssignedUser(upn string) string {
	if n := utf8.RuneCountInString(upn); n > MaxUserLength {
		return fmt.Sprintf("Assigned User %s is %s characters long; Microsoft Entra ID allows at most %d in a user principal name.", show(upn), Thousands(n), MaxUserLength)
	}
	if c, found := unseen.Find(upn); found {
		return fmt.Sprintf("Assigned User %s contains %s. Remove it (type the name again rather than copying it).", show(upn), unseen.Describe(c))
	}
	if upn != "" && !PlausibleUPN(upn) {
		return fmt.Sprintf("Assigned User %s is not a valid user principal name. It must look like name@contoso.com, with no spaces; leave it empty to assign nobody.", show(upn))
	}
	return ""
}

// SerialProblem says what is wrong with a serial number, named subject in the message ("Device
// Serial Number" for the column): empty, turned into scientific notation by Excel, too long, or
// holding a character nobody can see. "" when it can be searched for and imported.
func SerialProblem(subject, serial string) string {
	switch {
	case serial == "":
		return subject + " is empty. Every device needs its serial number."
	case excelScientific(serial):
		return fmt.Sprintf("%s %s looks like a number that Excel turned into scientific notation, so the real serial number is lost. Format the column as Text in Excel and enter the serial number again.", subject, show(serial))
	case len(serial) > MaxSerialLength:
		return fmt.Sprintf("%s %s is %s characters long, and serial numbers have at most %d.", subject, show(serial), Thousands(utf8.RuneCountInString(serial)), MaxSerialLength)
	}
	if c, found := unseen.Find(serial); found {
		return fmt.Sprintf("%s %s contains %s, so it would read as, or look like, another serial number. Remove it and keep the serial number as the device reports it.", subject, show(serial), unseen.Describe(c))
	}
	return ""
}

// excelScientific reports whether s looks like Excel's scientific notation
// for a long number, such as "1.23457E+11".
func excelScientific(s string) bool {
	i := 0
	digits := func() int {
		st := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i - st
	}
	if digits() == 0 {
		return false
	}
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i+1 >= len(s) || (s[i] != 'E' && s[i] != 'e') || s[i+1] != '+' {
		return false
	}
	i += 2
	return digits() > 0 && i == len(s)
}

func isAlnum(c byte) bool {
	return ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}

// plausibleProductKey checks the XXXXX-XXXXX-XXXXX-XXXXX-XXXXX form.
func plausibleProductKey(s string) bool {
	if len(s) != productKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%6 == 5 {
			if s[i] != '-' {
				return false
			}
		} else if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// PlausibleUPN reports whether s looks like a user principal name, name@domain.tld, with no
// spaces, and no longer than Entra ID allows.
func PlausibleUPN(s string) bool {
	if TooLong(s, MaxUserLength) {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError || strings.ContainsRune("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\u0085,;:\"<>()[]\\", r) {
			return false
		}
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	labels := 0
	for domain != "" {
		label := domain
		if dot := strings.IndexByte(domain, '.'); dot >= 0 {
			label, domain = domain[:dot], domain[dot+1:]
			if domain == "" {
				return false // trailing dot
			}
		} else {
			domain = ""
		}
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; c < utf8.RuneSelf && !isAlnum(c) && c != '-' {
				return false
			}
		}
		labels++
		if domain == "" { // label is the top-level domain
			if labels < 2 || len(label) < 2 {
				return false
			}
			for i := 0; i < len(label); i++ {
				if c := label[i]; c < utf8.RuneSelf && !(('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')) {
					return false
				}
			}
		}
	}
	return labels >= 2
}

// show quotes a value for a message, shortening long values so that a
// misplaced hash never appears whole.
func show(v string) string {
	if utf8.RuneCountInString(v) > maxShownLen {
		v = Truncate(v)
	}
	return strconv.Quote(v)
}

func plural(n int, one, many string) string {
	return strconv.Itoa(n) + " " + pluralWord(n, one, many)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
