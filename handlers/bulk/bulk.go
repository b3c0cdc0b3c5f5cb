// Package bulk carries a change to many registered Autopilot devices through once it is
// confirmed: a group tag set, a user unassigned or registrations deleted. Like the device import
// it sends each device's change exactly once: every device is recorded as in flight before it is
// sent, a change whose outcome Graph did not give (a lost answer, a timeout, or a server error
// other than 503 — 500, 502, 504, 507…, which may have been carried out) is never sent again but
// reconciled by reading the device, and a worker on any replica takes a dead worker's job over through its
// lease. It paces its writes to Intune's write budget, shared by every desk through the state
// database, and never sends before a Retry-After Graph gave has passed.
package bulk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// Actions: what a bulk job does to each of its devices (the store's constants).
const (
	ActionGroupTag = store.BulkGroupTag
	ActionUnassign = store.BulkUnassign
	ActionDelete   = store.BulkDelete
)

// ValidAction reports whether a is one of the actions.
func ValidAction(a string) bool {
	return a == ActionGroupTag || a == ActionUnassign || a == ActionDelete
}

// Job states.
const (
	StateDraft    = "draft"    // chosen, waiting for its owner's confirmation; nothing sent
	StateSending  = "sending"  // confirmed: devices are changed one chunk at a time
	StateFinished = "finished" // every device has its final outcome
)

// Device states (the store's constants).
const (
	DeviceQueued      = store.BulkQueued
	DeviceInFlight    = store.BulkInFlight
	DeviceUnknown     = store.BulkUnknown
	DeviceDone        = store.BulkDone
	DeviceRefused     = store.BulkRefused
	DeviceNotFound    = store.BulkNotFound
	DeviceUnconfirmed = store.BulkUnconfirmed
	DeviceSkipped     = store.BulkSkipped
	DeviceReplaced    = store.BulkReplaced
)

// Final reports whether a device state is its last.
func Final(state string) bool {
	switch state {
	case DeviceDone, DeviceRefused, DeviceNotFound, DeviceUnconfirmed, DeviceSkipped, DeviceReplaced:
		return true
	}
	return false
}

// Again reports whether a finished device may be offered the same change again: Graph refused it,
// it was not sent for a refusal that held for all, or the change never showed after its answer was
// lost. Not a device done, gone, or left to a later bulk change or replaced by a later change.
func Again(d store.BulkDevice) bool {
	switch d.State {
	case DeviceRefused, DeviceUnconfirmed:
		return true
	case DeviceSkipped:
		return d.Reason != store.BulkReasonSuperseded
	}
	return false
}

// Correct reports whether a device of a finished group tag change is prepared again with the
// group tag to correct in front of its owner: Graph refused it for the value sent (400 or 422),
// which sending the same value again cannot change.
func Correct(action string, d store.BulkDevice) bool {
	if action != ActionGroupTag || d.State != DeviceRefused {
		return false
	}
	f, err := jobs.Decode[explain.Failure](d.Failure)
	return err == nil && RefusedValue(f)
}

// RefusedValue reports whether Graph refused a change for the value it was sent.
func RefusedValue(f explain.Failure) bool {
	return f.Graph != nil && (f.Graph.Kind == graphclient.KindValidation || f.Graph.Kind == graphclient.KindInvalidInput)
}

// Correction is what a bulk change prepared again to correct its group tag shows in its review:
// the earlier change, the group tag Graph refused there, and Graph's refusal.
type Correction struct {
	From    string          `json:"from"`
	Tag     string          `json:"tag"`
	Refusal explain.Failure `json:"refusal"`
}

// Payload is what a job keeps besides its devices: facts, put into words when its page is shown.
type Payload struct {
	Missing []string `json:"missing,omitempty"` // chosen devices Graph no longer had when the job was made
	// NoUser are the serial numbers of devices chosen for an unassign that had no user when the
	// job was made: left out, as unassigning would change nothing.
	NoUser  []string         `json:"noUser,omitempty"`
	Paused  bool             `json:"paused,omitempty"`  // its owner has no live session: it waits for their sign-in
	Waiting *Wait            `json:"waiting,omitempty"` // pacing to the write budget, or a Retry-After
	Trouble *explain.Failure `json:"trouble,omitempty"` // a passing problem the desk works around by itself
	Refusal *explain.Failure `json:"refusal,omitempty"` // a refusal that stopped every device not yet sent
	// Correct: a draft prepared again for devices whose group tag Graph refused.
	Correct *Correction `json:"correct,omitempty"`
	// Serials: the devices were chosen by serial number; what became of the serial numbers given.
	Serials *SerialChoice `json:"serials,omitempty"`
}

