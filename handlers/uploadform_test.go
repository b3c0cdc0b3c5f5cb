package handlers

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
)

func formOf(v url.Values) uploadForm { return uploadFormFrom(v.Get) }

func TestUploadFormValidation(t *testing.T) {
	ok := url.Values{"createdDateTimeUtc": {"2016-12-31T23:59:45.8788427-08:00"}, "status": {"pending"}}
	cases := []struct {
		name  string
		set   map[string]string
		field string // "" means valid
	}{
		{"seed example", nil, ""},
		{"UTC with Z", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00Z"}, ""},
		{"seven fractional digits", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00.1234567+01:00"}, ""},
		{"surrounding spaces trimmed", map[string]string{"createdDateTimeUtc": "  2026-11-28T12:00:00Z "}, ""},
		{"guid id", map[string]string{"id": "8D639524-9524-8D63-2495-638D2495638D"}, ""},
		{"every status", map[string]string{"status": "noUpload"}, ""},
		{"no offset", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00"}, ""},
		{"date only", map[string]string{"createdDateTimeUtc": "2026-11-28"}, ""},
		{"slashes and a space", map[string]string{"createdDateTimeUtc": "2026/11/29 14:30"}, ""},
		{"slashes with an offset", map[string]string{"createdDateTimeUtc": "2026/11/29 14:30 +0200"}, ""},
		{"February 30", map[string]string{"createdDateTimeUtc": "2026-02-30"}, "createdDateTimeUtc"},
		{"hour 24", map[string]string{"createdDateTimeUtc": "2026-11-29 24:00"}, "createdDateTimeUtc"},
		{"offset beyond 14 hours", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00+14:30"}, "createdDateTimeUtc"},
		{"offset minutes out of range", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00+05:75"}, "createdDateTimeUtc"},
		{"day first", map[string]string{"createdDateTimeUtc": "29/11/2026"}, "createdDateTimeUtc"},
		{"words", map[string]string{"createdDateTimeUtc": "yesterday at noon"}, "createdDateTimeUtc"},
		{"eight digits", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00.12345678Z"}, "createdDateTimeUtc"},
		{"month 13", map[string]string{"createdDateTimeUtc": "2026-13-28T12:00:00Z"}, "createdDateTimeUtc"},
		{"offset out of range", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00+25:00"}, "createdDateTimeUtc"},
		{"missing date", map[string]string{"createdDateTimeUtc": ""}, "createdDateTimeUtc"},
		{"year 0", map[string]string{"createdDateTimeUtc": "0000-01-01"}, "createdDateTimeUtc"},
		{"year 0, as Graph writes it", map[string]string{"createdDateTimeUtc": "0000-01-01T00:00:00Z"}, "createdDateTimeUtc"},
		{"year 1 behind UTC", map[string]string{"createdDateTimeUtc": "0001-01-01T00:00:00+05:00"}, "createdDateTimeUtc"},
		{"the first moment Graph keeps", map[string]string{"createdDateTimeUtc": "0001-01-01T00:00:00Z"}, ""},
		{"the last moment Graph keeps", map[string]string{"createdDateTimeUtc": "9999-12-31T23:59:59.9999999Z"}, ""},
		{"past 9999 in UTC", map[string]string{"createdDateTimeUtc": "9999-12-31T23:00:00-02:00"}, "createdDateTimeUtc"},
		{"status wrong case", map[string]string{"status": "Pending"}, "status"},
		{"status number", map[string]string{"status": "1"}, "status"},
		{"missing status", map[string]string{"status": ""}, "status"},
		{"id with braces", map[string]string{"id": "{8D639524-9524-8D63-2495-638D2495638D}"}, ""},
		{"id without dashes", map[string]string{"id": "8d63952495248d632495638d2495638d"}, "id"},
		{"id path traversal", map[string]string{"id": "../../me"}, "id"},
		{"id oversized", map[string]string{"id": strings.Repeat("f", 10000)}, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{}
			for k, vs := range ok {
				v[k] = vs
			}
			for k, val := range tc.set {
				v.Set(k, val)
			}
			errs := formOf(v).validate()
			switch {
			case tc.field == "" && len(errs) > 0:
				t.Errorf("valid input refused: %v", errs)
			case tc.field != "" && (len(errs) != 1 || errs[tc.field] == ""):
				t.Errorf("errors = %v, want exactly one at %s", errs, tc.field)
			}
		})
	}
}

func TestUploadFormReadsOnlyItsOwnFields(t *testing.T) {
	f := formOf(url.Values{"status": {"pending"}, "@odata.type": {"#microsoft.graph.user"}, "deviceIdentities": {"[]"}})
	body := f.newUpload()
	if body.Status != "pending" || body.ID != "" {
		t.Errorf("unexpected binding: %+v", body)
	}
}

// What people type becomes Graph's DateTimeOffset; the fraction is sent as typed, and a time
// without an offset is UTC (and says so).
func TestTypedDateTimeBecomesGraphsDateTimeOffset(t *testing.T) {
	for typed, want := range map[string]struct {
		sent       string
		assumedUTC bool
	}{
		"2016-12-31T23:59:45.8788427-08:00": {"2016-12-31T23:59:45.8788427-08:00", false},
		"2016-12-31t23:59:45.10z":           {"2016-12-31T23:59:45.10Z", false},
		"2026-11-29":                        {"2026-11-29T00:00:00Z", true},
		"2026/11/29 14:30":                  {"2026-11-29T14:30:00Z", true},
		"2026/1/9 7:05":                     {"2026-01-09T07:05:00Z", true},
		"2026-11-29 14:30:05 +0200":         {"2026-11-29T14:30:05+02:00", false},
		"2026-11-29 14:30 UTC":              {"2026-11-29T14:30:00Z", false},
		"2026-11-29T14:30-14:00":            {"2026-11-29T14:30:00-14:00", false},
	} {
		sent, assumed, ok := graphDateTime(typed)
		if !ok || sent != want.sent || assumed != want.assumedUTC {
			t.Errorf("graphDateTime(%q) = %q, %v, %v; want %q, %v", typed, sent, assumed, ok, want.sent, want.assumedUTC)
		}
		if ok && !graphDateTimeOffset.MatchString(sent) {
			t.Errorf("%q sends %q, not a DateTimeOffset", typed, sent)
		}
	}
}

func TestDefaultCreatedDateTimeIsValid(t *testing.T) {
	for _, tz := range []*time.Location{time.UTC, time.FixedZone("PST", -8*3600), time.FixedZone("IST", 5*3600+1800)} {
		s := defaultCreatedDateTime(time.Date(2026, 11, 28, 16, 20, 5, 123456789, tz))
		if sent, _, ok := graphDateTime(s); !ok || sent != s {
			t.Errorf("prefill %q does not validate or changes to %q", s, sent)
		}
	}
}

// graphDateTimeOffset is Graph's DateTimeOffset: RFC 3339 with an explicit offset and at most 7
// fractional digits.
var graphDateTimeOffset = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$`)

func FuzzUploadForm(f *testing.F) {
	f.Add("2016-12-31T23:59:45.8788427-08:00", "pending", "", "k")
	f.Add("yesterday", "Pending", "../x", "")
	f.Add("2016-12-31T23:59:45Z\x00", "error", "8d639524-9524-8d63-2495-638d2495638d", "k")
	f.Add(strings.Repeat("9", 300), "\u202e", "<script>", "k")
	f.Fuzz(func(t *testing.T, created, status, id, key string) {
		form := formOf(url.Values{"createdDateTimeUtc": {created}, "status": {status}, "id": {id}, "formKey": {key}})
		errs := form.validate()
		if len(errs) > 0 {
			return
		}
		// Whatever validates is safe to send: a known status, a real DateTimeOffset, a GUID or nothing.
		sent := form.newUpload()
		if _, err := time.Parse(time.RFC3339Nano, sent.CreatedDateTimeUtc); err != nil || !graphDateTimeOffset.MatchString(sent.CreatedDateTimeUtc) ||
			!graphclient.IsUploadStatus(sent.Status) || (sent.ID != "" && (!guid.Valid(sent.ID) || sent.ID != strings.ToLower(sent.ID))) {
			t.Fatalf("accepted %+v", form)
		}
	})
}
