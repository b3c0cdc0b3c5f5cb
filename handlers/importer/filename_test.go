package importer

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// A file name is what a browser sent: it is shown and names downloads without its folder, control
// or invisible characters, quotes or the other characters Windows refuses, and no longer than 120
// characters with its extension kept.
func TestCleanFileName(t *testing.T) {
	long := strings.Repeat("Lieferung-Geräte-", 20) + "Q4.csv"
	for _, c := range []struct{ sent, want string }{
		{"batch-a.csv", "batch-a.csv"},
		{`C:\Users\adele\Desktop\batch-a.csv`, "batch-a.csv"},
		{"/home/adele/../../etc/batch-a.csv", "batch-a.csv"},
		{"batch\t\"Q4\"\r\n\x00\x07-a.csv", "batch Q4 -a.csv"},
		{"invoice\u202egsv.csv", "invoicegsv.csv"},
		{"zero\u200bwidth\ufeff.csv", "zerowidth.csv"},
		{`a*b:c<d>e?f|g.csv`, "abcdefg.csv"},
		{"  spaced   out .csv  ", "spaced out .csv"},
		{"bad\xff\xfeutf8.csv", "badutf8.csv"},
		{"=HYPERLINK(\"x\").csv", "=HYPERLINK(x).csv"},
		{"Adele's devices.csv", "Adele's devices.csv"},
		{"\x01\x02", ""},
		{`C:\`, ""},
		{"...", ""},
	} {
		if got := CleanFileName(c.sent); got != c.want {
			t.Errorf("CleanFileName(%q) = %q, want %q", c.sent, got, c.want)
		}
	}
	got := CleanFileName(long)
	if n := utf8.RuneCountInString(got); n != maxFileName || !strings.HasSuffix(got, "…g-Geräte-Q4.csv") || !strings.HasPrefix(got, "Lieferung-Geräte-") {
		t.Errorf("a long name became %q (%d characters)", got, n)
	}
	for _, sent := range []string{long, strings.Repeat("\u202e\"x", 5000), strings.Repeat("é", 300) + ".csv"} {
		got := CleanFileName(sent)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxFileName || strings.ContainsFunc(got, func(r rune) bool {
			return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || strings.ContainsRune(`"/\`, r)
		}) {
			t.Errorf("CleanFileName(%.40q…) = %q", sent, got)
		}
	}
}

// Rows pasted, typed or approved from registration codes have no file name; an import's records
// name the file they came from, quoted, or none.
func TestPayloadFileName(t *testing.T) {
	for _, c := range []struct {
		p           Payload
		file, shown string
	}{
		{Payload{Source: "batch-a.csv"}, "batch-a.csv", "batch-a.csv"},
		{Payload{Source: `C:\x\"b".csv`}, "b.csv", "b.csv"}, // stored before names were cleaned
		{Payload{Source: SourcePasted}, "", SourcePasted},
		{Payload{Source: SourceOneDevice}, "", SourceOneDevice},
		{Payload{Source: "Registration code ABC", ApprovedFrom: "ABC"}, "", "Registration code ABC"},
		{Payload{}, "", ""},
	} {
		if c.p.FileName() != c.file || c.p.Shown() != c.shown {
			t.Errorf("%+v: file %q, shown %q", c.p, c.p.FileName(), c.p.Shown())
		}
	}
	if _, s := finishedOutcome(Counts{Rows: 2, Imported: 2}, nil, "batch-a.csv"); !strings.HasPrefix(s, "Import of 2 devices from “batch-a.csv” finished: 2 imported.") {
		t.Errorf("the finished record says %q", s)
	}
	if _, s := finishedOutcome(Counts{Rows: 2, Imported: 2}, nil, ""); !strings.HasPrefix(s, "Import of 2 devices finished: 2 imported.") {
		t.Errorf("the finished record of pasted rows says %q", s)
	}
}
