package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The import's memory and time, measured on the desk's own process: the file is generated on
// disk and streamed to the desk, so the test's side holds neither the file nor the request.
//
//	go test -run 'TestImportMemory' -v .          # peak memory, 10,000 rows and a refused 1,000,000
//	go test -run XXX -bench 'BenchmarkImport' .   # time per pre-flight, same files

// writeDeviceFile writes a portal CSV of n devices: real-sized hashes (about 4,000 base64
// characters) when real, else short rows.
func writeDeviceFile(t testing.TB, n int, real bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "devices.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n")
	raw := make([]byte, 3000)
	for i := range n {
		if real {
			rand.Read(raw)
			fmt.Fprintf(w, "SN-%07d,,%s,Sales,\n", i, base64.StdEncoding.EncodeToString(raw))
		} else {
			fmt.Fprintf(w, "S%d,,QUJD,,\n", i)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// streamUpload posts a file to the desk's import form without holding it in memory, and stops at
// the desk's answer (303 to the new draft, or the refusal).
func (d *desk) streamUpload(c *http.Client, csrf, path string) (*http.Response, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("_csrf", csrf)
		fw, _ := mw.CreateFormFile("file", "devices.csv")
		f, err := os.Open(path)
		if err == nil {
			io.Copy(fw, f)
			f.Close()
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/devices/import", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", d.srv.URL)
	noFollow := &http.Client{Transport: c.Transport, Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// procStatus reads a field of /proc/self/status in kB.
func procStatus(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

const memChildEnv = "AUTOPILOTDESK_IMPORT_MEMORY_CHILD"

// TestImportMemory runs each measurement in a fresh process and reports its peak resident memory
// while the desk reads, checks and stores the file. The largest allowed file (10,000 rows of
// real-sized hashes) must stay under 100 MB; a 1,000,000-row file is refused with far less.
func TestImportMemory(t *testing.T) {
	if mode := os.Getenv(memChildEnv); mode != "" {
		tuneGC(os.Getenv) // as main does
		importMemoryChild(t, mode)
		return
	}
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("needs Linux's /proc to measure peak memory")
	}
	if raceEnabled {
		t.Skip("the race detector's own memory would be measured: run without -race")
	}
	for _, c := range []struct {
		mode   string
		limitB int
	}{{"10000", 100 << 20}, {"refused", 100 << 20}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestImportMemory$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), memChildEnv+"="+c.mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.mode, err, out)
		}
		var took time.Duration
		var peak, before, status int
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "measured:"); i >= 0 {
				fmt.Sscanf(line[i:], "measured: status=%d took=%s before_kb=%d peak_kb=%d", &status, new(string), &before, &peak)
				f := strings.Fields(line[i:])
				took, _ = time.ParseDuration(strings.TrimPrefix(f[2], "took="))
			}
		}
		if peak == 0 {
			t.Fatalf("%s: no measurement:\n%s", c.mode, out)
		}
		t.Logf("%s: answered %d in %s; resident memory %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
			c.mode, status, took.Round(time.Millisecond), float64(before)/1024, float64(peak)/1024, float64(peak-before)/1024)
		if peak*1024 > c.limitB {
			t.Errorf("%s: peak resident memory %.1f MiB, over %d MiB", c.mode, float64(peak)/1024, c.limitB>>20)
		}
		if c.mode == "refused" && (status != http.StatusUnprocessableEntity || took > time.Second) {
			t.Errorf("the 1,000,000-row file answered %d in %s", status, took)
		}
	}
}

func importMemoryChild(t *testing.T, mode string) {
	path := writeDeviceFile(t, 10000, true)
	if mode == "refused" {
		path = writeDeviceFile(t, 1_000_000, false)
	}
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	before := procStatus("VmRSS")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak: %v", err)
	}
	start := time.Now()
	resp, err := d.streamUpload(b, csrf, path)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("measured: status=%d took=%s before_kb=%d peak_kb=%d", resp.StatusCode, took, before, procStatus("VmHWM"))
}

// BenchmarkImportPreflight10000 is the time the desk takes to read, check and store a file of
// 10,000 real-sized rows, from the upload to the draft's page.
func BenchmarkImportPreflight10000(b *testing.B) { benchmarkPreflight(b, 10000, true) }

// BenchmarkImportRefused1M is the time the desk takes to refuse a 1,000,000-row file.
func BenchmarkImportRefused1M(b *testing.B) { benchmarkPreflight(b, 1_000_000, false) }

// BenchmarkImportDraftPage10000 is the time the desk takes to show the pre-flight of a file of
// 10,000 real-sized rows: the page the upload leads to, and the one the owner reads and ticks.
func BenchmarkImportDraftPage10000(b *testing.B) {
	path := writeDeviceFile(b, 10000, true)
	d := startDeskWith(b, nil, appOptions{})
	c := d.browser()
	doc := parse(d.t, d.signIn(c, "admin", "/devices/import"))
	resp, err := d.streamUpload(c, doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""), path)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("upload: %v %v", resp, err)
	}
	job := resp.Header.Get("Location")
	for b.Loop() {
		resp, err := c.Get(d.srv.URL + job)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("draft page: %v %v", resp, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		b.SetBytes(n)
	}
}

func benchmarkPreflight(b *testing.B, n int, real bool) {
	path := writeDeviceFile(b, n, real)
	d := startDeskWith(b, nil, appOptions{})
	c := d.browser()
	doc := parse(d.t, d.signIn(c, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	for b.Loop() {
		resp, err := d.streamUpload(c, csrf, path)
		if err != nil || (resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusUnprocessableEntity) {
			b.Fatalf("upload: %v %v", resp, err)
		}
	}
}
