package main

// The pages step measured from outside: the load comes from wrk, a load generator written in C
// that costs a fraction of the CPU an in-process Go generator does, so on a shared two-core
// machine it takes less from whichever server it drives. Debian's package: apt-get install wrk.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/devtools/deskrun"
)

// wrkArgs are the load every round gets: one thread, 16 connections (as the vegeta step's 16
// workers), latency percentiles.
var wrkArgs = []string{"-t1", "-c16", "--latency"}

// wrkResult is one wrk round as wrk printed it.
type wrkResult struct {
	CPU       time.Duration // the server process's CPU time during the round
	Requests  int
	Seconds   float64
	Bytes     float64 // read in all, headers included
	PerSecond float64
	P50, P99  time.Duration
	Non2xx3xx int
	SocketErr int
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)([KMGT]?B) read`)
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func wrkDuration(n, unit string) time.Duration {
	f, _ := strconv.ParseFloat(n, 64)
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	return time.Duration(f * scale)
}

// parseWrk reads wrk's report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkTotal.FindStringSubmatch(out)
	rate := wrkRate.FindStringSubmatch(out)
	if m == nil || rate == nil {
		return r, fmt.Errorf("wrk's report was not understood:\n%s", out)
	}
	r.Requests, _ = strconv.Atoi(m[1])
	r.Seconds = wrkDuration(m[2], m[3]).Seconds()
	b, _ := strconv.ParseFloat(m[4], 64)
	r.Bytes = b * map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m[5]]
	r.PerSecond, _ = strconv.ParseFloat(rate[1], 64)
	for _, p := range wrkPercent.FindAllStringSubmatch(out, -1) {
		if p[1] == "50" {
			r.P50 = wrkDuration(p[2], p[3])
		} else {
			r.P99 = wrkDuration(p[2], p[3])
		}
	}
	if n := wrkNon2xx.FindStringSubmatch(out); n != nil {
		r.Non2xx3xx, _ = strconv.Atoi(n[1])
	}
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for _, v := range s[1:] {
			n, _ := strconv.Atoi(v)
			r.SocketErr += n
		}
	}
	return r, nil
}

// runWrk loads url for d (whole seconds, as wrk counts them) with the given extra headers.
func runWrk(ctx context.Context, url string, d time.Duration, headers ...string) (wrkResult, error) {
	args := append(slices.Clone(wrkArgs), "-d"+strconv.Itoa(max(1, int(d.Round(time.Second).Seconds())))+"s")
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

// wrkMissing is why the external step cannot run here, or "".
func wrkMissing() string {
	if _, err := exec.LookPath("wrk"); err != nil {
		return "wrk is not installed (Debian: apt-get install wrk)"
	}
	return ""
}

// pagesWrk compares the signed-in create form with a bare net/http handler writing the same
// bytes, both loaded by wrk from outside in alternating rounds (desk, bare, bare, desk, ...).
func (b *rig) pagesWrk(ctx context.Context, o benchFlags, t *benchTable) error {
	const measure = "GET /uploads/new, wrk -t1 -c16 (external)"
	if why := wrkMissing(); why != "" {
		t.add(measure, "not measured", why, "report", "", true)
		return nil
	}
	bare, err := b.startBare(ctx)
	if err != nil {
		return err
	}
	defer bare.stop()
	var desk, ref []wrkResult
	deskRound := func() error {
		profiled := b.profileDesk(ctx, o.wrkRound.Round(time.Second)+time.Second)
		cpu := deskrun.CPUTime(b.desk.Pid())
		r, err := runWrk(ctx, b.desk.URL+"/uploads/new", o.wrkRound, "Cookie: "+b.cookie)
		r.CPU = deskrun.CPUTime(b.desk.Pid()) - cpu
		if perr := profiled(); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
		// wrk counts redirects as successes: a session that was not recognised would answer
		// 303 to the sign-in with a few bytes, so every answer must be at least the page.
		if r.Non2xx3xx > 0 || r.SocketErr > 0 || r.Requests == 0 || r.Bytes/float64(r.Requests) < float64(bare.size) {
			return fmt.Errorf("the desk did not answer every request with the page: %d requests, %.0f bytes each, %d errors, %d socket errors",
				r.Requests, r.Bytes/float64(max(r.Requests, 1)), r.Non2xx3xx, r.SocketErr)
		}
		desk = append(desk, r)
		return nil
	}
	bareRound := func() error {
		cpu := deskrun.CPUTime(bare.cmd.Process.Pid)
		r, err := runWrk(ctx, bare.url, o.wrkRound)
		r.CPU = deskrun.CPUTime(bare.cmd.Process.Pid) - cpu
		if err == nil && (r.Non2xx3xx > 0 || r.Requests == 0) {
			err = errors.New("the bare server failed requests")
		}
		ref = append(ref, r)
		return err
	}
	for i := range o.wrkRounds {
		first, second := deskRound, bareRound
		if i%2 == 1 {
			first, second = bareRound, deskRound
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	reportWrk(t, measure, desk, ref, o)
	return nil
}

// reportWrk adds the wrk rounds' figures to the table: throughput beside the bare server's,
// CPU per request, and latency.
func reportWrk(t *benchTable, measure string, desk, ref []wrkResult, o benchFlags) {
	ratios := make([]float64, len(desk))
	for i := range desk {
		ratios[i] = desk[i].PerSecond / ref[i].PerSecond
	}
	dr, rr := rates(desk), rates(ref)
	ratio := median(ratios)
	t.add(measure+" vs bare", fmt.Sprintf("%.0f req/s (%s)", median(dr), spread(dr, "%.0f")),
		fmt.Sprintf("bare net/http %.0f req/s (%s); %d rounds of %s each, alternating", median(rr), spread(rr, "%.0f"), o.wrkRounds, o.wrkRound.Round(time.Second)),
		">= 50% of bare", fmt.Sprintf("%.0f%%, rounds %s", 100*ratio, spread(scale(ratios, 100), "%.0f%%")), ratio >= 0.5)
	t.add(measure+" CPU per request", fmt.Sprintf("%.1f µs (%.2f cores busy)", float64(cpuPerRequest(desk).Nanoseconds())/1000, coresBusy(desk)),
		fmt.Sprintf("bare %.1f µs (%.2f cores busy); each server process's user+system time over its own rounds (/proc), load average %s",
			float64(cpuPerRequest(ref).Nanoseconds())/1000, coresBusy(ref), loadAverage()), "report", "", true)
	p50 := func(r wrkResult) time.Duration { return r.P50 }
	p99 := func(r wrkResult) time.Duration { return r.P99 }
	t.add(measure+" p50 / p99", fmt.Sprintf("%s / %s", ms(medianLatency(desk, p50)), ms(medianLatency(desk, p99))),
		fmt.Sprintf("bare %s / %s (medians of the rounds)", ms(medianLatency(ref, p50)), ms(medianLatency(ref, p99))), "", "", true)
}

func rates(rs []wrkResult) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.PerSecond
	}
	return out
}

// medianLatency is the median over the rounds of one latency figure.
func medianLatency(rs []wrkResult, p func(wrkResult) time.Duration) time.Duration {
	ds := make([]float64, len(rs))
	for i, r := range rs {
		ds[i] = float64(p(r))
	}
	return time.Duration(median(ds))
}

// cpuPerRequest is the server process's CPU time over its rounds, per request answered.
func cpuPerRequest(rs []wrkResult) time.Duration {
	var c time.Duration
	n := 0
	for _, r := range rs {
		c, n = c+r.CPU, n+r.Requests
	}
	return c / time.Duration(max(n, 1))
}

// coresBusy is how many cores the server process kept busy over its rounds.
func coresBusy(rs []wrkResult) float64 {
	var c time.Duration
	var secs float64
	for _, r := range rs {
		c, secs = c+r.CPU, secs+r.Seconds
	}
	return c.Seconds() / max(secs, 0.001)
}

// median of a non-empty slice.
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is "min–max" of v.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf(format, slices.Min(v)) + "–" + fmt.Sprintf(format, slices.Max(v))
}

func scale(v []float64, f float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * f
	}
	return out
}

// loadAverage is the machine's one-minute load average, from /proc: the neighbours' share.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
