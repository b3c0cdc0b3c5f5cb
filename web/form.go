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
	"os"
	"strings"
)

// maxFormMemory is how much of a multipart form's files is kept in memory; larger files go to
// temporary files (in os.TempDir, which the desk checks at start), which net/http deletes after
// the request. A device CSV of 10,000 rows is
// 40 MB: with Go's default of 32 MB it passed through a doubling in-memory buffer first.
const maxFormMemory = 4 << 20

// readForm reads a state-changing request's form once, for the CSRF check and the handler
// alike, and turns every way it can be malformed into a page that says what is wrong.
func readForm(r *http.Request) error {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if mediaType == "multipart/form-data" {
		err = r.ParseMultipartForm(maxFormMemory)
	} else {
		err = r.ParseForm()
	}
	if err == nil {
		return nil
	}
	var tooLarge *http.MaxBytesError
	var notStored *fs.PathError
	switch {
	case errors.As(err, &tooLarge):
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

func formUnreadable(why string) *views.ErrorPage {
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "The form could not be read",
		Message:  "The desk could not read what was sent: " + why + ". Nothing was sent to Microsoft Graph.",
		NextStep: "Go back to the page, check the values or choose the file again, and send it once more."}
}
