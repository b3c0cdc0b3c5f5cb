package devicecsv

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	short := hashOf(5, 1200)
	seeds := [][]byte{
		nil,
		[]byte(Header),
		csvLines(Header, rowLine("SER1", "", short, "t", "a@b.cd")),
		csvLines(strings.ToLower(Header), rowLine("SER1", "ABCDE-12345-FGHIJ-67890-KLMNO", strings.TrimRight(short, "="), "", "")),
		csvLines(strings.ReplaceAll(Header, ",", ";"), "SER1;;"+short+";;", "", ";;;;"),
		csvLines(`"Device Serial Number","Windows Product ID","Hardware Hash"`, `"S","","`+short[:50]+"\n"+short[50:]+`"`, `"unterminated,`),
		csvLines("sep=,", Header, rowLine("1.2E+11", "x", "==", "", "")),
		utf16Bytes(string(csvLines(Header, rowLine("S", "", short, "", ""))), false, true),
		utf16Bytes(string(csvLines(Header, rowLine("S", "", short, "", ""))), true, false),
		append([]byte{0xEF, 0xBB, 0xBF}, csvLines(Header, rowLine("S", "", short[:len(short)-3], "", ""))...),
		{0xFF, 0xFE, 0x00, 0xD8},
		{0xFE, 0xFF, 0xDC, 0x00, 0x00},
		[]byte("PK\x03\x04"),
		[]byte("\"\"\"\r\r\n\n,;\t\"\x1a"),
		[]byte("Hardware Hash\n====\nAAA\nA\n"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := parse(data, 0, false) // not Parse: a recovered panic must fail the fuzzer
		if rep == nil {
			t.Fatal("nil report")
		}
		// Read in place, the same bytes give the same report.
		if owned := parse(bytes.Clone(data), 0, true); !reflect.DeepEqual(owned, rep) {
			t.Fatalf("in place: %+v\ncopied: %+v", owned, rep)
		}
		if len(rep.FileErrors) > 0 && len(rep.Rows) > 0 {
			t.Fatal("rows reported despite a file error")
		}
		valid, fixed, bad := 0, 0, 0
		last := 0
		for _, r := range rep.Rows {
			if !r.valid() && len(r.Errors) == 0 {
				t.Fatalf("line %d is neither valid nor has errors", r.Line)
			}
			if r.Line <= last {
				t.Fatalf("line numbers not increasing: %d after %d", r.Line, last)
			}
			last = r.Line
			switch r.Verdict() {
			case "ok":
				valid++
			case "fixed":
				valid++
				fixed++
			case "error":
				bad++
			default:
				t.Fatalf("verdict %q", r.Verdict())
			}
			if r.valid() {
				if r.SerialNumber == "" {
					t.Fatal("valid row without serial number")
				}
				b, err := DecodeHash(r.HardwareHash)
				if err != nil || len(b) < minHashBytes || len(b) > maxHashBytes {
					t.Fatalf("valid row's hash does not decode: %v, %d bytes", err, len(b))
				}
			}
			if len(r.HardwareHash) > 16 {
				for _, m := range append(append([]string{}, r.Notes...), r.Errors...) {
					if strings.Contains(m, r.HardwareHash) {
						t.Fatalf("message contains the whole hash: %s", Truncate(m))
					}
				}
			}
		}
		if valid != rep.ValidCount || fixed != rep.FixedCount || bad != rep.ErrorCount {
			t.Fatalf("counts %d/%d/%d, rows say %d/%d/%d", rep.ValidCount, rep.FixedCount, rep.ErrorCount, valid, fixed, bad)
		}
		if len(rep.validRows()) != valid {
			t.Fatal("ValidRows disagrees with ValidCount")
		}
	})
}
