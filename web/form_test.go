package web

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"autopilotdesk/views"
)

// failingBody gives some bytes, then err.
type failingBody struct {
	data string
	err  error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// Every way a form can fail to arrive is named on the page that refuses it.
func TestUnreadableFormsSayWhy(t *testing.T) {
	part := "--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nDevice Serial"
	for _, tc := range []struct {
		name, contentType string
		body              io.Reader
		status            int
		says              string
	}{
		{"cut off", "multipart/form-data; boundary=zz", strings.NewReader(part), http.StatusBadRequest, "cut off before its end"},
		{"no boundary", "multipart/form-data", strings.NewReader("x"), http.StatusBadRequest, "gives no boundary"},
		{"too slow", "multipart/form-data; boundary=zz", &failingBody{data: part, err: os.ErrDeadlineExceeded}, http.StatusBadRequest, "took longer than the desk waits"},
		{"too slow, a plain form", "application/x-www-form-urlencoded", &failingBody{data: "a=1&b=", err: os.ErrDeadlineExceeded}, http.StatusBadRequest, "took longer than the desk waits"},
		{"broken otherwise", "multipart/form-data; boundary=zz", &failingBody{data: part, err: errors.New("connection reset")}, http.StatusBadRequest, "not a well-formed form"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/devices/import", tc.body)
		req.Header.Set("Content-Type", tc.contentType)
		err := readForm(req, nil)
		var page *views.ErrorPage
		if !errors.As(err, &page) || page.Status != tc.status || !strings.Contains(page.Message, tc.says) {
			t.Errorf("%s: %v, want %d saying %q", tc.name, err, tc.status, tc.says)
		}
	}
}

// A file the desk cannot store while reading it (no temporary folder, a full disk) is the
// server's fault: a 500 whose page does not blame the file, carrying the cause for the log.
func TestUploadTheDeskCannotStoreIsItsOwnFault(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	var body strings.Builder
	body.WriteString("--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n")
	body.WriteString(strings.Repeat("x", maxFormMemory+1<<20))
	body.WriteString("\r\n--zz--\r\n")
	req := httptest.NewRequest(http.MethodPost, "/devices/import", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=zz")
	err := readForm(req, nil)
	var page *views.ErrorPage
	if !errors.As(err, &page) || page.Status != http.StatusInternalServerError {
		t.Fatalf("%v, want a 500 page", err)
	}
	if strings.Contains(page.Message+page.NextStep, "well-formed") || !strings.Contains(page.Message, "not in your file") {
		t.Errorf("the page blames the file: %s %s", page.Message, page.NextStep)
	}
	if page.Internal == nil || !strings.Contains(page.Internal.Error(), "missing") || !strings.Contains(page.Internal.Error(), "TMPDIR") {
		t.Errorf("the cause for the log: %v", page.Internal)
	}
}
