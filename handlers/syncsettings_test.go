package handlers

import (
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
)

// The tenant's sync is shown again for a minute after it was read, for that tenant only; a sync
// asked forgets it, also when a read that began before the sync ends after it.
func TestSyncSettingsKeptAMinutePerTenant(t *testing.T) {
	var k SyncSettings
	clock := testkit.NewClock()
	synced := graphclient.AutopilotSettings{SyncStatus: graphclient.SyncCompleted}
	k.keep("t1", k.reading("t1"), synced, clock.Now())
	clock.Advance(syncSettingsFor - time.Second)
	if s, readAt, ok := k.take("t1", clock.Now()); !ok || s != synced || !readAt.Equal(testkit.Epoch) {
		t.Fatalf("within the minute: %v %v %v", s, readAt, ok)
	}
	if _, _, ok := k.take("t2", clock.Now()); ok {
		t.Error("another tenant's sync was shown")
	}
	clock.Advance(time.Second)
	if _, _, ok := k.take("t1", clock.Now()); ok {
		t.Error("the sync was shown as read after a minute")
	}

	k.keep("t1", k.reading("t1"), synced, clock.Now())
	mark := k.reading("t1") // a read begins, then someone syncs
	k.ForgetTenant("t1")
	if _, _, ok := k.take("t1", clock.Now()); ok {
		t.Error("the sync was shown as read before the sync was asked")
	}
	k.keep("t1", mark, synced, clock.Now())
	if _, _, ok := k.take("t1", clock.Now()); ok {
		t.Error("a read begun before the sync was kept")
	}

	var none *SyncSettings
	none.keep("t1", none.reading("t1"), synced, clock.Now())
	none.ForgetTenant("t1")
	if _, _, ok := none.take("t1", clock.Now()); ok {
		t.Error("a nil SyncSettings kept something")
	}
}
