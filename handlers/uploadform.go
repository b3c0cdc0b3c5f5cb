package handlers

import (
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

// Graph's DateTimeOffset: RFC 3339 with an explicit offset and at most 7 fractional digits.
var dateTimeOffset = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$`)

// validate returns a message per bad field, written for the person filling the form.
func (f uploadForm) validate() map[string]string {
	errs := map[string]string{}
	tooLong := func(v string) bool { return utf8.RuneCountInString(v) > maxFieldLen || len(v) > 4*maxFieldLen }
	switch {
	case f.CreatedDateTimeUtc == "":
		errs["createdDateTimeUtc"] = "Enter the date and time the upload was created."
	case tooLong(f.CreatedDateTimeUtc):
		errs["createdDateTimeUtc"] = "The date and time is too long: use the form 2016-12-31T23:59:45.8788427-08:00."
	case !validDateTimeOffset(f.CreatedDateTimeUtc):
		errs["createdDateTimeUtc"] = "Enter a date and time with its UTC offset, like 2016-12-31T23:59:45.8788427-08:00 or 2016-12-31T23:59:45Z."
	}
	switch {
	case f.Status == "":
		errs["status"] = "Choose a status."
	case !graphclient.IsUploadStatus(f.Status):
		errs["status"] = "Choose one of the listed statuses: noUpload, pending, complete or error."
	}
	switch {
	case f.ID == "":
	case tooLong(f.ID):
		errs["id"] = "The upload ID is too long: a GUID has 36 characters, like 8d639524-9524-8d63-2495-638d2495638d."
	case !guid.Valid(f.ID):
		errs["id"] = "Enter the upload ID as a GUID, like 8d639524-9524-8d63-2495-638d2495638d, or leave it empty."
	}
	return errs
}

func validDateTimeOffset(s string) bool {
	if !dateTimeOffset.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func (f uploadForm) newUpload() graphclient.NewUpload {
	return graphclient.NewUpload{ID: f.ID, CreatedDateTimeUtc: f.CreatedDateTimeUtc, Status: f.Status}
}

func (f uploadForm) view(key string, errs map[string]string) views.UploadForm {
	return views.UploadForm{CreatedDateTimeUtc: f.CreatedDateTimeUtc, Status: f.Status, ID: f.ID, FormKey: key, Errors: errs}
}

// defaultCreatedDateTime is now, written the way Graph's docs write a DateTimeOffset.
func defaultCreatedDateTime(now time.Time) string {
	return now.Format("2006-01-02T15:04:05.0000000Z07:00")
}
