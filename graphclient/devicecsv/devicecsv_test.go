package devicecsv

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// hashOf returns a realistic hardware hash: n random bytes, standard padded base64.
func hashOf(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)
}

var (
	hashA = hashOf(1, 4000) // 4000 % 3 == 1: ends in "=="
	hashB = hashOf(2, 4001) // ends in one "="
	hashC = hashOf(3, 3999) // no padding
)

func csvLines(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func rowLine(serial, pk, hash, tag, user string) string {
	return strings.Join([]string{serial, pk, hash, tag, user}, ",")
}

func contains(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

func count(list []string, sub string) int {
	n := 0
	for _, s := range list {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func TestHeader(t *testing.T) {
	good := rowLine("SER1", "", hashA, "", "")
	tests := []struct {
		name      string
		data      []byte
		fileErr   string // substring of a FileError; "" means none expected
		note      string // substring of a FileNote; "" means no notes expected
		wantRows  int
		wantValid int
	}{
		{"exact", csvLines(Header, good), "", "", 1, 1},
		{"three columns", csvLines("Device Serial Number,Windows Product ID,Hardware Hash", "SER1,,"+hashA), "", "", 1, 1},
		{"lower case", csvLines(strings.ToLower(Header), good), "", "Fixed the capitalisation or spacing", 1, 1},
		{"extra spaces", csvLines(" Device  Serial Number , Windows Product ID,Hardware Hash ,GroupTag,Assigned User", good), "", "Fixed the capitalisation or spacing", 1, 1},
		{"upper case", csvLines(strings.ToUpper(Header), good), "", "\"DEVICE SERIAL NUMBER\" → \"Device Serial Number\"", 1, 1},
		{"missing hash column", csvLines("Device Serial Number,Windows Product ID,Group Tag", "SER1,,tag"), "missing the required column \"Hardware Hash\"", "", 0, 0},
		{"missing two columns", csvLines("Device Serial Number,Group Tag", "SER1,tag"), "required columns \"Windows Product ID\", \"Hardware Hash\"", "", 0, 0},
		{"no header", csvLines(good, good), "not the Autopilot device header", "", 0, 0},
		{"not csv", []byte("Hello,\nthis is a letter, not a device list.\n"), "not the Autopilot device header", "", 0, 0},
		{"empty", nil, "The file is empty", "", 0, 0},
		{"whitespace only", []byte(" \r\n\t\n"), "The file is empty", "", 0, 0},
		{"header only", csvLines(Header), "header but no devices", "", 0, 0},
		{"duplicate column", csvLines(Header+",Hardware Hash", good), "appears twice", "", 0, 0},
		{"reordered columns", csvLines("Hardware Hash,Device Serial Number,Windows Product ID", hashA+",SER1,"), "", "different order", 1, 1},
		{"unknown column", csvLines(Header+",Notes", good+",spare laptop"), "", "Ignored a column that is not part of the Autopilot template: \"Notes\"", 1, 1},
		{"trailing empty columns", csvLines(Header+",,", good+",,"), "", "", 1, 1},
		{"xlsx", []byte("PK\x03\x04\x14\x00\x06\x00rest of a zip"), "Excel workbook (.xlsx)", "", 0, 0},
		{"xls", []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), "old Excel workbook", "", 0, 0},
		{"binary", append([]byte(Header+"\n"), 0, 1, 2, 3, 0xff), "binary data", "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Parse(tc.data)
			if tc.fileErr == "" && len(rep.FileErrors) > 0 {
				t.Fatalf("unexpected FileErrors %q", rep.FileErrors)
			}
			if tc.fileErr != "" && !contains(rep.FileErrors, tc.fileErr) {
				t.Fatalf("FileErrors %q, want one containing %q", rep.FileErrors, tc.fileErr)
			}
			if tc.note == "" && tc.fileErr == "" && len(rep.FileNotes) > 0 {
				t.Errorf("unexpected FileNotes %q", rep.FileNotes)
			}
			if tc.note != "" && !contains(rep.FileNotes, tc.note) {
				t.Errorf("FileNotes %q, want one containing %q", rep.FileNotes, tc.note)
			}
			if len(rep.Rows) != tc.wantRows || rep.ValidCount != tc.wantValid {
				t.Errorf("rows=%d valid=%d, want %d and %d; rows: %+v", len(rep.Rows), rep.ValidCount, tc.wantRows, tc.wantValid, rep.Rows)
			}
			if len(rep.FileErrors) > 0 && (len(rep.Rows) != 0 || rep.ValidCount+rep.ErrorCount != 0) {
				t.Errorf("file error but rows reported")
			}
			for _, r := range rep.Rows {
				if r.valid() && (r.SerialNumber != "SER1" || r.HardwareHash != hashA) {
					t.Errorf("row mapped wrongly: serial %q", r.SerialNumber)
				}
			}
		})
	}
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// parseReadable parses data, which must be readable as a file, and checks its file notes: exactly
// one containing note, or none when note is "".
func parseReadable(t *testing.T, data []byte, note string) *Report {
	t.Helper()
	rep := Parse(data)
	if len(rep.FileErrors) > 0 {
		t.Fatalf("FileErrors %q", rep.FileErrors)
	}
	if note == "" && len(rep.FileNotes) > 0 {
		t.Errorf("unexpected notes %q", rep.FileNotes)
	}
	if note != "" && count(rep.FileNotes, note) != 1 {
		t.Errorf("FileNotes %q, want exactly one containing %q", rep.FileNotes, note)
	}
	return rep
}

func TestEncodings(t *testing.T) {
	text := string(csvLines(Header, rowLine("SER1", "", hashA, "Café", ""), rowLine("SER2", "", hashB, "𝄞 music", "")))
	tests := []struct {
		name     string
		data     []byte
		note     string
		wantTag1 string
	}{
		{"plain utf-8", []byte(text), "", "Café"},
		{"utf-8 bom", append([]byte{0xEF, 0xBB, 0xBF}, text...), "byte order mark", "Café"},
		{"utf-16 le bom", utf16Bytes(text, false, true), "UTF-16 little-endian", "Café"},
		{"utf-16 be bom", utf16Bytes(text, true, true), "UTF-16 big-endian", "Café"},
		{"utf-16 le no bom", utf16Bytes(text, false, false), "UTF-16 little-endian without a byte order mark", "Café"},
		{"utf-16 be no bom", utf16Bytes(text, true, false), "UTF-16 big-endian without a byte order mark", "Café"},
		{"windows-1252", bytes.Replace([]byte(strings.Replace(text, "𝄞 music", "x", 1)), []byte("é"), []byte{0xE9}, 1), "Windows-1252", "Café"},
		{"ctrl-z at end", append([]byte(text), 0x1a), "", "Café"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := parseReadable(t, tc.data, tc.note)
			if rep.ValidCount != 2 || rep.ErrorCount != 0 {
				t.Fatalf("valid=%d errors=%d: %+v", rep.ValidCount, rep.ErrorCount, rep.Rows)
			}
			if rep.Rows[0].GroupTag != tc.wantTag1 || rep.Rows[0].HardwareHash != hashA || rep.Rows[1].HardwareHash != hashB {
				t.Errorf("values not decoded: tag %q", rep.Rows[0].GroupTag)
			}
		})
	}
}

func TestSyntax(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		note       string // FileNote expected exactly once; "" means none
		wantSerial []string
		wantLines  []int
		wantTags   []string
	}{
		{"trimmed fields", csvLines(Header, "  SER1 ,  , "+hashA+"  , tag one ,  "), "", []string{"SER1"}, []int{2}, []string{"tag one"}},
		{"quoted fields", csvLines(`"Device Serial Number","Windows Product ID","Hardware Hash","Group Tag","Assigned User"`,
			`"SER1","","`+hashA+`","Sales, Berlin",""`, `"SER2","","`+hashB+`","say ""hi""",""`), "Removed quotation marks", []string{"SER1", "SER2"}, []int{2, 3}, []string{"Sales, Berlin", `say "hi"`}},
		{"quoted hash over several lines", csvLines(Header, `SER1,,"`+hashA[:100]+"\r\n"+hashA[100:]+`",tag,`, rowLine("SER2", "", hashB, "t2", "")),
			"Removed quotation marks", []string{"SER1", "SER2"}, []int{2, 4}, []string{"tag", "t2"}},
		{"unterminated quote", csvLines(Header, `SER1,,`+hashA+`,"tag,`, rowLine("SER2", "", hashB, "t2", "")), "Removed quotation marks", []string{"SER1", "SER2"}, []int{2, 3}, []string{"tag", "t2"}},
		{"empty lines skipped", csvLines("", Header, "", rowLine("SER1", "", hashA, "", ""), "   ", ",,,,", "", rowLine("SER2", "", hashB, "", "")), "Skipped 5 empty lines", []string{"SER1", "SER2"}, []int{4, 8}, []string{"", ""}},
		{"one empty line", csvLines(Header, rowLine("SER1", "", hashA, "", ""), ""), "Skipped 1 empty line.", []string{"SER1"}, []int{2}, []string{""}},
		{"semicolons", csvLines(strings.ReplaceAll(Header, ",", ";"), "SER1;;"+hashA+";Sales, Berlin;", "SER2;;"+hashB+";;"), "semicolons", []string{"SER1", "SER2"}, []int{2, 3}, []string{"Sales, Berlin", ""}},
		{"tabs", csvLines(strings.ReplaceAll(Header, ",", "\t"), "SER1\t\t"+hashA+"\tt\t"), "tabs", []string{"SER1"}, []int{2}, []string{"t"}},
		{"excel sep line", csvLines("sep=;", strings.ReplaceAll(Header, ",", ";"), "SER1;;"+hashA+";t;"), "\"sep=;\"", []string{"SER1"}, []int{3}, []string{"t"}},
		{"LF only", []byte(Header + "\n" + rowLine("SER1", "", hashA, "a", "") + "\n" + rowLine("SER2", "", hashB, "b", "")), "", []string{"SER1", "SER2"}, []int{2, 3}, []string{"a", "b"}},
		{"CR only", []byte(Header + "\r" + rowLine("SER1", "", hashA, "a", "") + "\r"), "", []string{"SER1"}, []int{2}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := parseReadable(t, tc.data, tc.note)
			var serials, tags []string
			var lines []int
			for _, r := range rep.Rows {
				if !r.valid() {
					t.Errorf("line %d: %q", r.Line, r.Errors)
				}
				serials, tags, lines = append(serials, r.SerialNumber), append(tags, r.GroupTag), append(lines, r.Line)
			}
			if !slices.Equal(serials, tc.wantSerial) || !slices.Equal(lines, tc.wantLines) || !slices.Equal(tags, tc.wantTags) {
				t.Errorf("got serials %q lines %v tags %q; want %q %v %q", serials, lines, tags, tc.wantSerial, tc.wantLines, tc.wantTags)
			}
			if rep.Rows[0].HardwareHash != hashA {
				t.Errorf("first hash not read intact (len %d)", len(rep.Rows[0].HardwareHash))
			}
		})
	}
}

