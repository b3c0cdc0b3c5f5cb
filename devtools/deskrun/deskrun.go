// Package deskrun builds the desk and runs it as a process of its own, configured with its flags
// and driven over HTTP, the way it runs in production. The benchmark, the screenshot generator and
// the tests of the binary use it.
package deskrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Build compiles the desk (the module's main package, autopilotdesk) with the given go build
// flags, from anywhere inside the module, and returns the binary's path. A binary linked before
// from the same compiled packages with the same flags is reused, so the tests that each need the
// desk link it once; the folder keeps only the latest binary of each set of flags.
func Build(ctx context.Context, flags ...string) (string, error) {
	list := append(append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}} {{.Export}}"}, flags...), "autopilotdesk")
	exports, err := exec.CommandContext(ctx, "go", list...).Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(list, " "), err)
	}
	key := sha256.Sum256(append([]byte(strings.Join(flags, " ")+"\n"), exports...))
	// The folder is the module's own: two checkouts of the module on one machine build side by side
	// without deleting each other's binaries.
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	flagsKey := sha256.Sum256([]byte(strings.TrimSpace(string(gomod)) + "\n" + strings.Join(flags, " ")))
	dir := filepath.Join(os.TempDir(), "autopilotdesk-deskrun-"+hex.EncodeToString(flagsKey[:4]))
	bin := filepath.Join(dir, "autopilotdesk-"+hex.EncodeToString(key[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	args := append(append([]string{"build", "-o", filepath.Join(tmp, "autopilotdesk")}, flags...), "autopilotdesk")
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "autopilotdesk"), bin); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "autopilotdesk-*"))
	for _, f := range old {
		if f != bin {
			os.Remove(f) // a process still running it keeps it until it exits
		}
	}
	return bin, nil
}

// FreeAddr is a loopback host:port nothing listens on right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Desk is a desk process serving on a loopback address.
type Desk struct {
	URL     string        // http://{addr}
	Ready   time.Duration // from the start of the process to /readyz answering 200
	cmd     *exec.Cmd
	output  *os.File // what the desk prints and logs; a file, so no process of ours copies it
	dataDir string
	exited  chan struct{}
}

// Start runs the desk binary bin on addr (see FreeAddr) with a fresh data folder and args (more
// flags), and waits until /readyz answers 200. Settings in this process's environment do not
// reach it: it is configured by its flags alone.
func Start(ctx context.Context, bin, addr string, args ...string) (*Desk, error) {
	dataDir, err := os.MkdirTemp("", "autopilotdesk-desk-data-")
	if err != nil {
		return nil, err
	}
	output, err := os.CreateTemp("", "autopilotdesk-desk-output-*.log")
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	d := &Desk{URL: "http://" + addr, output: output, dataDir: dataDir, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"--addr", addr, "--data-dir", dataDir}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTOPILOTDESK_") {
			d.cmd.Env = append(d.cmd.Env, kv)
		}
	}
	if os.Getenv("GORACE") == "" {
		// A desk built with the race detector (for a test) would otherwise wait a second at exit.
		d.cmd.Env = append(d.cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	d.cmd.Stdout, d.cmd.Stderr = d.output, d.output
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		output.Close()
		os.Remove(output.Name())
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		if resp, err := client.Get(d.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d.Ready = time.Since(start)
				return d, nil
			}
		}
		select {
		case <-d.exited:
			out := d.Output()
			d.Stop()
			return nil, fmt.Errorf("the desk exited before it was ready:\n%s", out)
		case <-ctx.Done():
			d.Stop()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Second {
			out := d.Output()
			d.Stop()
			return nil, fmt.Errorf("the desk was not ready within 30 s:\n%s", out)
		}
	}
}

// Pid is the desk process's id.
func (d *Desk) Pid() int { return d.cmd.Process.Pid }

// Output is what the desk printed and logged so far (its last MiB), until Stop.
func (d *Desk) Output() string {
	const most = 1 << 20
	fi, err := d.output.Stat()
	if err != nil {
		return ""
	}
	from := max(0, fi.Size()-most)
	buf := make([]byte, fi.Size()-from)
	n, _ := d.output.ReadAt(buf, from)
	return string(buf[:n])
}

// Stop asks the desk to finish (as Ctrl-C does), kills it if it has not after 10 s, and deletes
// its data folder and output.
func (d *Desk) Stop() error {
	defer func() {
		os.RemoveAll(d.dataDir)
		d.output.Close()
		os.Remove(d.output.Name())
	}()
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return errors.New("the desk did not stop within 10 s of an interrupt")
	}
	return nil
}

// RSS is the resident memory of the desk process in bytes, from /proc (0 where there is none).
func (d *Desk) RSS() int64 { return RSS(d.Pid()) }

// RSS is the resident memory of process pid in bytes, from /proc (0 where there is none).
func RSS(pid int) int64 { return procStatus(pid, "VmRSS:") }

// PeakRSS is the highest resident memory of process pid so far, or since its peak was reset
// (writing 5 to /proc/{pid}/clear_refs), in bytes.
func PeakRSS(pid int) int64 { return procStatus(pid, "VmHWM:") }

func procStatus(pid int, field string) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// CPUTime is the user and system CPU time process pid has used so far, from /proc (0 where
// there is none).
func CPUTime(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields count from its end.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	const ticks = 100 // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
