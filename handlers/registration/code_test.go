package registration

import (
	"fmt"
	"math/bits"
	"strings"
	"testing"
	"time"

	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

// Codes are twelve characters of Crockford's base32 (60 random bits), every character used,
// never repeated in practice.
func TestNewCodeIsSixtyRandomBits(t *testing.T) {
	seen := map[string]bool{}
	used := map[rune]int{}
	var ones, total int
	for range 5000 {
		c := NewCode()
		if len(c) != CodeLength {
			t.Fatalf("%q has %d characters", c, len(c))
		}
		if seen[c] {
			t.Fatalf("%q drawn twice", c)
		}
		seen[c] = true
		for _, r := range c {
			i := strings.IndexRune(alphabet, r)
			if i < 0 {
				t.Fatalf("%q has %q, outside Crockford's alphabet", c, r)
			}
			used[r]++
			ones += bits.OnesCount(uint(i))
			total += 5
		}
	}
	if len(used) != 32 {
		t.Errorf("%d of 32 characters ever drawn", len(used))
	}
	if share := float64(ones) / float64(total); share < 0.48 || share > 0.52 {
		t.Errorf("%.3f of the bits are set: not uniform", share)
	}
	if CodeLength*5 < 60 {
		t.Errorf("a code carries %d bits", CodeLength*5)
	}
}

func TestNormalizeReadsCodesAsTyped(t *testing.T) {
	for typed, want := range map[string]string{
		"K7QM-2XWD-9FHT":      "K7QM2XWD9FHT",
		"k7qm2xwd9fht":        "K7QM2XWD9FHT",
		" K7QM 2XWD 9FHT ":    "K7QM2XWD9FHT",
		"K7QM--2XWD-9FHT":     "K7QM2XWD9FHT",
		"IL0O-ABCD-EFGH":      "1100ABCDEFGH",
		"iloo-abcd-efgh":      "1100ABCDEFGH",
		"0123-4567-89VW":      "0123456789VW",
		"XYZ0-XYZ0-XYZ0":      "XYZ0XYZ0XYZ0",
		"K7QM-2XWD-9FHTX":     "",
		"K7QM-2XWD-9FH":       "",
		"K7QM-2XWD-9FHU":      "", // U is not in the alphabet
		"K7QM_2XWD_9FHT":      "",
		"K7QM-2XWD-9FH\u0130": "",
		"":                    "",
	} {
		got, ok := Normalize(typed)
		if got != want || ok != (want != "") {
			t.Errorf("Normalize(%q) = %q, %v; want %q", typed, got, ok, want)
		}
	}
	if _, ok := Normalize(strings.Repeat("-", 1000) + "K7QM2XWD9FHT"); ok {
		t.Error("a very long path segment was read")
	}
	c := NewCode()
	if n, ok := Normalize(strings.ToLower(Format(c))); !ok || n != c {
		t.Errorf("a code does not survive being shown and typed back: %q -> %q", c, n)
	}
	if Format("K7QM2XWD9FHT") != "K7QM-2XWD-9FHT" {
		t.Error(Format("K7QM2XWD9FHT"))
	}
	if Hash("K7QM2XWD9FHT") == Hash("K7QM2XWD9FHV") || len(Hash("K7QM2XWD9FHT")) != 64 || strings.Contains(Hash("K7QM2XWD9FHT"), "K7QM") {
		t.Error("hashes do not tell codes apart or are not a digest")
	}
}

// The answers fit a console 78 characters wide and never name the person who decided.
func TestAnswersFitTheDevicesScreen(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	code := store.RegistrationCode{Note: "Floor 3 refurb batch", GroupTag: "Floor3", ExpiresAt: now.Add(4 * time.Hour), Uses: 3, Used: 2}
	texts := []string{ReceiptText(Receipt{Expires: code.ExpiresAt, StatusCommand: "curl.exe https://desk.contoso.example/register/K7QM-2XWD-9FHT/status",
		Kept: []Kept{{Line: 2, Serial: "5CG3021XYZ", Manufacturer: "HP", Model: "HP EliteBook 840 G9", HashShown: "AAAA…ZZZZ", GroupTag: "Floor3",
			Notes: []string{strings.Repeat("a long note about what was repaired in this row ", 4)}}},
		NotKept:   []NotKept{{Line: 3, Serial: "X", Why: []string{"Hardware Hash is empty. Capture it on the device (Get-WindowsAutopilotInfo) or get it from the OEM, then add it."}}},
		FileNotes: []string{strings.Repeat("word ", 60)}})}
	decider := store.RegistrationSubmission{Code: code, DecidedAt: now, DeciderName: "Isaiah Langer", DeciderUPN: "IsaiahL@contoso.example", Reason: "not ours"}
	var devices []DeviceStatus
	for _, state := range []string{store.SubmissionWaiting, store.SubmissionApproved, store.SubmissionRejected, store.SubmissionExpired} {
		s := decider
		s.State = state
		devices = append(devices, DeviceState(s, store.RegistrationDevice{Serial: "5CG3021XYZ", ReceivedAt: now}, nil, explain.Job{}, now))
	}
	for _, row := range []store.ImportRow{{Outcome: store.Outcome{Verdict: "imported"}, GroupTag: "Floor3"}, {Outcome: store.Outcome{Verdict: "error", ErrorCode: 808, ErrorName: "ZtdDeviceAssignedToOtherTenant"}},
		{Outcome: store.Outcome{Verdict: "not-found"}}, {Outcome: store.Outcome{Verdict: "partial"}}} {
		s := decider
		s.State = store.SubmissionFinished
		devices = append(devices, DeviceState(s, store.RegistrationDevice{Serial: "5CG3021XYZ", ReceivedAt: now}, &row, explain.Job{}, now))
	}
	texts = append(texts, StatusText(Status{Note: code.Note, GroupTag: code.GroupTag, Expires: code.ExpiresAt, UsesLeft: 1, Devices: devices, Now: now}))
	for _, text := range texts {
		for _, l := range strings.Split(text, "\n") {
			if n := len([]rune(l)); n > 78 {
				t.Errorf("a line of %d characters: %q", n, l)
			}
		}
		if strings.Contains(text, "Isaiah") {
			t.Errorf("an answer names the approver:\n%s", text)
		}
	}
	status := texts[1]
	for _, want := range []string{"WAITING", "IMPORTING", "REJECTED", "\"not ours\"", "EXPIRED", "REGISTERED", "NOT REGISTERED", "808", "another organisation", "CHECK"} {
		if !strings.Contains(status, want) {
			t.Errorf("the status lacks %q:\n%s", want, status)
		}
	}
}

// Runs finds a code wherever it sits in a path, joined to other text or not, in either case, with
// or without dashes; shorter runs of the alphabet are left alone.
func TestRunsFindsACodeJoinedToOtherText(t *testing.T) {
	for in, want := range map[string][]string{
		"/register-9D9Q-M71M-TNE8":    {"register-9D9Q-M71M-TNE8"},
		"/regster/9d9q-m71m-tne8.":    {"9d9q-m71m-tne8"},
		"/x/9D9QM71MTNE8.csv":         {"9D9QM71MTNE8"},
		"/x/9D9Q-M71M-TNE8-":          {"9D9Q-M71M-TNE8"},
		"/devices/import/report":      nil,
		"/static/app.3f2a9c01.css":    nil,
		"/a/9D9Q-M71M/b/TNE8-AAAA":    nil,
		"/u/9D9QUM71MTNE8":            nil,              // U is not of the alphabet: two short runs
		"/x/9D9QM71MTNE8!9D9QM71MTNE": {"9D9QM71MTNE8"}, // 11 after the !: no code
	} {
		var got []string
		Runs(in, func(start, end int) { got = append(got, in[start:end]) })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Runs(%q) = %q, want %q", in, got, want)
		}
	}
}
