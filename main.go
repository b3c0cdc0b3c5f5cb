// Command autopilotdesk serves Autopilot Desk: a web dashboard that creates Intune Windows
// Autopilot uploads through Microsoft Graph with the signed-in user's own token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(os.Getenv)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "autopilotdesk:", err)
		os.Exit(1)
	}
}

// run is the whole program: a test can start it with its own arguments and environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "emulator" || args[0] == "backup") {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		version, goVersion := web.BuildVersion()
		fmt.Fprintf(stdout, "autopilotdesk %s (built with %s)\n", version, goVersion)
		return nil
	}
	switch cmd {
	case "emulator":
		return runEmulator(ctx, args, getenv, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, getenv, stdout)
	default:
		cfg, err := loadConfig(args, getenv, stdout)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr)
	}
}

// onHangup keeps the desk running on SIGHUP (sent by a closed terminal, or by an operator after
// renewing a certificate), which would otherwise end it at once with no word: it logs what the
// desk does with settings and certificates instead. The returned function stops listening.
func onHangup(log *slog.Logger, certificates bool) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	msg := "SIGHUP received: the desk keeps running; its settings are read at start, so restart it to apply changed settings"
	if certificates {
		msg += " (renewed certificate files are served within seconds without a restart)"
	}
	go func() {
		for {
			select {
			case <-hup:
				log.Info(msg)
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// runBackup writes a consistent copy of the SQLite state database to a new file, also while the
// desk runs: `autopilotdesk backup [--data-dir DIR] FILE`.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("autopilotdesk backup", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dataDir := getenv(optDataDir.env)
	if dataDir == "" {
		dataDir = optDataDir.def
	}
	fs.StringVar(&dataDir, optDataDir.flag, dataDir, "the desk's data folder: "+optDataDir.env+" when it is set, as for the desk")
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: autopilotdesk backup [--data-dir DIR] FILE\n\n"+
			"Writes a consistent copy of the desk's SQLite state database to FILE, a new file, also while the desk runs.\n"+
			"To restore, stop the desk, move the data folder's autopilotdesk.db, -wal and -shm aside, put the copy there as autopilotdesk.db, and start the desk.\n"+
			"A desk on PostgreSQL is backed up with pg_dump instead.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("backup: name the file to write, once: autopilotdesk backup FILE")
	}
	if getenv(optDatabaseURL.env) != "" || getenv(optDatabaseURL.env+"_FILE") != "" {
		return errors.New("backup: this desk keeps its state in PostgreSQL (" + optDatabaseURL.env + "): back it up with pg_dump, as docs/deploy.md shows")
	}
	c, err := store.Backup(ctx, dataDir, fs.Arg(0))
	if errors.Is(err, store.ErrNoDatabase) {
		return fmt.Errorf("backup: %w: give the desk's data folder with --%s or %s", err, optDataDir.flag, optDataDir.env)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "Wrote a consistent copy of %s to %s (%s, schema version %d).\n", c.From, c.To, byteSize(c.Bytes), c.SchemaVersion)
	return nil
}

// byteSize is n bytes as people read it.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
