package devicecsv

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decodeText turns the uploaded bytes into UTF-8 text. It returns the file-level
// notes for every conversion it made, or a non-empty fatal message when the bytes
// are not a text file at all. UTF-8 data the caller owns becomes the text in place.
func decodeText(data []byte, owned bool) (text string, notes []string, fatal string) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil, "The file is empty. Export the device list again (for example with Get-WindowsAutopilotInfo) and upload that CSV file."
	}
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "", nil, "This is an Excel workbook (.xlsx), not a CSV file. Open it in Excel and use Save As → \"CSV (Comma delimited) (*.csv)\", then upload the CSV."
	case bytes.HasPrefix(data, []byte("\xD0\xCF\x11\xE0")):
		return "", nil, "This is an old Excel workbook (.xls), not a CSV file. Open it in Excel and use Save As → \"CSV (Comma delimited) (*.csv)\", then upload the CSV."
	}

	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		notes = append(notes, "Removed the UTF-8 byte order mark (BOM) at the start of the file; the Intune portal expects plain ANSI text.")
		text = asText(data[3:], owned)
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		notes = append(notes, "The file was saved as UTF-16 little-endian (as Windows PowerShell's Out-File and Excel's \"Unicode Text\" save files); it was converted. The Intune portal accepts only ANSI CSV files.")
		text = decodeUTF16(data[2:], false)
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		notes = append(notes, "The file was saved as UTF-16 big-endian; it was converted. The Intune portal accepts only ANSI CSV files.")
		text = decodeUTF16(data[2:], true)
	case looksUTF16(data, false):
		notes = append(notes, "The file was saved as UTF-16 little-endian without a byte order mark; it was converted. The Intune portal accepts only ANSI CSV files.")
		text = decodeUTF16(data, false)
	case looksUTF16(data, true):
		notes = append(notes, "The file was saved as UTF-16 big-endian without a byte order mark; it was converted. The Intune portal accepts only ANSI CSV files.")
		text = decodeUTF16(data, true)
	case utf8.Valid(data):
		text = asText(data, owned)
	default:
		notes = append(notes, "The file is not UTF-8, so it was read as Windows ANSI (Windows-1252) text.")
		text = decodeWindows1252(data)
	}
	// A second BOM (for example UTF-16 text that also carried a UTF-8 BOM).
	for strings.HasPrefix(text, "\uFEFF") {
		text = text[len("\uFEFF"):]
	}
	// Old DOS tools end text files with Ctrl-Z.
	text = strings.TrimRight(text, "\x1a")

	if strings.IndexByte(text, 0) >= 0 {
		return "", notes, "This file contains binary data, so it is not a CSV text file. Export the device list as CSV (Comma delimited) and upload that file."
	}
	// Old Mac files end lines with a lone CR; make them LF so that line
	// searches stay linear.
	if strings.IndexByte(text, '\n') < 0 && strings.IndexByte(text, '\r') >= 0 {
		text = strings.ReplaceAll(text, "\r", "\n")
	}
	// Binary files show control characters early; look at the start only.
	control, head := 0, text[:min(len(text), 8192)]
	for i := 0; i < len(head); i++ {
		if c := head[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			control++
		}
	}
	if control > 0 && control*100 > len(head) {
		return "", notes, "This file contains binary data, so it is not a CSV text file. Export the device list as CSV (Comma delimited) and upload that file."
	}
	if strings.TrimSpace(text) == "" {
		return "", notes, "The file is empty. Export the device list again (for example with Get-WindowsAutopilotInfo) and upload that CSV file."
	}
	return text, notes, ""
}

// asText is data as a string: shared when the caller has handed data over (a file of 10,000
// rows is 40 MB, and the copy would double what a pre-flight holds), copied otherwise.
func asText(data []byte, owned bool) string {
	if owned && len(data) > 0 {
		return unsafe.String(&data[0], len(data))
	}
	return string(data)
}

// looksUTF16 reports whether BOM-less data looks like UTF-16 text of mostly
// ASCII characters: every second byte is zero.
func looksUTF16(data []byte, bigEndian bool) bool {
	n := min(len(data), 512) &^ 1
	if n < 4 {
		return false
	}
	zeroHigh, zeroLow := 0, 0
	for i := 0; i < n; i += 2 {
		lo, hi := data[i], data[i+1]
		if bigEndian {
			lo, hi = hi, lo
		}
		if hi == 0 {
			zeroHigh++
		}
		if lo == 0 {
			zeroLow++
		}
	}
	pairs := n / 2
	return zeroHigh*10 >= pairs*9 && zeroLow*10 < pairs
}

func decodeUTF16(b []byte, bigEndian bool) string {
	out := make([]byte, 0, len(b)/2+8)
	unit := func(i int) rune {
		if bigEndian {
			return rune(b[i])<<8 | rune(b[i+1])
		}
		return rune(b[i+1])<<8 | rune(b[i])
	}
	for i := 0; i+1 < len(b); i += 2 {
		r := unit(i)
		if utf16.IsSurrogate(r) {
			if i+3 < len(b) {
				if d := utf16.DecodeRune(r, unit(i+2)); d != utf8.RuneError {
					out = utf8.AppendRune(out, d)
					i += 2
					continue
				}
			}
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// cp1252 maps bytes 0x80–0x9F of Windows-1252; the rest equal Latin-1.
var cp1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func decodeWindows1252(b []byte) string {
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		switch {
		case c < 0x80:
			out = append(out, c)
		case c < 0xA0:
			out = utf8.AppendRune(out, cp1252[c-0x80])
		default:
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return string(out)
}

// UTF16 reports whether a file starting with prefix (its first 512 bytes suffice) is UTF-16
// text, which takes twice the bytes of the same CSV as ANSI or UTF-8.
func UTF16(prefix []byte) bool {
	return bytes.HasPrefix(prefix, []byte{0xFF, 0xFE}) || bytes.HasPrefix(prefix, []byte{0xFE, 0xFF}) ||
		looksUTF16(prefix, false) || looksUTF16(prefix, true)
}
