package main

// A CPU profile of the desk process itself, taken while the wrk and forward steps load it: the
// desk is built with `-tags deskpprof`, which serves Go's profiler on its admin address (and
// nowhere else; the production build has no profiler), and the bench asks it for a profile of
// each of the desk's rounds, then merges them into one file for `go tool pprof`.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// profileTag is the build tag of a desk that serves its profiler on the admin address.
const profileTag = "deskpprof"

// profileDesk starts a CPU profile of the desk for d and returns a function that waits for it;
// without --desk-cpuprofile both do nothing.
func (b *rig) profileDesk(ctx context.Context, d time.Duration) func() error {
	if b.profileOut == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		u := "http://" + b.admin + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d.Seconds()))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			done <- err
			return
		}
		// The profiler answers after d; the timeout leaves it that and a margin.
		resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			done <- fmt.Errorf("the desk's profiler answered %d (was it built with -tags %s?): %s", resp.StatusCode, profileTag, body)
			return
		}
		f, err := os.CreateTemp("", "autopilotdesk-desk-cpu-*.prof")
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		b.profiles = append(b.profiles, f.Name())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the profile starts before the load does
	return func() error { return <-done }
}

// saveDeskProfile merges the profiles taken into the --desk-cpuprofile file.
func (b *rig) saveDeskProfile(ctx context.Context) error {
	if b.profileOut == "" || len(b.profiles) == 0 {
		return nil
	}
	defer func() {
		for _, p := range b.profiles {
			os.Remove(p)
		}
		b.profiles = nil
	}()
	out, err := os.Create(b.profileOut)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-proto"}, b.profiles...)...)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &msg
	err = cmd.Run()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("merge the desk's profiles: %v %s", err, msg.String())
	}
	abs, _ := filepath.Abs(b.profileOut)
	fmt.Fprintf(os.Stderr, "bench: CPU profile of the desk process in %s (go tool pprof -top -cum %s)\n", abs, abs)
	return nil
}