// SerialChoice is what became of the serial numbers a bulk change was chosen by: each found
// device is one of the change's, and these are the others.
type SerialChoice struct {
	Given    int      `json:"given"`              // distinct serial numbers looked up
	NotFound []string `json:"notFound,omitempty"` // no registered device has it
	// LeftOut are the entries given again (looked up once) or that are no serial number the
	// desk can look up, in the order given.
	LeftOut []SerialEntry `json:"leftOut,omitempty"`
	Blank   []string      `json:"blank,omitempty"` // where the blank lines were ("line 4")
}

// SerialEntry is one entry of a list of serial numbers: where it is ("line 4", "line 4 of
// devices.csv"), what it says, and why it was left out.
type SerialEntry struct {
	Where  string `json:"where"`
	Serial string `json:"serial,omitempty"`
	Why    string `json:"why"`
}

// Wait is a pause the page explains.
type Wait struct {
	Pacing    bool      `json:"pacing,omitempty"`    // the write budget is taken until then
	Held      bool      `json:"held,omitempty"`      // Graph asked every desk to wait until then (a Retry-After)
	Throttled bool      `json:"throttled,omitempty"` // Graph throttled the tenant; else it was unavailable
	Until     time.Time `json:"until"`
}

// DecodePayload reads a job's payload; an empty one is an empty Payload.
func DecodePayload(b []byte) (Payload, error) { return jobs.Decode[Payload](b) }

// Encode is the payload as the job stores it.
func (p Payload) Encode() []byte { return jobs.Encode(p) }

// Budget shares Intune's write budget of each tenant among every desk: Writes changes in any span
// of Window, as Intune counts them for one application in one tenant (graph-facts: 100 writes per
// 20 s). Graph counts a write when it arrives, some time after its slot was taken: a slot whose
// writes were answered is counted again from the answer (Answered), so the next write it allows
// arrives after that one has left Graph's window, however slow the way there; each slot is also
// kept a little longer than the window.
type Budget struct {
	Store interface {
		TakeWriteSlots(ctx context.Context, bucket string, want, limit int, window time.Duration) (taken int, stamp, retryAt time.Time, held bool, err error)
		WriteSlotsAnswered(ctx context.Context, bucket string, stamp time.Time, n int, answered time.Time) error
		HoldWrites(ctx context.Context, bucket string, until time.Time) error
		WriteHold(ctx context.Context, bucket string) (time.Time, error)
	}
	Writes int
	Window time.Duration

	mu    sync.Mutex
	holds map[string]heldWrites // by tenant: what HeldUntil read last
}

// heldWrites is a tenant's hold as HeldUntil last read it.
type heldWrites struct{ until, read time.Time }

// holdFresh is how long HeldUntil trusts what it read: a hold another desk set shows here within
// it; one this desk set, at once.
const holdFresh = time.Second

// DefaultWrites and DefaultWindow are Intune's documented per-application write budget.
const (
	DefaultWrites = 100
	DefaultWindow = 20 * time.Second
)

func (b *Budget) limits() (int, time.Duration) {
	n, w := b.Writes, b.Window
	if n <= 0 {
		n = DefaultWrites
	}
	if w <= 0 {
		w = DefaultWindow
	}
	return n, w
}

// Slots are write slots taken from a tenant's budget, for Answered.
type Slots struct {
	N int // how many were taken
	// Held: none was taken because Graph asked every desk to wait (a Retry-After), not because
	// the budget is spent.
	Held   bool
	tenant string
	stamp  time.Time
}

// Reserve is the share of each window of a budget of n writes that bulk changes leave to changes
// made one device at a time (a tenth, at least one when n is more than one): a bulk change
// running never keeps a change made on a device's page waiting more than a window.
func Reserve(n int) int {
	if n < 2 {
		return 0
	}
	return max(1, n/10)
}

// Take takes up to want write slots of the tenant's budget, for a change made on one device's
// page: it may use the whole budget. With none, it says when to ask again (and Slots.Held
// whether that is the end of Graph's Retry-After rather than of the budget).
func (b *Budget) Take(ctx context.Context, tenantID string, want int) (Slots, time.Time, error) {
	n, _ := b.limits()
	return b.take(ctx, tenantID, want, n)
}

// TakeForBulk is Take for a bulk change: it leaves the Reserve of every window to changes made
// one device at a time.
func (b *Budget) TakeForBulk(ctx context.Context, tenantID string, want int) (Slots, time.Time, error) {
	n, _ := b.limits()
	return b.take(ctx, tenantID, want, n-Reserve(n))
}

func (b *Budget) take(ctx context.Context, tenantID string, want, limit int) (Slots, time.Time, error) {
	_, w := b.limits()
	taken, stamp, retryAt, held, err := b.Store.TakeWriteSlots(ctx, bucketOf(tenantID), want, limit, w+min(time.Second, max(50*time.Millisecond, w/50)))
	return Slots{N: taken, Held: held, tenant: tenantID, stamp: stamp}, retryAt, err
}