func TestRowRules(t *testing.T) {
	unpadded2 := strings.TrimRight(hashA, "=")                        // needs "=="
	unpadded1 := strings.TrimRight(hashB, "=")                        // needs "="
	unpaddedA := unpadded2[:len(unpadded2)-1]                         // len%4 == 1: needs "A=="
	wrapped := hashA[:76] + "\n " + hashA[76:152] + " " + hashA[152:] // line breaks inside
	tests := []struct {
		name     string
		line     string
		verdict  string
		msg      string // substring of an error (verdict "error") or note (verdict "fixed")
		wantHash string // expected cleaned hash, if set
	}{
		{"ok", rowLine("SER1", "", hashA, "", ""), "ok", "", hashA},
		{"ok all columns", rowLine("SER1", "ABCDE-12345-FGHIJ-67890-KLMNO", hashA, "Kiosk", "ada.lovelace@contoso.co.uk"), "ok", "", hashA},
		{"missing serial", rowLine("", "", hashA, "", ""), "error", "Device Serial Number is empty", ""},
		{"excel scientific serial", rowLine("1.23457E+11", "", hashA, "", ""), "error", "scientific notation", ""},
		{"serial 128", rowLine(strings.Repeat("S", 128), "", hashA, "", ""), "ok", "", ""},
		{"serial 129", rowLine(strings.Repeat("S", 129), "", hashA, "", ""), "error", "is 129 characters long, and serial numbers have at most 128", ""},
		{"serial is a hash", rowLine(hashA, "", hashB, "", ""), "error", "Check that the columns are in the header's order", ""},
		{"serial with a tab", rowLine("SER\t1", "", hashA, "", ""), "error", `Device Serial Number "SER\t1" contains a control character`, ""},
		{"serial with a line break", `"SER` + "\n" + `1",,` + hashA + ",,", "error", "contains a control character", ""},
		{"serial with a direction override", rowLine("ABC\u202eDEF", "", hashA, "", ""), "error", `Device Serial Number "ABC\u202eDEF" contains a character that cannot be seen (U+202E, a right-to-left override), so it would read as, or look like, another serial number`, ""},
		{"serial with a zero-width space", rowLine("5CG3281JQZ\u200b", "", hashA, "", ""), "error", `"5CG3281JQZ\u200b" contains a character that cannot be seen (U+200B, a zero-width space)`, ""},
		{"serial with a byte order mark", rowLine("\ufeff5CG3281JQZ", "", hashA, "", ""), "error", "(U+FEFF, a byte order mark", ""},
		{"serial with an escape", rowLine("SER\x1b[2J", "", hashA, "", ""), "error", "control character (U+001B, an escape", ""},
		{"serial with spaces around", rowLine(" \t5CG3281JQZ \t", "", hashA, "", ""), "ok", "", hashA},
		{"serial in another script", rowLine("СЕР-Ü1", "", hashA, "", ""), "ok", "", hashA},
		{"group tag with a direction override", rowLine("SER1", "", hashA, "Tag\u202eX", ""), "error", `Group Tag "Tag\u202eX" contains a character that cannot be seen (U+202E, a right-to-left override). A group tag with it never matches a dynamic group's rule`, ""},
		{"group tag with a zero-width joiner", rowLine("SER1", "", hashA, "Kiosk\u200d", ""), "error", "(U+200D, a zero-width joiner)", ""},
		{"group tag with a line break", `SER1,,` + hashA + `,"Tag` + "\n" + `X",`, "error", `Group Tag "Tag\nX" contains a control character (U+000A, a line break)`, ""},
		{"upn with a direction mark", rowLine("SER1", "", hashA, "", "ada\u200f@contoso.com"), "error", `Assigned User "ada\u200f@contoso.com" contains a character that cannot be seen (U+200F, a right-to-left mark)`, ""},
		{"missing hash", rowLine("SER1", "", "", "", ""), "error", "Hardware Hash is empty", ""},
		{"short row", "SER1", "error", "Hardware Hash is empty", ""},
		{"hash not base64", rowLine("SER1", "", hashA[:100]+"-_"+hashA[102:], "", ""), "error", "not valid base64: it contains the character '-' at position 101", ""},
		{"hash is excel error", rowLine("SER1", "", "#VALUE!", "", ""), "error", "not valid base64", ""},
		{"hash equals signs only", rowLine("SER1", "", "====", "", ""), "error", "only \"=\" signs", ""},
		{"hash = in middle", rowLine("SER1", "", hashA[:100]+"="+hashA[101:], "", ""), "error", "in the middle", ""},
		{"unpadded ==", rowLine("SER1", "", unpadded2, "", ""), "fixed", `Hardware hash was missing base64 padding; added "==".`, hashA},
		{"unpadded =", rowLine("SER1", "", unpadded1, "", ""), "fixed", `Hardware hash was missing base64 padding; added "=".`, hashB},
		{"half padded", rowLine("SER1", "", hashA[:len(hashA)-1], "", ""), "fixed", `added "="`, hashA},
		{"unpadded A", rowLine("SER1", "", unpaddedA, "", ""), "fixed", `added "A=="`, unpaddedA + "A=="},
		{"too much padding", rowLine("SER1", "", hashC+"==", "", ""), "fixed", `removed "=="`, hashC},
		{"wrong padding", rowLine("SER1", "", unpadded2+"===", "", ""), "fixed", `ending "===" was changed to "=="`, hashA},
		{"hash with line breaks", `SER1,,"` + wrapped + `",,`, "fixed", "spaces or line breaks", hashA},
		{"hash too short", rowLine("SER1", "", hashOf(9, 500), "", ""), "error", "implausible length: it decodes to 500 bytes", ""},
		{"hash just too short", rowLine("SER1", "", hashOf(9, 999), "", ""), "error", "implausible length", ""},
		{"hash shortest", rowLine("SER1", "", hashOf(9, 1000), "", ""), "ok", "", ""},
		{"hash longest", rowLine("SER1", "", hashOf(9, 8192), "", ""), "ok", "", ""},
		{"hash too long", rowLine("SER1", "", hashOf(9, 9000), "", ""), "error", "implausible length: it decodes to 9000 bytes", ""},
		{"upn with space", rowLine("SER1", "", hashA, "", "ada lovelace@contoso.com"), "error", `Assigned User "ada lovelace@contoso.com" is not a valid user principal name`, ""},
		{"upn no at", rowLine("SER1", "", hashA, "", "ada.contoso.com"), "error", "not a valid user principal name", ""},
		{"upn two at", rowLine("SER1", "", hashA, "", "ada@x@contoso.com"), "error", "not a valid user principal name", ""},
		{"upn no tld", rowLine("SER1", "", hashA, "", "ada@contoso"), "error", "not a valid user principal name", ""},
		{"upn short tld", rowLine("SER1", "", hashA, "", "ada@contoso.c"), "error", "not a valid user principal name", ""},
		{"upn empty local", rowLine("SER1", "", hashA, "", "@contoso.com"), "error", "not a valid user principal name", ""},
		{"upn empty label", rowLine("SER1", "", hashA, "", "ada@contoso..com"), "error", "not a valid user principal name", ""},
		{"upn trailing dot", rowLine("SER1", "", hashA, "", "ada@contoso.com."), "error", "not a valid user principal name", ""},
		{"upn display name", rowLine("SER1", "", hashA, "", "Ada <ada@contoso.com>"), "error", "not a valid user principal name", ""},
		{"upn nbsp", rowLine("SER1", "", hashA, "", "ada\u00a0l@contoso.com"), "error", "not a valid user principal name", ""},
		{"upn ok plus", rowLine("SER1", "", hashA, "", "ada+it@sub.contoso.com"), "ok", "", ""},
		{"upn ok onmicrosoft", rowLine("SER1", "", hashA, "", "admin@contoso.onmicrosoft.com"), "ok", "", ""},
		{"group tag 200", rowLine("SER1", "", hashA, strings.Repeat("t", 200), ""), "ok", "", ""},
		{"group tag 200 runes", rowLine("SER1", "", hashA, strings.Repeat("ü", 200), ""), "ok", "", ""},
		{"group tag 201", rowLine("SER1", "", hashA, strings.Repeat("t", 201), ""), "error", "is 201 characters long; Intune allows at most 200. Check that the columns are in the header's order.", ""},
		{"product key ok lower", rowLine("SER1", "abcde-12345-fghij-67890-klmno", hashA, "", ""), "ok", "", ""},
		{"product key short", rowLine("SER1", "ABCDE-12345", hashA, "", ""), "error", "Windows Product ID is not in the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (29 characters; this one has 11)", ""},
		{"product key no dashes", rowLine("SER1", "ABCDE12345FGHIJ67890KLMNO1234", hashA, "", ""), "error", "Windows Product ID is not in the form", ""},
		{"product key bad char", rowLine("SER1", "ABCDE-12345-FGHIJ-67890-KLMN!", hashA, "", ""), "error", "Windows Product ID is not in the form", ""},
		{"extra values", rowLine("SER1", "", hashA, "", "") + ",surplus,more", "fixed", "This row has 2 extra values beyond the header's columns; they were ignored", hashA},
		{"empty extra values", rowLine("SER1", "", hashA, "", "") + ",,", "ok", "", hashA},
		{"several errors", rowLine("", "bad", "", strings.Repeat("t", 300), "x"), "error", "Device Serial Number is empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Parse(csvLines(Header, tc.line))
			if len(rep.FileErrors) > 0 || len(rep.Rows) != 1 {
				t.Fatalf("FileErrors %q, %d rows", rep.FileErrors, len(rep.Rows))
			}
			r := rep.Rows[0]
			if r.Verdict() != tc.verdict {
				t.Fatalf("verdict %q, want %q; errors %q notes %q", r.Verdict(), tc.verdict, r.Errors, r.Notes)
			}
			if r.valid() != (tc.verdict != "error") {
				t.Errorf("Valid() = %v", r.valid())
			}
			switch tc.verdict {
			case "ok":
				if len(r.Notes) > 0 || len(r.Errors) > 0 {
					t.Errorf("ok row with notes %q errors %q", r.Notes, r.Errors)
				}
			case "fixed":
				if !contains(r.Notes, tc.msg) {
					t.Errorf("notes %q, want %q", r.Notes, tc.msg)
				}
			case "error":
				if !contains(r.Errors, tc.msg) {
					t.Errorf("errors %q, want %q", r.Errors, tc.msg)
				}
			}
			if tc.wantHash != "" && r.HardwareHash != tc.wantHash {
				t.Errorf("hash %s, want %s", Truncate(r.HardwareHash), Truncate(tc.wantHash))
			}
			if r.valid() {
				b, err := DecodeHash(r.HardwareHash)
				if err != nil || len(b) < 1000 || len(b) > 8192 {
					t.Errorf("valid row's hash does not decode: %v (%d bytes)", err, len(b))
				}
			}
			wantCounts := [3]int{1, 0, 0}
			switch tc.verdict {
			case "fixed":
				wantCounts = [3]int{1, 1, 0}
			case "error":
				wantCounts = [3]int{0, 0, 1}
			}
			if got := [3]int{rep.ValidCount, rep.FixedCount, rep.ErrorCount}; got != wantCounts {
				t.Errorf("counts %v, want %v", got, wantCounts)
			}
		})
	}
}

