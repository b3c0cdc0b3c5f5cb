package devicecsv

import (
	"strings"
)

// Serial is one serial number of a list, on its line (1-based). Value is "" for a row of a
// device CSV whose serial number cell is empty.
type Serial struct {
	Line  int
	Value string
}

// SerialList is what ReadSerials found, in the order given.
type SerialList struct {
	Serials []Serial
	// Column: the text is a CSV, and the serials come from its Device Serial Number (or Serial
	// number) column, named on its first line with text; otherwise it is a plain list.
	Column bool
	// Hashes: the CSV has hardware hashes, which are never shown back, so the text must not be.
	Hashes bool
	// Blank are the empty lines between serial numbers, skipped.
	Blank []int
	// Notes are the conversions the file needed (its encoding, a byte order mark).
	Notes []string
	// Fatal says why a file is not text at all; nothing else is set then.
	Fatal string
}

// ReadSerialFile reads the serial numbers of a file: a CSV with a Device Serial Number column (the
// portal's, Get-WindowsAutopilotInfo's) or a Serial number column (an export of the registered
// devices), whose other columns are ignored, hashes included; or a plain list of serial numbers.
// Any of the encodings the import reads will do.
func ReadSerialFile(data []byte) SerialList {
	text, notes, fatal := decodeText(data, false)
	if fatal != "" {
		return SerialList{Notes: notes, Fatal: fatal}
	}
	l := ReadSerials(text)
	l.Notes = notes
	return l
}

// ReadSerials reads the serial numbers of pasted text: a device CSV as ReadSerialFile reads it, or
// a plain list, one serial number a line or several separated by commas, semicolons, spaces or
// tabs (as a column or a row copied from a spreadsheet gives them).
func ReadSerials(text string) SerialList {
	if l, ok := serialColumn(text); ok {
		return l
	}
	var out SerialList
	var blank []int
	line := 0
	for pos := 0; pos < len(text); {
		var l string
		l, pos = lineAt(text, pos)
		line++
		values := strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\u00a0' })
		n := 0
		for _, v := range values {
			if v = strings.Trim(v, `"'`); v != "" {
				out.Serials = append(out.Serials, Serial{Line: line, Value: v})
				n++
			}
		}
		switch {
		case n == 0 && len(out.Serials) > 0:
			blank = append(blank, line)
		case n > 0:
			out.Blank = append(out.Blank, blank...) // only those before a serial: trailing lines are no gap
			blank = blank[:0]
		}
	}
	return out
}

// serialHeader reports whether a column's name says it holds serial numbers: the portal's
// Device Serial Number, or Serial number as Graph (serialNumber) and other exports name it.
func serialHeader(name string) bool {
	k, _ := matchColumn(name)
	return k == colSerial || looseEqual(name, "Serial number") || looseEqual(name, "Serial")
}

// serialColumn reads the Device Serial Number column of text when its first line with text is a
// header naming it.
func serialColumn(text string) (SerialList, bool) {
	p := &parser{text: text, line: 1, delim: ',', le: -1, nl: -1, lastQuote: -2}
	for p.pos < len(text) {
		l, next := lineAt(text, p.pos)
		if !isBlankLine(l) {
			p.delim = detectDelimiter(l)
			break
		}
		p.pos, p.line = next, p.line+1
	}
	header, _ := p.next()
	col, hash := -1, -1
	for i, f := range header {
		name := strings.TrimSpace(f)
		if k, _ := matchColumn(name); k == colHash && hash < 0 {
			hash = i
		}
		if col < 0 && serialHeader(name) {
			col = i
		}
	}
	if col < 0 {
		return SerialList{}, false
	}
	out := SerialList{Column: true}
	var blank []int
	for {
		fields, line := p.next()
		if fields == nil {
			break
		}
		if blankRecord(fields) {
			blank = append(blank, line)
			continue
		}
		out.Blank = append(out.Blank, blank...)
		blank = blank[:0]
		if hash >= 0 && hash < len(fields) && strings.TrimSpace(fields[hash]) != "" {
			out.Hashes = true
		}
		v := ""
		if col < len(fields) {
			v = strings.TrimSpace(fields[col])
		}
		out.Serials = append(out.Serials, Serial{Line: line, Value: v})
	}
	return out, true
}
