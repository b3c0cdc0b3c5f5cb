package handlers

import (
	"sync"
	"time"

	"autopilotdesk/graphclient"
)

// syncSettingsFor is how long the tenant's Autopilot sync, as Graph last answered, is shown
// again without reading it: the list's pages then cost one Graph read each, not two.
const syncSettingsFor = time.Minute

// SyncSettings keeps, for a minute, each tenant's sync with the Windows Autopilot service
// (windowsAutopilotSettings) as this desk last read it, shared by everyone of the tenant: it is
// the same for all of them. A sync asked from this desk forgets it at once, so the next look
// reads the new "last sync request". Each replica keeps its own. A nil SyncSettings keeps nothing.
type SyncSettings struct {
	mu       sync.Mutex
	byTenant map[string]keptSettings
	// forgotten counts, by tenant, the times its settings were forgotten: a read that began
	// before the last of them may show the settings before a sync, and is not kept.
	forgotten map[string]uint64
}

type keptSettings struct {
	settings graphclient.AutopilotSettings
	readAt   time.Time
}

// take is the tenant's settings read less than syncSettingsFor before now, and when they were
// read; ok is false when there are none.
func (k *SyncSettings) take(tenantID string, now time.Time) (s graphclient.AutopilotSettings, readAt time.Time, ok bool) {
	if k == nil {
		return s, readAt, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	kept, found := k.byTenant[tenantID]
	if !found || now.Sub(kept.readAt) >= syncSettingsFor || now.Before(kept.readAt) {
		return s, readAt, false
	}
	return kept.settings, kept.readAt, true
}

// reading marks the start of a read of the tenant's settings; keep takes the mark back.
func (k *SyncSettings) reading(tenantID string) uint64 {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.forgotten[tenantID]
}

// keep keeps the tenant's settings read at readAt, unless they were forgotten since the read began.
func (k *SyncSettings) keep(tenantID string, mark uint64, s graphclient.AutopilotSettings, readAt time.Time) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.forgotten[tenantID] != mark {
		return
	}
	if k.byTenant == nil {
		k.byTenant = map[string]keptSettings{}
	}
	k.byTenant[tenantID] = keptSettings{settings: s, readAt: readAt}
	for t, kept := range k.byTenant {
		if readAt.Sub(kept.readAt) >= syncSettingsFor {
			delete(k.byTenant, t)
		}
	}
}

// ForgetTenant drops the tenant's settings, once a sync was asked: the next look reads them.
func (k *SyncSettings) ForgetTenant(tenantID string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.byTenant, tenantID)
	if k.forgotten == nil {
		k.forgotten = map[string]uint64{}
	}
	k.forgotten[tenantID]++
}
