package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A device sent again (a retry after a lost answer, or with another code) is told it waits, and
// where to see it: a success, not a refusal, and never counted as a wrong code.
func TestASendRetriedIsToldItWaits(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG": "2/10m"}, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	dev := d.device()

	five, _ := createCode(t, d, admin, map[string]string{"uses": "5"})
	var devices [][2]string
	for i := range 5 {
		devices = append(devices, [2]string{fmt.Sprintf("AGAIN-%d", i+1), realHash()})
	}
	file := []byte(captureCSV(false, devices...))
	if status, answer, _ := dev.multipart("/register/"+five, file); status != http.StatusAccepted {
		t.Fatalf("the first send answered %d: %s", status, answer)
	}
	status, answer, _ := dev.multipart("/register/"+five, file)
	answer = strings.Join(strings.Fields(answer), " ")
	if status != http.StatusOK || strings.Contains(answer, "nothing was kept") || strings.Contains(answer, "Fix the file") ||
		!strings.Contains(answer, "waits for approval") || !strings.Contains(answer, "/register/"+five+"/status") || !strings.Contains(answer, "received at") {
		t.Errorf("the same file again answered %d:\n%s", status, answer)
	}

	one, _ := createCode(t, d, admin, nil)
	single := []byte(captureCSV(false, [2]string{"ONCE-1", realHash()}))
	if status, answer, _ := dev.multipart("/register/"+one, single); status != http.StatusAccepted {
		t.Fatalf("the one device answered %d: %s", status, answer)
	}
	// The code is spent by the first send: a retry is still told it waits, as often as it runs,
	// and does not count as a wrong code.
	for i := range 4 {
		status, answer, _ := dev.multipart("/register/"+one, single)
		answer = strings.Join(strings.Fields(answer), " ")
		if status != http.StatusOK || !strings.Contains(answer, "waits for approval") || strings.Contains(answer, "no registration code matches") {
			t.Fatalf("retry %d with a spent one-device code answered %d:\n%s", i+1, status, answer)
		}
	}
	// A device the spent code did not bring gets the wrong code's answer.
	if status, _, _ := dev.multipart("/register/"+one, []byte(captureCSV(false, [2]string{"ONCE-2", realHash()}))); status != http.StatusNotFound {
		t.Errorf("a new device with a spent code answered %d", status)
	}

	// Waiting under another code: the answer says so and who can help.
	other, _ := createCode(t, d, admin, nil)
	status, answer, _ = d.device().multipart("/register/"+other, []byte(captureCSV(false, devices[0])))
	answer = strings.Join(strings.Fields(answer), " ")
	if status/100 != 2 || !strings.Contains(answer, "another registration code") || !strings.Contains(answer, "IT team") ||
		strings.Contains(answer, "/register/"+other+"/status") || strings.Contains(answer, "received at") {
		t.Errorf("a device waiting under another code answered %d:\n%s", status, answer)
	}
}
