package handlers

import (
	"mime"
	"strings"
	"testing"
)

// Every cell of the report is formula-safe (OWASP's CSV injection guidance).
func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\t=1": "'\t=1", "\r=1": "' =1", "  =1": "'  =1",
		"＝1": "'＝1", "a=1": "a=1", "": "", "SN-1": "SN-1", "line\n=2": "line =2",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// A report downloads under its file's name, in a header of printable ASCII that every browser
// reads the same: a name beyond ASCII travels as filename* with an ASCII stand-in; an import of
// pasted rows keeps the name of the import.
func TestReportDisposition(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"batch-a.csv", "batch-a-import-report.csv"},
		{"Geräte Q4.CSV", "Geräte Q4-import-report.csv"},
		{"100% done; really, 'ok'.txt", "100% done; really, 'ok'-import-report.csv"},
		{"=SUM(1+1)", "=SUM(1+1)-import-report.csv"},
		{"", "autopilot-import-0199a000-0000-7000-8000-0000000000a1.csv"},
	} {
		cd := reportDisposition("0199a000-0000-7000-8000-0000000000a1", c.file)
		kind, params, err := mime.ParseMediaType(cd)
		if err != nil || kind != "attachment" || params["filename"] != c.want || strings.ContainsFunc(cd, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Errorf("%q downloads as %q: %v %v", c.file, cd, params, err)
		}
	}
}