func TestSeveralErrorsAllReported(t *testing.T) {
	rep := Parse(csvLines(Header, rowLine("", "bad", "", strings.Repeat("t", 300), "x")))
	if n := len(rep.Rows[0].Errors); n != 5 {
		t.Errorf("%d errors, want 5: %q", n, rep.Rows[0].Errors)
	}
}

func TestDuplicates(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		errLine int    // file line of the row expected to fail
		msg     string // substring of its error
	}{
		{"serial", []string{rowLine("SER1", "", hashA, "", ""), rowLine("SER2", "", hashB, "", ""), rowLine("SER1", "", hashC, "", "")},
			4, `Device Serial Number "SER1" is already on line 2`},
		{"serial different case", []string{rowLine("ser1", "", hashA, "", ""), rowLine("SER1", "", hashB, "", "")},
			3, `Device Serial Number "SER1" is already on line 2`},
		{"hash", []string{rowLine("SER1", "", hashA, "", ""), rowLine("SER2", "", hashB, "", ""), rowLine("SER3", "", hashA, "", "")},
			4, "This hardware hash (" + Truncate(hashA) + ") is already on line 2"},
		{"hash after repair", []string{rowLine("SER1", "", hashA, "", ""), rowLine("SER2", "", strings.TrimRight(hashA, "="), "", "")},
			3, "is already on line 2"},
		{"first row invalid still counts", []string{rowLine("SER1", "", hashA, "", "not a upn"), "", rowLine("SER1", "", hashB, "", "")},
			4, "already on line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Parse(csvLines(append([]string{Header}, tc.lines...)...))
			if len(rep.FileErrors) > 0 {
				t.Fatalf("FileErrors %q", rep.FileErrors)
			}
			for _, r := range rep.Rows {
				switch {
				case r.Line == tc.errLine:
					if !contains(r.Errors, tc.msg) {
						t.Errorf("line %d errors %q, want %q", r.Line, r.Errors, tc.msg)
					}
				case r.Line == 2 && tc.name == "first row invalid still counts":
				case !r.valid():
					t.Errorf("line %d unexpectedly invalid: %q", r.Line, r.Errors)
				}
			}
		})
	}
}

