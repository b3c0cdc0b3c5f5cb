package web

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
		err := readForm(req)
		var page *views.ErrorPage
		if !errors.As(err, &page) || page.Status != tc.status || !strings.Contains(page.Message, tc.says) {
			t.Errorf("%s: %v, want %d saying %q", tc.name, err, tc.status, tc.says)
		}
	}
}
