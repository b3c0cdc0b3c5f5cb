package devicecsv

import (
	"reflect"
	"testing"
)

func TestReadSerialsFromAList(t *testing.T) {
	l := ReadSerials("5CG1\n\n 5CG2, 5CG3\t\"5CG4\"\r\n\n;\n5CG5\n\n")
	want := []Serial{{1, "5CG1"}, {3, "5CG2"}, {3, "5CG3"}, {3, "5CG4"}, {6, "5CG5"}}
	if l.Column || !reflect.DeepEqual(l.Serials, want) || !reflect.DeepEqual(l.Blank, []int{2, 4, 5}) {
		t.Errorf("%+v", l)
	}
}

func TestReadSerialsFromTheDeviceSerialNumberColumn(t *testing.T) {
	file := "\uFEFF\"Device Serial Number\",\"Windows Product ID\",\"Hardware Hash\"\r\n" +
		"5CG1,,T0FBQUFB\r\n" +
		",,T0FBQUFB\r\n" +
		",,\r\n" +
		"5CG2,,T0FBQUFB\r\n"
	l := ReadSerialFile([]byte(file))
	want := []Serial{{2, "5CG1"}, {3, ""}, {5, "5CG2"}}
	if !l.Column || !l.Hashes || !reflect.DeepEqual(l.Serials, want) || !reflect.DeepEqual(l.Blank, []int{4}) || len(l.Notes) != 1 {
		t.Errorf("%+v", l)
	}
	// A spreadsheet's own column order, separated by semicolons.
	l = ReadSerials("Group Tag;device serial number\nSales;5CG9\n")
	if !l.Column || l.Hashes || !reflect.DeepEqual(l.Serials, []Serial{{2, "5CG9"}}) {
		t.Errorf("%+v", l)
	}
	// A column copied with its heading, as Graph names it.
	l = ReadSerials("serialNumber\n5CG9\n5CG8\n")
	if !l.Column || !reflect.DeepEqual(l.Serials, []Serial{{2, "5CG9"}, {3, "5CG8"}}) {
		t.Errorf("%+v", l)
	}
}

func TestReadSerialFileRefusesWhatIsNotText(t *testing.T) {
	if l := ReadSerialFile([]byte("PK\x03\x04rest")); l.Fatal == "" || len(l.Serials) != 0 {
		t.Errorf("%+v", l)
	}
}

func TestSerialProblem(t *testing.T) {
	for serial, bad := range map[string]bool{"5CG3281JQZ": false, "": true, "1.23457E+11": true, "5CG\u200b1": true, string(make([]byte, 129)): true} {
		if got := SerialProblem("Serial number", serial); (got != "") != bad {
			t.Errorf("%q: %q", serial, got)
		}
	}
}