func TestNoWholeHashInMessages(t *testing.T) {
	unpadded := strings.TrimRight(hashA, "=")
	short := hashOf(7, 600)
	long := hashOf(8, 9000)
	bad := hashB[:2000] + "!" + hashB[2001:]
	data := csvLines(Header+",Extra",
		rowLine("SER1", "", hashA, "", ""),
		rowLine("SER2", "", hashA, "", ""),                      // duplicate hash
		rowLine("SER3", "", unpadded[:len(unpadded)-1], "", ""), // A repair
		rowLine("SER4", "", short, "", ""),                      // implausible
		rowLine("SER5", "", long, "", ""),                       // implausible
		rowLine("SER6", "", bad, "", ""),                        // not base64
		rowLine(hashC, "", hashC, hashC, hashC)+","+hashC,       // hash in every column
		rowLine(hashC, "", hashB, "", ""),                       // duplicate serial that is a hash
		rowLine("SER9", hashC, hashC[:1000]+" \n"+hashC[1000:], "", ""),
	)
	var whole []string
	for _, h := range []string{hashA, hashB, hashC, unpadded, short, long, bad} {
		whole = append(whole, h, strings.TrimRight(h, "="), h[:len(h)/2], h[len(h)/2:])
	}
	rep := Parse(data)
	msgs := append(slices.Clone(rep.FileNotes), rep.FileErrors...)
	for _, r := range rep.Rows {
		msgs = append(msgs, r.Notes...)
		msgs = append(msgs, r.Errors...)
	}
	if len(msgs) < 10 {
		t.Fatalf("expected many messages, got %q", msgs)
	}
	for _, m := range msgs {
		for _, h := range whole {
			if strings.Contains(m, h) {
				t.Fatalf("message contains a whole hash (or half of one): %s", Truncate(m))
			}
		}
		if len(m) > 600 {
			t.Errorf("message suspiciously long (%d bytes): %s", len(m), Truncate(m))
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "…"},
		{"abc", "…"},
		{"abcdefgh", "…"},
		{"abcdefghi", "abcd…fghi"},
		{hashA, hashA[:4] + "…" + hashA[len(hashA)-4:]},
		{"äöüßxyzäöü", "äöüß…zäöü"},
	}
	for _, tc := range tests {
		if got := Truncate(tc.in); got != tc.want {
			t.Errorf("Truncate(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(tc.in) > 0 && strings.Contains(Truncate(tc.in), tc.in) {
			t.Errorf("Truncate(%q) reveals the whole value", tc.in)
		}
	}
}

func TestDecodeHash(t *testing.T) {
	tests := []struct {
		in      string
		wantLen int
		wantErr bool
	}{
		{hashA, 4000, false},
		{hashB, 4001, false},
		{hashC, 3999, false},
		{strings.TrimRight(hashA, "="), 0, true},
		{"!!!!", 0, true},
		{"", 0, false},
	}
	for _, tc := range tests {
		b, err := DecodeHash(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && len(b) != tc.wantLen) {
			t.Errorf("DecodeHash(%s) = %d bytes, %v", Truncate(tc.in), len(b), err)
		}
		if n, ok := b64Len(tc.in); ok != (err == nil && tc.in != "") || (ok && n != len(b)) {
			t.Errorf("b64Len(%s) = %d, %v; decoder says %d, %v", Truncate(tc.in), n, ok, len(b), err)
		}
	}
}

func TestValidRowsAndCounts(t *testing.T) {
	rep := Parse(csvLines(Header,
		rowLine("SER1", "", hashA, "", ""),
		rowLine("SER2", "", "bad", "", ""),
		rowLine("SER3", "", strings.TrimRight(hashB, "="), "", ""),
		rowLine("", "", hashC, "", "")))
	if rep.ValidCount != 2 || rep.FixedCount != 1 || rep.ErrorCount != 2 {
		t.Fatalf("counts %d/%d/%d", rep.ValidCount, rep.FixedCount, rep.ErrorCount)
	}
	var verdicts []string
	for _, r := range rep.Rows {
		verdicts = append(verdicts, r.Verdict())
	}
	if want := []string{"ok", "error", "fixed", "error"}; !slices.Equal(verdicts, want) {
		t.Errorf("verdicts %q, want %q", verdicts, want)
	}
	valid := rep.validRows()
	if len(valid) != 2 || valid[0].SerialNumber != "SER1" || valid[1].SerialNumber != "SER3" {
		t.Errorf("valid rows = %+v", valid)
	}
}

func genFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\r\n")
	for i := range n {
		fmt.Fprintf(&b, "SN%08d,,%s,Tag%d,user%d@contoso.com\r\n", i, hashOf(uint64(i)+100, 4000+i%64), i%7, i)
	}
	return b.Bytes()
}

