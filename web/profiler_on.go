//go:build deskpprof

package web

import (
	"net/http"
	"net/http/pprof"
	"runtime"

	"github.com/labstack/echo/v4"
)

// Profiling reports whether this build serves Go's profiler. Only a developer build made with
// `-tags deskpprof` (devtools/deskrun.BuildProfiling) does; the production binary never does.
const Profiling = true

// AddProfiler serves Go's profiler under /debug/pprof/ on e, which must be the admin address's
// server: nothing a browser reaches.
func AddProfiler(e *echo.Echo) {
	runtime.SetMutexProfileFraction(10) // /debug/pprof/mutex: where requests wait for each other
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	e.Any("/debug/pprof/*", echo.WrapHandler(mux))
}
