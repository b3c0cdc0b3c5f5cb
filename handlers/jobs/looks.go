package jobs

import "time"

// ScheduledLook reports whether a look made now at something whose answer was lost at lostAt,
// after lookups looks that counted, is the schedule's next one: one made no earlier than
// delays[lookups] after the loss. Graph takes minutes to show a change, and the schedule spreads
// its looks over them; a look its owner asks for by hand ("Check what Graph has") before the
// schedule's next is due is made, but does not count, so pressing it any number of times never
// uses the schedule up. due is when the schedule's next look is due (now once it is past, or
// when lostAt is unknown: every look counts then).
func ScheduledLook(lostAt, now time.Time, delays []time.Duration, lookups int) (counts bool, due time.Time) {
	if lostAt.IsZero() || lookups >= len(delays) {
		return true, now
	}
	due = lostAt.Add(delays[lookups])
	if now.Before(due) {
		return false, due
	}
	return true, now
}
