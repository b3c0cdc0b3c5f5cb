package handlers

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/views"
)

// uploadForm is the create form as posted. Only these fields are read: nothing else can be over-posted.
type uploadForm struct {
	CreatedDateTimeUtc string
	Status             string
	ID                 string
	FormKey            string
}

const maxFieldLen = 64

func bindUploadForm(c echo.Context) uploadForm {
	return uploadFormFrom(func(name string) string { return c.FormValue(name) })
}

func uploadFormFrom(get func(string) string) uploadForm {
	return uploadForm{
		CreatedDateTimeUtc: strings.TrimSpace(get("createdDateTimeUtc")),
		Status:             strings.TrimSpace(get("status")),
		ID:                 strings.TrimSpace(get("id")),
		FormKey:            strings.TrimSpace(get("formKey")),
	}
}

// typedDateTime is a date and time as people type it: 2026-11-29, 2026/11/29 14:30,
// 2026-11-29 14:30:05 +02:00 or Graph's own 2016-12-31T23:59:45.8788427-08:00 (at most seven
// fractional digits, as Graph's DateTimeOffset keeps). static/files/app.js reads the same forms
// to show, as they are typed, what will be sent.
var typedDateTime = regexp.MustCompile(`^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,7})?)?)?\s*([Zz]|UTC|utc|[+-]\d{2}:?\d{2})?$`)

// graphDateTime is what the desk sends to Graph for a typed date and time: a DateTimeOffset with
// the fraction as typed. Without an offset the time is taken as UTC, and assumedUTC says so.
func graphDateTime(typed string) (sent string, assumedUTC, ok bool) {
	if graphForm(typed) { // already as Graph writes it (the prefilled value): sent as typed
		sent, ok = typed, true
	} else {
		sent, assumedUTC, ok = typedGraphDateTime(typed)
	}
	if !ok || !inDateTimeOffsetRange(sent) {
		return "", false, false
	}
	return sent, assumedUTC, true
}

// inDateTimeOffsetRange reports whether Graph's DateTimeOffset can hold a moment: from the year
// 1 to 9999, both as written and in UTC.
func inDateTimeOffsetRange(sent string) bool {
	t, err := time.Parse(time.RFC3339Nano, sent)
	if err != nil {
		return false
	}
	for _, y := range []int{t.Year(), t.UTC().Year()} {
		if y < 1 || y > 9999 {
			return false
		}
	}
	return true
}

// typedGraphDateTime is graphDateTime for any of the forms people type.
func typedGraphDateTime(typed string) (sent string, assumedUTC, ok bool) {
	m := typedDateTime.FindStringSubmatch(typed)
	if m == nil {
		return "", false, false
	}
	pad := func(s string) string { return fmt.Sprintf("%02s", s) }
	hh, mm, ss := "00", "00", "00"
	if m[4] != "" {
		hh, mm = pad(m[4]), m[5]
		if m[6] != "" {
			ss = m[6]
		}
	}
	offset := m[8]
	switch strings.ToUpper(offset) {
	case "":
		assumedUTC, offset = true, "Z"
	case "Z", "UTC":
		offset = "Z"
	default:
		if len(offset) == 5 {
			offset = offset[:3] + ":" + offset[3:]
		}
		if offset[1:] > "14:00" { // DateTimeOffset's offsets run from -14:00 to +14:00
			return "", false, false
		}
	}
	sent = m[1] + "-" + pad(m[2]) + "-" + pad(m[3]) + "T" + hh + ":" + mm + ":" + ss + m[7] + offset
	if _, err := time.Parse(time.RFC3339Nano, sent); err != nil {
		return "", false, false
	}
	return sent, assumedUTC, true
}

// validate returns a message per bad field, written for the person filling the form.
func (f uploadForm) validate() map[string]string {
	errs := map[string]string{}
	tooLong := func(v string) bool { return utf8.RuneCountInString(v) > maxFieldLen || len(v) > 4*maxFieldLen }
	_, _, dateOK := graphDateTime(f.CreatedDateTimeUtc)
	switch {
	case f.CreatedDateTimeUtc == "":
		errs["createdDateTimeUtc"] = "Enter the date the upload was created, like 2026-11-29, or a date and time, like 2026/11/29 14:30."
	case tooLong(f.CreatedDateTimeUtc):
		errs["createdDateTimeUtc"] = "The date and time is too long: use a form like 2026-11-29 14:30 or 2016-12-31T23:59:45.8788427-08:00."
	case !dateOK:
		errs["createdDateTimeUtc"] = "Enter a real date, and a time if you like, such as 2026-11-29, 2026/11/29 14:30 or 2016-12-31T23:59:45-08:00 " +
			"(year, month, day, the year from 1 to 9999; a UTC offset from -14:00 to +14:00; without one the time is taken as UTC)."
	}
	switch {
	case f.Status == "":
		errs["status"] = "Choose a status."
	case !graphclient.IsUploadStatus(f.Status):
		errs["status"] = "Choose one of the listed statuses: noUpload, pending, complete or error."
	}
	_, idOK := guid.Normalize(f.ID)
	switch {
	case f.ID == "":
	case tooLong(f.ID):
		errs["id"] = "The upload ID is too long: a GUID has 36 characters, like 8d639524-9524-8d63-2495-638d2495638d."
	case !idOK:
		errs["id"] = "Enter the upload ID as a GUID, like 8d639524-9524-8d63-2495-638d2495638d (braces and upper case are fine), or leave it empty."
	}
	return errs
}

// newUpload is what is sent: the date as Graph's DateTimeOffset, the id in Graph's lower case.
// Call it only on a form that validates.
func (f uploadForm) newUpload() graphclient.NewUpload {
	created, _, _ := graphDateTime(f.CreatedDateTimeUtc)
	id, _ := guid.Normalize(f.ID)
	return graphclient.NewUpload{ID: id, CreatedDateTimeUtc: created, Status: f.Status}
}

// view keeps what was typed, and says what would be sent for it.
func (f uploadForm) view(key string, errs map[string]string) views.UploadForm {
	sends, assumedUTC, _ := graphDateTime(f.CreatedDateTimeUtc)
	return views.UploadForm{CreatedDateTimeUtc: f.CreatedDateTimeUtc, Status: f.Status, ID: f.ID, FormKey: key, Errors: errs,
		Sends: sends, AssumedUTC: assumedUTC}
}

// graphForm reports whether a value is written exactly as Graph's docs write a DateTimeOffset,
// 2016-12-31T23:59:45.8788427-08:00 or …Z, with an offset DateTimeOffset allows: what
// graphDateTime would send for it is the value itself, found without the typed-forms pattern.
func graphForm(v string) bool {
	if !(len(v) == 28 && v[27] == 'Z' || len(v) == 33 && (v[27] == '+' || v[27] == '-') && v[30] == ':' && v[28:] <= "14:00") ||
		v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != '.' {
		return false
	}
	for i, c := range []byte(v[:27]) {
		if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19) != (c < '0' || c > '9') {
			return false
		}
	}
	_, err := time.Parse(time.RFC3339Nano, v)
	return err == nil
}

// defaultCreatedDateTime is now, written the way Graph's docs write a DateTimeOffset.
func defaultCreatedDateTime(now time.Time) string {
	return now.Format("2006-01-02T15:04:05.0000000Z07:00")
}
