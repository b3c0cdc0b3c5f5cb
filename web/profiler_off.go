//go:build !deskpprof

package web

import "github.com/labstack/echo/v4"

// Profiling reports whether this build serves Go's profiler: the production binary does not
// (a developer build made with `-tags deskpprof` does, on the admin address only).
const Profiling = false

// AddProfiler does nothing in the production build.
func AddProfiler(*echo.Echo) {}