// Answered counts the slots from now, when Graph has answered the writes they were taken for.
func (b *Budget) Answered(ctx context.Context, s Slots, now time.Time) error {
	if s.N == 0 {
		return nil
	}
	return b.Store.WriteSlotsAnswered(ctx, bucketOf(s.tenant), s.stamp, s.N, now)
}

func bucketOf(tenantID string) string { return "graph-writes:" + tenantID }

// Hold stops every desk writing to the tenant until Graph's Retry-After has passed.
func (b *Budget) Hold(ctx context.Context, tenantID string, until time.Time) error {
	b.mu.Lock()
	if h := b.holds[tenantID]; until.After(h.until) {
		b.remember(tenantID, heldWrites{until: until, read: h.read})
	}
	b.mu.Unlock()
	return b.Store.HoldWrites(ctx, bucketOf(tenantID), until)
}

// HeldUntil is the time until which Graph asked every desk to hold the tenant's writes (the
// zero time, or one past, when it did not), for writes that are not paced to the budget but
// must not be sent before a Retry-After: an upload's create, change or delete. It reads the
// state database at most once a second per tenant.
func (b *Budget) HeldUntil(ctx context.Context, tenantID string, now time.Time) (time.Time, error) {
	b.mu.Lock()
	h, ok := b.holds[tenantID]
	b.mu.Unlock()
	if ok && now.Sub(h.read) < holdFresh && now.Sub(h.read) >= 0 {
		return h.until, nil
	}
	until, err := b.Store.WriteHold(ctx, bucketOf(tenantID))
	if err != nil {
		return time.Time{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.holds[tenantID]; cur.until.After(until) {
		until = cur.until // this desk's own hold, set since
	}
	b.remember(tenantID, heldWrites{until: until, read: now})
	return until, nil
}

// remember keeps a tenant's hold; the caller holds mu. Holds long past are dropped.
func (b *Budget) remember(tenantID string, h heldWrites) {
	if b.holds == nil {
		b.holds = map[string]heldWrites{}
	}
	if len(b.holds) > 1000 {
		clear(b.holds)
	}
	b.holds[tenantID] = h
}

// Describe says the budget in words: "100 changes per 20 seconds".
func (b *Budget) Describe() string {
	n, w := b.limits()
	return fmt.Sprintf("%d changes per %s", n, seconds(w))
}

// Estimate is the least time a bulk change of n devices takes within the budget, which leaves
// the Reserve of each window to changes made one device at a time.
func (b *Budget) Estimate(n int) time.Duration {
	writes, w := b.limits()
	return Minimum(n, writes, w)
}

// Minimum is the least time a bulk change of n devices takes within a budget of writes per
// window: a window for every full share (the budget less its Reserve) after the first.
func Minimum(n, writes int, window time.Duration) time.Duration {
	per := max(writes-Reserve(writes), 1)
	if n <= per {
		return 0
	}
	return time.Duration((n-1)/per) * window
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		s := int(d / time.Second)
		if s == 1 {
			return "second"
		}
		return fmt.Sprintf("%d seconds", s)
	}
	return d.String()
}

// Counts tally a job's devices by state.
type Counts struct {
	Devices                              int
	Queued, InFlight, Unknown            int
	Done, Refused, NotFound, Unconfirmed int
	Skipped                              int
	Superseded                           int // of the skipped, those left to a bulk change confirmed later
	Replaced                             int // answer lost, and a later change of the device made since
	ReplacedOnPage                       int // of the replaced, those replaced by a change made on the device's page
	Restored                             int // of the unknown, those the backup the desk was restored from had not sent
	Reconciled                           int // done, as found by reading them after an answer was lost
}

// Final is how many devices have their final outcome.
func (c Counts) Final() int {
	return c.Done + c.Refused + c.NotFound + c.Unconfirmed + c.Skipped + c.Replaced
}

// Count tallies devices by state.
func Count(devices []store.BulkDevice) Counts {
	c := Counts{Devices: len(devices)}
	for _, d := range devices {
		switch d.State {
		case DeviceQueued:
			c.Queued++
		case DeviceInFlight:
			c.InFlight++
		case DeviceUnknown:
			c.Unknown++
			if d.Reason == store.BulkReasonRestored {
				c.Restored++
			}
		case DeviceDone:
			c.Done++
		case DeviceRefused:
			c.Refused++
		case DeviceNotFound:
			c.NotFound++
		case DeviceUnconfirmed:
			c.Unconfirmed++
		case DeviceReplaced:
			c.Replaced++
			if d.Reason == store.BulkReasonDevicePage {
				c.ReplacedOnPage++
			}
		case DeviceSkipped:
			c.Skipped++
			if d.Reason == store.BulkReasonSuperseded {
				c.Superseded++
			}
		}
		if d.Reconciled && d.State == DeviceDone && d.Reason != store.BulkReasonRestored {
			c.Reconciled++ // read and found made after a lost answer; one read and not found so, or gone, is not
		}
	}
	return c
}
