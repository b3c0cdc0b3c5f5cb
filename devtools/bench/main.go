// Command bench measures the desk as it runs in production: it builds the desk, starts it as a
// process of its own on loopback against an identity provider and a Graph emulator served from
// this process, signs in, loads it with vegeta for a bounded time and prints one table, each
// figure beside a reference measured in the same run and its target.
//
//	go run ./devtools/bench [--steps pages,forward] [--duration 3s] [--help]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"autopilotdesk/devtools/deskrun"
)

// benchSteps are the measurements run knows, in the order it runs them.
var benchSteps = []string{"wrk", "pages", "forward", "sessions", "startup", "weight", "csv", "imports", "bulk"}

// benchFlags bound every step in time and size.
type benchFlags struct {
	step      time.Duration
	wrkRound  time.Duration
	wrkRounds int
	rates     [2]int
	sessions  int
	csvRows   int
	steps     map[string]bool

	deskProfile string // where the desk's CPU profile goes; empty: none
	imports     importFlags
	bulk        bulkFlags
}

func main() {
	serveIfAsked()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, cpuProfile, deskBin, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if deskBin == "" {
		fmt.Fprintln(stderr, "bench: building the desk")
		var flags []string
		if o.deskProfile != "" {
			flags = []string{"-tags", profileTag}
		}
		if deskBin, err = deskrun.Build(ctx, flags...); err != nil {
			return err
		}
	}
	b, err := startRig(ctx, deskBin, o.deskProfile)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintf(stderr, "bench: desk on %s (process %d), %d CPUs (GOMAXPROCS %d), %s per load step\n",
		b.desk.URL, b.desk.Pid(), runtime.NumCPU(), runtime.GOMAXPROCS(0), o.step)
	if b.admin != "" {
		fmt.Fprintf(stderr, "bench: the desk's profiler is at http://%s/debug/pprof/\n", b.admin)
	}

	var t benchTable
	for _, s := range benchSteps {
		if !o.steps[s] || ctx.Err() != nil {
			continue
		}
		fmt.Fprintf(stderr, "bench: %s\n", s)
		var err error
		switch s {
		case "wrk":
			err = b.pagesWrk(ctx, o, &t)
		case "pages":
			err = b.pages(ctx, o, &t)
		case "forward":
			err = b.forward(ctx, o, &t)
		case "sessions":
			err = benchSessions(ctx, o, &t)
		case "startup":
			err = benchStartup(ctx, deskBin, &t)
		case "weight":
			err = b.weight(ctx, &t)
		case "csv":
			benchCSV(o.csvRows, &t)
		case "imports":
			err = benchImports(ctx, deskBin, o, &t)
		case "bulk":
			err = benchBulk(ctx, deskBin, o.bulk, &t)
		}
		if err != nil {
			return fmt.Errorf("bench %s: %w", s, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.saveDeskProfile(ctx); err != nil {
		return err
	}
	t.print(stdout)
	return nil
}

// parseFlags reads the command line: the bounds of the steps, the CPU profile's file and the desk
// binary to measure (empty: build one).
func parseFlags(args []string, stdout io.Writer) (o benchFlags, cpuProfile, deskBin string, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	step := fs.Duration("duration", 3*time.Second, "length of each load step")
	rates := fs.String("rates", "50,200", "two request rates per second for the forwarding step (below and near saturation)")
	sessions := fs.Int("sessions", 10000, "stored sessions for the session and memory steps")
	csvRows := fs.Int("csv-rows", 10000, "rows of the CSV pre-flight step")
	only := fs.String("steps", strings.Join(benchSteps, ","), "comma-separated steps to run")
	profile := fs.String("cpuprofile", "", "write a CPU profile of this process (the load generator, the session and CSV steps) to this file")
	deskProfile := fs.String("desk-cpuprofile", "", "write a CPU profile of the desk process during the desk rounds of the wrk and forward steps to this file (builds the desk with -tags "+profileTag+", which serves Go's profiler on its admin address)")
	importSizes := fs.String("import-devices", "10000,1000", "devices the desk imports in the imports step, one import after another (comma-separated)")
	importRef := fs.Int("import-reference", 1000, "devices the script-like reference imports (0: none)")
	importDelay := fs.String("import-delay", "10s,20s", "how long the emulator keeps each imported device unknown, then pending")
	importWindow := fs.Duration("import-window", 2*time.Second, "Intune's throttling window (20 s in the service), scaled down")
	lookups := fs.Int("lookup-serials", 500, "serials LookUpSerials checks among registered devices after the first import (0: none)")
	checks := fs.Int("check-serials", 10000, "serials of a file the desk checks in the tenant after the first import, half of them imported by it (0: none)")
	wrkRound := fs.Duration("wrk-duration", 4*time.Second, "length of each wrk round, whole seconds")
	wrkRounds := fs.Int("wrk-rounds", 3, "wrk rounds of each side (desk and bare), alternating")
	desk := fs.String("desk", "", "a built autopilotdesk binary to measure (default: build one from this module)")
	bulkDevices := fs.Int("bulk-devices", 500, "devices whose group tag the bulk step changes")
	bulkWrites := fs.Int("bulk-writes", 100, "the bulk step's write budget: writes per window (Intune's is 100 per 20 s)")
	bulkWindow := fs.Duration("bulk-window", 5*time.Second, "the bulk step's budget window, scaled down from Intune's 20 s")
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: go run ./devtools/bench [flags]\n\nStarts the desk as a process of its own on loopback, loads it and prints its figures against references measured in the same run.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, "", "", err
	}
	if fs.NArg() > 0 {
		return o, "", "", fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	o = benchFlags{step: *step, sessions: *sessions, csvRows: *csvRows, steps: map[string]bool{}, wrkRound: *wrkRound, wrkRounds: *wrkRounds, deskProfile: *deskProfile,
		bulk: bulkFlags{devices: *bulkDevices, writes: *bulkWrites, window: *bulkWindow}}
	if o.wrkRound < time.Second || o.wrkRound > time.Minute || o.wrkRounds < 1 || o.wrkRounds > 20 {
		return o, "", "", errors.New("--wrk-duration must be within [1s, 1m] and --wrk-rounds within [1, 20]")
	}
	if o.bulk.devices < 1 || o.bulk.devices > 1000 || o.bulk.writes < 1 || o.bulk.writes > 10000 || o.bulk.window < 100*time.Millisecond || o.bulk.window > time.Minute {
		return o, "", "", errors.New("--bulk-devices must be within [1, 1000], --bulk-writes within [1, 10000], --bulk-window within [100ms, 1m]")
	}
	if o.step <= 0 || o.step > time.Minute || o.sessions < 1 || o.sessions > 1_000_000 || o.csvRows < 1 || o.csvRows > 1_000_000 {
		return o, "", "", errors.New("--duration must be within (0, 1m], --sessions and --csv-rows within [1, 1000000]")
	}
	for v := range strings.SplitSeq(*importSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 10000 {
			return o, "", "", fmt.Errorf("--import-devices: %q is not a number of devices between 1 and 10000", v)
		}
		o.imports.sizes = append(o.imports.sizes, n)
	}
	o.imports.reference, o.imports.window, o.imports.serials, o.imports.checks = *importRef, *importWindow, *lookups, *checks
	ds := strings.Split(*importDelay, ",")
	for i := range o.imports.delays {
		var err error
		if len(ds) != 2 {
			err = errors.New("two durations")
		} else {
			o.imports.delays[i], err = time.ParseDuration(strings.TrimSpace(ds[i]))
		}
		if err != nil || o.imports.delays[i] <= 0 {
			return o, "", "", fmt.Errorf("--import-delay needs two durations, like 10s,20s")
		}
	}
	if o.imports.reference < 0 || o.imports.reference > 10000 || o.imports.window < 100*time.Millisecond || o.imports.serials < 0 || o.imports.serials > 10000 ||
		o.imports.checks < 0 || o.imports.checks > 10000 {
		return o, "", "", errors.New("--import-reference, --lookup-serials and --check-serials must be within [0, 10000], --import-window at least 100ms")
	}
	rs := strings.Split(*rates, ",")
	if len(rs) != 2 {
		return o, "", "", errors.New("--rates needs two rates, like 50,200")
	}
	for i, r := range rs {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 || n > 5000 {
			return o, "", "", fmt.Errorf("--rates: %q is not a rate between 1 and 5000", r)
		}
		o.rates[i] = n
	}
	for s := range strings.SplitSeq(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(benchSteps, s) {
			return o, "", "", fmt.Errorf("--steps: unknown step %q (known: %s)", s, strings.Join(benchSteps, ", "))
		}
		o.steps[s] = true
	}
	return o, *profile, *desk, nil
}

// benchTable is the report: one row per figure.
type benchTable struct{ rows [][5]string }

// add records a figure; result is what the target is checked against (empty: reported only).
func (t *benchTable) add(measure, figure, reference, target, result string, pass bool) {
	verdict := "PASS"
	switch {
	case target == "" || target == "report":
		verdict = ""
	case !pass:
		verdict = "MISS"
	}
	if target == "report" {
		target = ""
	}
	if verdict != "" && result != "" {
		verdict += " (" + result + ")"
	}
	t.rows = append(t.rows, [5]string{measure, figure, reference, target, verdict})
}

func (t *benchTable) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tFIGURE\tREFERENCE (same run)\tTARGET\tRESULT")
	for _, r := range t.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3], r[4])
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func kilobytes(n int) string { return fmt.Sprintf("%.1f kB", float64(n)/1000) }
