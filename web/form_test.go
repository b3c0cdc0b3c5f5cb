package web

import (
	"errors"
	"fmt"
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

// A URL-encoded form is read whole however many fields it has, in order, with net/url's rules;
// the query's values follow the body's, as net/http gives them.
func TestFormOfManyFieldsIsReadWhole(t *testing.T) {
	var body strings.Builder
	body.WriteString("_csrf=tok")
	for i := range 12345 {
		fmt.Fprintf(&body, "&leaveOut=%d", i)
	}
	req := httptest.NewRequest(http.MethodPost, "/devices/import/x/submit?leaveOut=q", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := readForm(req, nil); err != nil {
		t.Fatal(err)
	}
	ticks := req.PostForm["leaveOut"]
	if len(ticks) != 12345 || ticks[0] != "0" || ticks[5000] != "5000" || ticks[12344] != "12344" || req.PostFormValue("_csrf") != "tok" {
		t.Errorf("%d ticks read, in order: %v", len(ticks), len(ticks) == 12345 && ticks[5000] == "5000")
	}
	if all := req.Form["leaveOut"]; len(all) != 12346 || all[12345] != "q" {
		t.Errorf("the form and the query: %d values", len(all))
	}
	req = httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("a=1;b=2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var page *views.ErrorPage
	if err := readForm(req, nil); !errors.As(err, &page) || page.Status != http.StatusBadRequest {
		t.Errorf("a semicolon separator: %v", err)
	}
}
