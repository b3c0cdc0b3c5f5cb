package guid

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"8d639524-9524-8d63-2495-638d2495638d":          true,
		"8D639524-9524-8D63-2495-638D2495638D":          true,
		uuid.NewString():                                true,
		uuid.Must(uuid.NewV7()).String():                true,
		"":                                              false,
		"not-a-guid":                                    false,
		"8d63952495248d632495638d2495638d":              false,
		"{8d639524-9524-8d63-2495-638d2495638d}":        false,
		"urn:uuid:8d639524-9524-8d63-2495-638d2495638d": false,
		"8d639524-9524-8d63-2495-638d2495638g":          false,
		"8d639524-9524-8d63-2495_638d2495638d":          false,
		" 8d639524-9524-8d63-2495-638d2495638d":         false,
		strings.Repeat("a", 36):                         false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	const want = "8d639524-9524-8d63-2495-638d2495638d"
	for _, s := range []string{want, "8D639524-9524-8D63-2495-638D2495638D", "{8D639524-9524-8D63-2495-638D2495638D}",
		"{8d639524-9524-8d63-2495-638d2495638d}", "  " + want + "\t"} {
		if got, ok := Normalize(s); !ok || got != want {
			t.Errorf("Normalize(%q) = %q, %v, want %q", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "{}", "{" + want, want + "}", "{{" + want + "}}", "urn:uuid:" + want,
		"8d63952495248d632495638d2495638d", "(" + want + ")", "{ " + want + "}", strings.Repeat("f", 38)} {
		if got, ok := Normalize(s); ok {
			t.Errorf("Normalize(%q) accepted as %q", s, got)
		}
	}
}