func TestTenThousandRows(t *testing.T) {
	rep := Parse(genFile(10000))
	if len(rep.FileErrors) > 0 {
		t.Fatalf("FileErrors %q", rep.FileErrors)
	}
	if len(rep.Rows) != 10000 || rep.ValidCount != 10000 || rep.FixedCount != 0 || rep.ErrorCount != 0 {
		t.Fatalf("rows=%d valid=%d fixed=%d errors=%d", len(rep.Rows), rep.ValidCount, rep.FixedCount, rep.ErrorCount)
	}
	if !contains(rep.FileNotes, "sent in 20 or more batches") {
		t.Errorf("FileNotes %q, want a batch note", rep.FileNotes)
	}
	if rep.Rows[9999].Line != 10001 || rep.Rows[9999].SerialNumber != "SN00009999" {
		t.Errorf("last row %d %q", rep.Rows[9999].Line, rep.Rows[9999].SerialNumber)
	}
}

func BenchmarkParse10000(b *testing.B) {
	data := genFile(10000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if rep := Parse(data); rep.ValidCount != 10000 {
			b.Fatalf("valid %d", rep.ValidCount)
		}
	}
}

// TestPathologicalInputsAreLinear guards against quadratic scans: each of these
// 512 KB files must parse quickly.
func TestPathologicalInputsAreLinear(t *testing.T) {
	const n = 1 << 19
	tests := map[string][]byte{
		"unterminated quotes": csvLines(Header, strings.Repeat("\"x\n", n/3)),
		"one long line":       csvLines(Header, strings.Repeat(",", n)),
		"cr only":             []byte(Header + strings.Repeat("\rS,,x", n/5)),
		"mixed cr and lf":     []byte(Header + strings.Repeat("\rS,,x", n/5) + "\n"),
		"no delimiters":       csvLines(Header, strings.Repeat("abcdefgh\n", n/9)),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			done := make(chan *Report, 1)
			go func() { done <- Parse(data) }()
			select {
			case rep := <-done:
				if len(rep.FileErrors) > 0 && len(rep.Rows) > 0 {
					t.Error("rows despite file error")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("parse took too long (quadratic?)")
			}
		})
	}
}

