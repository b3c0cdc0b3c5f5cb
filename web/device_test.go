package web

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"
)

// Whatever text reaches a plain-text answer, only its line ends are control characters: an escape,
// a lone carriage return or a direction mark is written as its code, and the length is the bytes sent.
func TestPlainTextCarriesNoCharacterThatDrivesATerminal(t *testing.T) {
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/register/X/status", nil), rec)
	if err := PlainText(c, http.StatusOK, "Group tag \"A\x1b[2J\u202eevil\rover\"\nnext line\r\n\tend\n"); err != nil {
		t.Fatal(err)
	}
	want := "Group tag \"A<U+001B>[2J<U+202E>evil<U+000D>over\"\r\nnext line\r\n<U+0009>end\r\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
	if rec.Header().Get(echo.HeaderContentLength) != strconv.Itoa(len(want)) {
		t.Errorf("Content-Length %s for %d bytes", rec.Header().Get(echo.HeaderContentLength), len(want))
	}
}
