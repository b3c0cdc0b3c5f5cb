package handlers

import (
	"testing"
	"time"
)

// A value the quick path takes is one the typed-forms pattern sends unchanged; the quick path
// takes the prefilled value and Graph's documented example.
func TestGraphFormIsSentAsTyped(t *testing.T) {
	for _, v := range []string{"2016-12-31T23:59:45.8788427-08:00", "2026-03-02T09:30:00.0000000Z", "2026-03-02T09:30:00.0000000+14:00",
		"2026-03-02T09:30:00.0000000+14:30", "2016-02-31T23:59:45.0000000Z", "2026-03-02T09:30:00.00000000Z", "2026-03-02 09:30:00.0000000Z",
		"2026-03-02T09:30:0a.0000000Z", "2026-03-02T24:30:00.0000000Z", "2026-03-02T09:30:00.0000000z"} {
		if !graphForm(v) {
			continue
		}
		if sent, assumed, ok := typedGraphDateTime(v); !ok || sent != v || assumed {
			t.Errorf("%s: the quick path sends it as typed, the pattern %q (ok %v, assumed UTC %v)", v, sent, ok, assumed)
		}
	}
	for _, v := range []string{"2016-12-31T23:59:45.8788427-08:00", defaultCreatedDateTime(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC))} {
		if !graphForm(v) {
			t.Errorf("%s is in Graph's form", v)
		}
	}
}