// A file over the row limit is refused while it is read: the refusal names the limit and
// suggests splitting, keeps no rows, and costs about what a file at the limit costs.
func TestRowLimit(t *testing.T) {
	at := genFile(1000)
	if rep := ParseLimit(at, 1000); rep.TooManyRows || rep.ValidCount != 1000 {
		t.Fatalf("a file of exactly the limit: too many %v, valid %d, errors %q", rep.TooManyRows, rep.ValidCount, rep.FileErrors)
	}
	// Blank lines are not devices.
	if rep := ParseLimit(append(append([]byte{}, at...), "\n,,,,\n\n"...), 1000); rep.TooManyRows {
		t.Errorf("blank lines counted as devices")
	}
	rep := ParseLimit(genFile(1001), 1000)
	if !rep.TooManyRows || len(rep.Rows) != 0 || len(rep.FileErrors) != 1 {
		t.Fatalf("one row over: too many %v, %d rows, errors %q", rep.TooManyRows, len(rep.Rows), rep.FileErrors)
	}
	if msg := rep.FileErrors[0]; !strings.Contains(msg, "at most 1,000") || !strings.Contains(msg, "Split") {
		t.Errorf("message %q does not name the limit and suggest splitting", msg)
	}
	if got := TooManyRowsMessage(10000); !strings.Contains(got, "10,000") {
		t.Errorf("%q", got)
	}

	// 1,000,000 short rows: refused quickly, with memory bounded by the limit, not the file.
	// Quickly means at about the cost of a file one row over the limit (timed against it, so a
	// busy machine slows both alike): reading on to the end would cost a hundred times more.
	short := func(n int) []byte {
		var b strings.Builder
		b.WriteString(Header + "\n")
		for i := range n {
			fmt.Fprintf(&b, "S%d,,QUJD,,\n", i)
		}
		return []byte(b.String())
	}
	huge, over := short(1_000_000), short(10_001)
	fastest := func(data []byte) time.Duration {
		best := time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			ParseLimit(data, 10000)
			best = min(best, time.Since(start))
		}
		return best
	}
	if h, o := fastest(huge), fastest(over); h > 10*o+50*time.Millisecond {
		t.Errorf("refusing 1,000,000 rows took %s, one row over the limit %s", h, o)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep = ParseLimit(huge, 10000)
	runtime.ReadMemStats(&after)
	if !rep.TooManyRows {
		t.Fatal("a 1,000,000-row file was not refused")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(huge)) {
		t.Errorf("refusing a %d-byte file allocated %d bytes", len(huge), alloc)
	}
}

