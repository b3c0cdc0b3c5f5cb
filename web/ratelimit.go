package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
)

// Counter counts events per bucket in a window; the state database implements it so replicas share counts.
type Counter interface {
	Allow(ctx context.Context, bucket string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// Limit is "at most N requests per window"; the zero Limit ("off") switches the limit off.
type Limit struct {
	N      int
	Window time.Duration
}

// ParseLimit reads "20/1m" (20 per minute); only "off" (in any case) disables the limit. A count of 0 is
// refused rather than read as "off": it reads as "allow nothing", and meaning the opposite
// would silently lift the limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if (err == nil && count == 0) || s == "0" {
		return Limit{}, fmt.Errorf("%q allows no request at all: give a limit such as 20/1m, or off to disable it", s)
	}
	if !ok || err != nil || count < 0 {
		return Limit{}, fmt.Errorf("%q is not a limit such as 20/1m, or off to disable it", s)
	}
	window, err := time.ParseDuration(w)
	if err != nil || window <= 0 {
		if hours, meant, units, ok := InHours(w); ok {
			return Limit{}, fmt.Errorf("%q is not a limit the desk reads: durations have no %s; write %s/%s for %s", s, units, n, hours, meant)
		}
		return Limit{}, fmt.Errorf("%q is not a limit such as 20/1m, or off to disable it", s)
	}
	return Limit{N: count, Window: window}, nil
}

// InHours reads a duration in days or weeks, which Go durations do not have ("90d", "1w"), and
// says it in hours ("2160h"), with what it meant ("90 days") and the units it was in ("days").
func InHours(v string) (hours, meant, units string, ok bool) {
	v = strings.TrimSpace(v)
	for _, u := range []struct {
		suffix, one, many string
		hours             int
	}{{"d", "day", "days", 24}, {"w", "week", "weeks", 7 * 24}} {
		n, found := strings.CutSuffix(v, u.suffix)
		count, err := strconv.Atoi(n)
		if !found || err != nil || count <= 0 || count > 100000 {
			continue
		}
		meant = fmt.Sprintf("%d %s", count, u.many)
		if count == 1 {
			meant = "1 " + u.one
		}
		return fmt.Sprintf("%dh", count*u.hours), meant, u.many, true
	}
	return "", "", "", false
}

func (l Limit) String() string {
	if l.N == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.N, l.Window)
}

// RateLimit limits an action per client IP and, when someone is signed in, per user.
func (s *Shell) RateLimit(counter Counter, action string, limit Limit) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if limit.N == 0 {
			return next
		}
		return func(c echo.Context) error {
			buckets := []string{action + ":ip:" + c.RealIP()}
			if u := CurrentUser(c); u != nil {
				buckets = append(buckets, action+":user:"+u.Key())
			}
			for _, b := range buckets {
				ok, retry, err := counter.Allow(c.Request().Context(), b, limit.N, limit.Window)
				if err != nil {
					return fmt.Errorf("rate limit: %w", errStateUnavailable(err))
				}
				if !ok {
					return s.limited(c, action, b, limit, retry)
				}
			}
			return next(c)
		}
	}
}

// limited answers a request over its limit: 429, with when to try again. A form's values are
// kept for the page it was on, which the answer leads back to.
func (s *Shell) limited(c echo.Context, action, bucket string, limit Limit, retry time.Duration) error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	wait := explain.Duration(time.Duration(secs) * time.Second)
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	s.log.Info("rate limited", "action", action, "bucket_kind", strings.SplitN(bucket, ":", 3)[1], "ip", c.RealIP())
	times := fmt.Sprintf("%d times", limit.N)
	if limit.N == 1 {
		times = "once"
	}
	page := &views.ErrorPage{Status: http.StatusTooManyRequests, Title: "Too many requests",
		Message:  fmt.Sprintf("You (or your network) did this more than %s in %s, so the desk paused it to protect your tenant. Nothing was sent to Microsoft Graph.", times, explain.Duration(limit.Window)),
		NextStep: fmt.Sprintf("Wait %s, then try again.", wait)}
	if r := c.Request(); r.Method == http.MethodPost && len(r.PostForm) > 0 {
		formPage := s.formPageOf(c)
		if kept, err := KeepForm(c, formPage, r.PostForm); err == nil && kept {
			page.NextStep = fmt.Sprintf("Wait %s, then send it again from the form, which keeps what you typed.", wait)
			page.ActionURL, page.ActionText = formPage, "Back to the form"
		}
	}
	return page
}
