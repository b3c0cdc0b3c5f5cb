// Command autopilotdesk serves Autopilot Desk: a web dashboard that creates Intune Windows
// Autopilot uploads through Microsoft Graph with the signed-in user's own token.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"autopilotdesk/web"
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
	if len(args) > 0 && (args[0] == "serve" || args[0] == "emulator") {
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
