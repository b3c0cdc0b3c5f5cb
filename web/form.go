package web

import (
	"autopilotdesk/views"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// maxFormMemory is how much of a multipart form's files is kept in memory; larger files go to
// temporary files (in os.TempDir, which the desk checks at start), which net/http deletes after
// the request. A device CSV of 10,000 rows is
// 40 MB: with Go's default of 32 MB it passed through a doubling in-memory buffer first.
const maxFormMemory = 4 << 20

// readForm reads a state-changing request's form once, for the CSRF check and the handler
// alike, and turns every way it can be malformed into a page that says what is wrong;
// tooLarge answers a body over the route's limit (nil: the forms' answer).
func readForm(r *http.Request, tooLarge *views.ErrorPage) error {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch {
	case mediaType == "multipart/form-data":
		err = r.ParseMultipartForm(maxFormMemory)
	case mediaType == "application/x-www-form-urlencoded" && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch):
		err = readURLEncoded(r)
	default:
		err = r.ParseForm()
	}
	if err == nil {
		return nil
	}
	var overLimit *http.MaxBytesError
	var notStored *fs.PathError
	switch {
	case errors.As(err, &overLimit):
		if tooLarge != nil {
			return tooLarge
		}
		return errTooLarge
	case errors.As(err, &notStored):
		// The desk could not write the file it was reading to its folder: the server's fault.
		return &views.ErrorPage{Status: http.StatusInternalServerError, Title: "The desk could not keep your file",
			Message:  "The desk could not store the file while reading it, because of a problem on the server, not in your file. Nothing was sent to Microsoft Graph.",
			NextStep: "Tell whoever runs the desk: its log says what the server lacks. Once that is fixed, send the same file again.",
			Internal: fmt.Errorf("store the upload while reading it (the temporary folder, TMPDIR, must be writable): %w", err)}
	case errors.Is(err, multipart.ErrMessageTooLarge):
		return &views.ErrorPage{Status: http.StatusRequestEntityTooLarge, Title: "The form is too large",
			Message:  "What you sent has more text in its fields (14 MB at most) or more fields, files or headers (1,000 parts at most) than a form of the desk can take, so it was not read and nothing was sent to Microsoft Graph.",
			NextStep: "Send the form from the desk's own page. To import many devices, choose the CSV file rather than pasting its text, or split the file."}
	case errors.Is(err, http.ErrMissingBoundary), errors.Is(err, http.ErrNotMultipart):
		return formUnreadable("it says it is a multipart upload but gives no boundary between its parts")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return formUnreadable("it took longer than the desk waits for it to arrive (the connection may be too slow for a file this large)")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), strings.Contains(err.Error(), "EOF"):
		return formUnreadable("it was cut off before its end (the upload may have been interrupted)")
	}
	return formUnreadable("it is not a well-formed form")
}

// formValuesAtOnce is how many of a form's values are given to net/url at once: it refuses more
// than 10,000 in one go (GODEBUG urlmaxqueryparams), and a file of 10,000 rows left out tick by
// tick sends more. The body's limit (limitBody) bounds a form instead.
const formValuesAtOnce = 5000

// readURLEncoded is Request.ParseForm for a URL-encoded body of any number of values, read in
// parts of formValuesAtOnce with net/url's own rules.
func readURLEncoded(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	post := url.Values{}
	for rest := string(body); rest != ""; {
		part := rest
		rest = ""
		if i := nthByte(part, '&', formValuesAtOnce); i >= 0 {
			part, rest = part[:i], part[i+1:]
		}
		values, err := url.ParseQuery(part)
		if err != nil {
			return err
		}
		for k, vs := range values {
			post[k] = append(post[k], vs...)
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	form := url.Values{}
	for _, from := range []url.Values{post, query} {
		for k, vs := range from {
			form[k] = append(form[k], vs...)
		}
	}
	r.PostForm, r.Form = post, form
	return err
}

// nthByte is the index of the n-th b in s, or -1.
func nthByte(s string, b byte, n int) int {
	at := -1
	for range n {
		i := strings.IndexByte(s[at+1:], b)
		if i < 0 {
			return -1
		}
		at += i + 1
	}
	return at
}

func formUnreadable(why string) *views.ErrorPage {
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "The form could not be read",
		Message:  "The desk could not read what was sent: " + why + ". Nothing was sent to Microsoft Graph.",
		NextStep: "Go back to the page, check the values or choose the file again, and send it once more."}
}
