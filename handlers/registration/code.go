// Package registration is registration from the device: the one-time codes a technician uses at
// a device to hand its hardware hash to the desk without any credential on the device, the
// plain-text answers meant for that device's screen, and the background work that carries an
// approved registration through the import to its end (settling it, overwriting its hashes,
// the Autopilot sync) and expires what nobody approved.
package registration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// alphabet is Crockford's base32: the digits and the letters but I, L, O and U, so a code read
// aloud or from a screen has no look-alikes.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// CodeLength is how many characters a code has: 12 of base32 carry 60 random bits.
const CodeLength = 12

// NewCode returns a fresh code from crypto/rand, normalized (no dashes).
func NewCode() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	bits := binary.BigEndian.Uint64(b[:])
	out := make([]byte, CodeLength)
	for i := range out {
		out[i] = alphabet[bits&31]
		bits >>= 5
	}
	return string(out)
}

// Normalize reads a code as a person typed it: case does not matter, dashes and spaces are
// skipped, and I and L are read as 1 and O as 0, as Crockford's alphabet prescribes. ok is false
// unless twelve characters of the alphabet remain.
func Normalize(typed string) (code string, ok bool) {
	var buf [CodeLength]byte
	if !read(typed, &buf) {
		return "", false
	}
	return string(buf[:]), true
}

// read puts the code typed into buf, as Normalize reads it, and reports whether it is one: it
// allocates nothing.
func read(typed string, buf *[CodeLength]byte) bool {
	if len(typed) > 64 {
		return false
	}
	n := 0
	for i := 0; i < len(typed); i++ {
		c := typed[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if n == CodeLength || strings.IndexByte(alphabet, c) < 0 {
			return false
		}
		buf[n] = c
		n++
	}
	return n == CodeLength
}

// Runs calls found with where each run of s that reads as a code, or holds one, starts and ends:
// what logs must not keep, wherever it sits (register-K7QM-2XWD-9FHT, K7QM2XWD9FHT.csv). A run
// is letters and digits of the code's alphabet (in either case, I, L and O too) with dashes and
// spaces between them, and it holds a code once it has CodeLength of them. It allocates nothing,
// as every path of every request logged goes through it.
func Runs(s string, found func(start, end int)) {
	start, n := -1, 0
	for i := 0; i <= len(s); i++ {
		c := byte(0)
		if i < len(s) {
			c = s[i]
		}
		switch {
		case codeChar(c):
			if start < 0 {
				start = i
			}
			n++
			continue
		case (c == '-' || c == ' ') && start >= 0:
			continue
		}
		if n >= CodeLength {
			end := i
			for end > start && (s[end-1] == '-' || s[end-1] == ' ') {
				end--
			}
			found(start, end)
		}
		start, n = -1, 0
	}
}

func codeChar(c byte) bool {
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return c == 'I' || c == 'L' || c == 'O' || strings.IndexByte(alphabet, c) >= 0 && c != 0
}

// Format writes a normalized code in three groups of four: K7QM-2XWD-9FHT.
func Format(code string) string {
	if len(code) != CodeLength {
		return code
	}
	return code[:4] + "-" + code[4:8] + "-" + code[8:]
}

// Hash is all the desk keeps of a code: a SHA-256 of its normalized form, so a copy of the
// database does not give out codes that still work.
func Hash(code string) string {
	sum := sha256.Sum256([]byte("autopilotdesk registration code\x00" + code))
	return hex.EncodeToString(sum[:])
}
