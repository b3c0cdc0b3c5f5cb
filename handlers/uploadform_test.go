package handlers

import (
	"net/url"
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
		{"no offset", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00"}, "createdDateTimeUtc"},
		{"date only", map[string]string{"createdDateTimeUtc": "2026-11-28"}, "createdDateTimeUtc"},
		{"eight digits", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00.12345678Z"}, "createdDateTimeUtc"},
		{"month 13", map[string]string{"createdDateTimeUtc": "2026-13-28T12:00:00Z"}, "createdDateTimeUtc"},
		{"offset out of range", map[string]string{"createdDateTimeUtc": "2026-11-28T12:00:00+25:00"}, "createdDateTimeUtc"},
		{"missing date", map[string]string{"createdDateTimeUtc": ""}, "createdDateTimeUtc"},
		{"status wrong case", map[string]string{"status": "Pending"}, "status"},
		{"status number", map[string]string{"status": "1"}, "status"},
		{"missing status", map[string]string{"status": ""}, "status"},
		{"id with braces", map[string]string{"id": "{8d639524-9524-8d63-2495-638d2495638d}"}, "id"},
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

func TestDefaultCreatedDateTimeIsValid(t *testing.T) {
	for _, tz := range []*time.Location{time.UTC, time.FixedZone("PST", -8*3600), time.FixedZone("IST", 5*3600+1800)} {
		s := defaultCreatedDateTime(time.Date(2026, 11, 28, 16, 20, 5, 123456789, tz))
		if !validDateTimeOffset(s) {
			t.Errorf("prefill %q does not validate", s)
		}
	}
}

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
		if !graphclient.IsUploadStatus(form.Status) || !validDateTimeOffset(form.CreatedDateTimeUtc) || (form.ID != "" && !guid.Valid(form.ID)) {
			t.Fatalf("accepted %+v", form)
		}
	})
}
