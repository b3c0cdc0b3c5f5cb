package handlers

import (
	"encoding/csv"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/store"
)

// reportHeader is the outcome report's header line.
var reportHeader = []string{"Line", "Device Serial Number", "Group Tag", "Assigned User", "Verdict", "Error Code", "Error",
	"What happened and what to do", "Found after a lost answer", "Batch", "Device Registration ID"}

// writeImportReport writes an import's outcome report: every row of the original file in file
// order, in the job page's words, never a hash. Every cell, whether it came from the file or from
// Graph, is formula-safe.
func writeImportReport(w io.Writer, rows []store.ImportRow, job explain.Job) error {
	cw := spreadsheetCSV(w)
	cw.Write(reportHeader)
	for _, r := range rows {
		d := explain.Row(r, job)
		r, _ = shownRow(r)
		code, reconciled, batch := "", "", ""
		if r.ErrorCode != 0 {
			code = strconv.Itoa(r.ErrorCode)
		}
		if importer.FoundByLookUp(r) {
			reconciled = "yes"
		}
		if r.Batch > 0 {
			batch = strconv.Itoa(r.Batch)
		}
		record := []string{strconv.Itoa(r.Line), r.Serial, r.GroupTag, r.User, d.Label, code, r.ErrorName, d.Detail, reconciled, batch, r.RegistrationID}
		for i := range record {
			record[i] = csvSafe(record[i])
		}
		cw.Write(record)
	}
	cw.Flush()
	return cw.Error()
}

// spreadsheetCSV starts a CSV file for a spreadsheet program: with the byte order mark that
// tells Excel the file is UTF-8 (without it Excel reads it as the machine's ANSI code page and
// shows "outcome unknown â€” check" and broken accented serials and tags).
func spreadsheetCSV(w io.Writer) *csv.Writer {
	_, _ = io.WriteString(w, "\ufeff")
	return csv.NewWriter(w)
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet program, as OWASP's CSV
// injection guidance says: a cell starting with = + - @ tab or carriage return (after any
// spaces, which spreadsheets skip) gets a leading apostrophe. Line breaks inside a cell would let
// the next line start a formula in programs that split on them, so they become spaces.
func csvSafe(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
	t := strings.TrimLeft(s, " ")
	if t != "" && strings.ContainsRune("=+-@\t\r＝＋－＠", []rune(t)[0]) {
		return "'" + s
	}
	return s
}

// reportDisposition is the Content-Disposition of an import's report: named after the file the
// rows came from (batch-a.csv gives batch-a-import-report.csv), else after the import. The name
// is already cleaned (importer.CleanFileName); a name beyond ASCII travels as RFC 6266's
// filename* (UTF-8), with an ASCII stand-in for browsers that only read filename.
func reportDisposition(jobID, file string) string {
	if file == "" {
		return `attachment; filename="autopilot-import-` + jobID + `.csv"`
	}
	name := strings.TrimSuffix(file, path.Ext(file)) + "-import-report.csv"
	ascii := strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf || r == '%' {
			return '_'
		}
		return r
	}, name)
	if ascii == name {
		return `attachment; filename="` + name + `"`
	}
	var enc strings.Builder
	for _, b := range []byte(name) {
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$&+-.^_`|~", b) >= 0 {
			enc.WriteByte(b)
		} else {
			fmt.Fprintf(&enc, "%%%02X", b)
		}
	}
	return `attachment; filename="` + ascii + `"; filename*=UTF-8''` + enc.String()
}