// Get-WindowsAutopilotInfo -Partner adds "Manufacturer name" and "Device model": they are read for
// display, with a note, and change nothing of what is imported.
func TestPartnerColumnsAreReadForDisplay(t *testing.T) {
	data := csvLines("Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model",
		"SER1,,"+hashA+",Microsoft Corporation,Surface Laptop 5", "SER2,,"+hashB+",,")
	rep := Parse(data)
	if rep.ValidCount != 2 || !contains(rep.FileNotes, "Get-WindowsAutopilotInfo -Partner") || contains(rep.FileNotes, "Ignored") {
		t.Fatalf("valid %d, notes %q", rep.ValidCount, rep.FileNotes)
	}
	if r := rep.Rows[0]; r.Manufacturer != "Microsoft Corporation" || r.Model != "Surface Laptop 5" || r.HardwareHash != hashA || len(r.Notes) != 0 {
		t.Errorf("row %+v", r)
	}
	if r := rep.Rows[1]; r.Manufacturer != "" || r.Model != "" {
		t.Errorf("row %+v", r)
	}
	if rep := Parse(csvLines(Header, rowLine("SER1", "", hashA, "", ""))); rep.Rows[0].Manufacturer != "" {
		t.Error("a manufacturer from nowhere")
	}
}

// A manufacturer or model is only shown, so what cannot be seen in it is dropped rather than
// refused: the row is still imported, and the words shown are the ones a person sees.
func TestPartnerColumnsDropWhatCannotBeSeen(t *testing.T) {
	data := csvLines("Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model",
		"SER1,,"+hashA+",Micro\u202esoft\x1b[2J,\u200bMo\u202edel \u2066X\u2069")
	rep := Parse(data)
	if rep.ValidCount != 1 {
		t.Fatalf("valid %d, rows %+v", rep.ValidCount, rep.Rows)
	}
	if r := rep.Rows[0]; r.Manufacturer != "Microsoft[2J" || r.Model != "Model X" {
		t.Errorf("manufacturer %q, model %q", r.Manufacturer, r.Model)
	}
}

// valid reports whether the row can be sent to Graph.
func (r Row) valid() bool { return len(r.Errors) == 0 }

// validRows are the rows that can be sent, in file order.
func (rep *Report) validRows() []Row {
	var out []Row
	for _, r := range rep.Rows {
		if r.valid() {
			out = append(out, r)
		}
	}
	return out
}
