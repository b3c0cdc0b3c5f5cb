package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"autopilotdesk/graphclient/guid"
)

const (
	deviceType  = "#microsoft.graph.importedWindowsAutopilotDeviceIdentity"
	stateType   = "#microsoft.graph.importedWindowsAutopilotDeviceIdentityState"
	syncBackoff = 10 * time.Minute // Intune refuses a sync within this long of the last one

	// minHashBytes is the smallest decoded hardware hash taken as plausible; real 4K hashes
	// decode to about 3,000 bytes.
	minHashBytes = 1000
)

// device is an importedWindowsAutopilotDeviceIdentity. Its import outcome is decided when it
// arrives and revealed over time, as Intune processes imports asynchronously.
type device struct {
	ID, SerialNumber, ProductKey, HardwareIdentifier, GroupTag, AssignedUPN, ImportID string

	importedAt     time.Time
	outcome        outcome
	registrationID string
	seq            int
}

// outcome is a device's final import state; a zero code with a name is ZtdDeviceDuplicated. A
// status set from Options.Outcomes replaces the usual complete or error.
type outcome struct {
	code   int
	name   string
	status string
}

func (o outcome) failed() bool { return o.status == "" && o.name != "" || o.status == "error" }

// Outcome is a final import state Options.Outcomes gives a serial number: Status is any
// deviceImportStatus, or "null" for a state Graph leaves null.
type Outcome struct {
	Status         string
	ErrorCode      int
	ErrorName      string
	RegistrationID string // instead of a new GUID
}

var (
	errAlreadyAssigned = outcome{code: 806, name: "ZtdDeviceAlreadyAssigned"}
	errOtherTenant     = outcome{code: 808, name: "ZtdDeviceAssignedToOtherTenant"}
	errInvalidHash     = outcome{code: 802, name: "InvalidZtdHardwareHash"}
	errNoSerial        = outcome{code: 803, name: "MissingZtdSerialNumberAndProductKey"}
	errDuplicated      = outcome{code: 0, name: "ZtdDeviceDuplicated"}
)

// status is the deviceImportStatus at now.
func (d *device) status(now time.Time, delays ImportDelays) string {
	switch age := now.Sub(d.importedAt); {
	case age < delays.Unknown:
		return "unknown"
	case age < delays.Unknown+delays.Pending:
		return "pending"
	case d.outcome.status != "":
		return d.outcome.status
	case d.outcome.failed():
		return "error"
	}
	return "complete"
}

func (d *device) json(now time.Time, delays ImportDelays, ctx string) map[string]any {
	status := d.status(now, delays)
	var state any
	switch status {
	case "null":
	case "complete", "partial":
		state = map[string]any{"@odata.type": stateType, "deviceImportStatus": status, "deviceRegistrationId": d.registrationID,
			"deviceErrorCode": d.outcome.code, "deviceErrorName": d.outcome.name}
	case "error":
		state = map[string]any{"@odata.type": stateType, "deviceImportStatus": status, "deviceRegistrationId": "",
			"deviceErrorCode": d.outcome.code, "deviceErrorName": d.outcome.name}
	default:
		state = map[string]any{"@odata.type": stateType, "deviceImportStatus": status, "deviceRegistrationId": "", "deviceErrorCode": 0, "deviceErrorName": ""}
	}
	m := map[string]any{
		"@odata.type": deviceType, "id": d.ID, "serialNumber": d.SerialNumber, "productKey": d.ProductKey,
		"hardwareIdentifier": d.HardwareIdentifier, "groupTag": d.GroupTag, "assignedUserPrincipalName": d.AssignedUPN,
		"importId": d.ImportID, "state": state,
	}
	if ctx != "" {
		m["@odata.context"] = ctx
	}
	return m
}

// decodeDevice reads one device the way Graph's OData layer does; it answers 400 itself.
func decodeDevice(a answer, raw json.RawMessage) (*device, bool) {
	var props map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&props); err != nil || props == nil || dec.More() {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
		return nil, false
	}
	d := &device{}
	fields := map[string]*string{
		"id": &d.ID, "serialNumber": &d.SerialNumber, "productKey": &d.ProductKey, "hardwareIdentifier": &d.HardwareIdentifier,
		"groupTag": &d.GroupTag, "assignedUserPrincipalName": &d.AssignedUPN, "importId": &d.ImportID,
	}
	for k, v := range props {
		switch dst, ok := fields[k]; {
		case ok:
			if string(v) == "null" {
				continue
			}
			if json.Unmarshal(v, dst) != nil {
				a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert a primitive value to the expected type 'Edm.String' for the property '%s'.", k))
				return nil, false
			}
		case k == "@odata.type":
			if str(v) != deviceType {
				a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", truncate(strings.Trim(string(v), `"`), 80)))
				return nil, false
			}
		case k == "state": // output only; Graph ignores what a client sends
		default:
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.importedWindowsAutopilotDeviceIdentity'. Make sure to only use property names that are defined by the type or mark the type as open type.", truncate(k, 80)))
			return nil, false
		}
	}
	if d.HardwareIdentifier != "" {
		if _, err := base64.StdEncoding.DecodeString(d.HardwareIdentifier); err != nil {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Binary'.", truncate(d.HardwareIdentifier, 16)))
			return nil, false
		}
	}
	return d, true
}

// admit stores newly arrived devices, deciding each one's outcome. The caller holds e.mu.
func (e *Emulator) admit(t *tenant, batch []*device, now time.Time) {
	seenHash := map[string]bool{}
	registered := t.registeredSerials() // read once: a batch of 500 against 10,000 devices
	for _, d := range batch {
		hash, _ := base64.StdEncoding.DecodeString(d.HardwareIdentifier)
		switch {
		case d.SerialNumber == "" && d.ProductKey == "":
			d.outcome = errNoSerial
		case len(hash) < minHashBytes:
			d.outcome = errInvalidHash
		case seenHash[d.HardwareIdentifier]:
			d.outcome = errDuplicated
		case slices.ContainsFunc(e.opts.OtherTenantSerials, func(s string) bool { return strings.EqualFold(s, d.SerialNumber) }):
			d.outcome = errOtherTenant
		case d.SerialNumber != "" && registered[strings.ToLower(d.SerialNumber)]:
			d.outcome = errAlreadyAssigned
		}
		o, chosen := e.opts.Outcomes[d.SerialNumber]
		if chosen {
			d.outcome = outcome{code: o.ErrorCode, name: o.ErrorName, status: o.Status}
		}
		seenHash[d.HardwareIdentifier] = true
		if d.ID == "" {
			d.ID = e.opts.NewID()
		}
		if !d.outcome.failed() {
			d.registrationID = e.opts.NewID()
			if o.RegistrationID != "" {
				d.registrationID = o.RegistrationID
			}
			e.registerImported(t, d, now) // it becomes a registered Autopilot device when its import completes
			if d.SerialNumber != "" {
				registered[strings.ToLower(d.SerialNumber)] = true
			}
		}
		d.importedAt = now
		t.seq++
		d.seq = t.seq
		t.devices[d.ID] = d
	}
}

// devices is the collection of imported device identities.
func (e *Emulator) devices(p Principal, version string) collection {
	ctxBase := metadata(version, "deviceManagement/"+devicesSegment)
	return collection{
		template: "~/singleton/navigation",
		list:     func(a answer, r *http.Request) { e.listDevices(a, r, p, ctxBase) },
		create:   func(a answer, body []byte) { e.createDevice(a, p, body, ctxBase+"/$entity", nil) },
		actions:  map[string]func(answer, []byte){"import": func(a answer, body []byte) { e.importDevices(a, p, version, body) }},
		entity: func(a answer, r *http.Request, id string, below []string, body []byte) {
			switch {
			case len(below) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
				e.oneDevice(a, r, p, id, ctxBase+"/$entity", nil)
			case len(below) == 0:
				noRoute(a, r, "~/singleton/navigation/key")
			default:
				noRoute(a, r, "~/singleton/navigation/key/action")
			}
		},
	}
}

// serialFilterRE is the filters the emulator answers on imported identities: contains(), the
// form the desk sends, and eq; a quote inside the OData literal is doubled, as Graph reads it.
var serialFilterRE = regexp.MustCompile(`^(?:serialNumber eq '((?:[^']|'')*)'|contains\(serialNumber,\s*'((?:[^']|'')*)'\))$`)

func (e *Emulator) listDevices(a answer, r *http.Request, p Principal, ctxBase string) {
	match := func(*device) bool { return true }
	if f := r.URL.Query().Get("$filter"); f != "" {
		m := serialFilterRE.FindStringSubmatch(f)
		switch {
		case m == nil:
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid filter clause")
			return
		case strings.HasPrefix(f, "contains"):
			want := strings.ToLower(strings.ReplaceAll(m[2], "''", "'"))
			match = func(d *device) bool { return strings.Contains(strings.ToLower(d.SerialNumber), want) }
		default:
			want := strings.ReplaceAll(m[1], "''", "'")
			match = func(d *device) bool { return strings.EqualFold(d.SerialNumber, want) }
		}
	}
	e.pageDevices(a, r, ctxBase, e.tenant(p.TenantID).devices, match)
}

// pageDevices answers one page of matching devices in arrival order, rendering only that page.
func (e *Emulator) pageDevices(a answer, r *http.Request, ctx string, devices map[string]*device, match func(*device) bool) {
	e.mu.Lock()
	all := matching(devices, match)
	e.mu.Unlock()
	e.page(a, r, ctx, len(all), func(start, end int) []map[string]any {
		e.mu.Lock()
		defer e.mu.Unlock()
		items := make([]map[string]any, 0, end-start)
		for _, d := range all[start:end] {
			items = append(items, d.json(a.now, e.opts.ImportDelays, ""))
		}
		return items
	})
}

// matching lists the matching devices in arrival order. The caller holds e.mu.
func matching(devices map[string]*device, match func(*device) bool) []*device {
	var all []*device
	for _, d := range devices {
		if match(d) {
			all = append(all, d)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	return all
}

// createDevice adds one device to the tenant, or to an upload's deviceIdentities when up is set.
func (e *Emulator) createDevice(a answer, p Principal, body []byte, ctx string, up *upload) {
	d, ok := decodeDevice(a, body)
	if !ok {
		return
	}
	if d.ID != "" && !guid.Valid(d.ID) {
		a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Guid'.", truncate(d.ID, 40)))
		return
	}
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	store := t.devices
	if up != nil {
		store = up.devices
	}
	if _, taken := store[d.ID]; d.ID != "" && taken {
		e.mu.Unlock()
		a.fail(http.StatusConflict, "Conflict", "An object with id '"+d.ID+"' already exists.")
		return
	}
	if up == nil {
		e.admit(t, []*device{d}, a.now)
	} else {
		if d.ID == "" {
			d.ID = e.opts.NewID()
		}
		d.registrationID = e.opts.NewID()
		d.importedAt = a.now
		t.seq++
		d.seq = t.seq
		up.devices[d.ID] = d
	}
	out := d.json(a.now, e.opts.ImportDelays, ctx)
	e.mu.Unlock()
	a.json(http.StatusCreated, out)
}

// oneDevice answers GET and DELETE of a device in the tenant, or in an upload when up is set.
func (e *Emulator) oneDevice(a answer, r *http.Request, p Principal, id, ctx string, up *upload) {
	e.mu.Lock()
	store := e.tenant(p.TenantID).devices
	if up != nil {
		store = up.devices
	}
	d, found := store[id]
	if !found {
		e.mu.Unlock()
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
		return
	}
	if r.Method == http.MethodDelete {
		delete(store, id)
		e.mu.Unlock()
		a.noContent()
		return
	}
	out := d.json(a.now, e.opts.ImportDelays, ctx)
	e.mu.Unlock()
	a.json(http.StatusOK, out)
}

func (e *Emulator) importDevices(a answer, p Principal, version string, body []byte) {
	var req map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || req == nil || dec.More() {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
		return
	}
	for k := range req {
		if k != "importedWindowsAutopilotDeviceIdentities" {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The parameter '%s' in the request payload is not a valid parameter for the operation 'import'.", truncate(k, 80)))
			return
		}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(req["importedWindowsAutopilotDeviceIdentities"], &raws); err != nil || raws == nil {
		a.fail(http.StatusBadRequest, "BadRequest", "The parameter 'importedWindowsAutopilotDeviceIdentities' in the request payload is not a collection.")
		return
	}
	batch := make([]*device, 0, len(raws))
	for _, raw := range raws {
		d, ok := decodeDevice(a, raw)
		if !ok {
			return
		}
		d.ID = "" // the service assigns ids on import
		batch = append(batch, d)
	}
	e.mu.Lock()
	e.admit(e.tenant(p.TenantID), batch, a.now)
	value := make([]map[string]any, len(batch))
	for i, d := range batch {
		value[i] = d.json(a.now, e.opts.ImportDelays, "")
	}
	e.mu.Unlock()
	a.json(http.StatusOK, map[string]any{
		"@odata.context": metadata(version, "Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentity)"),
		"value":          value,
	})
}

// uploadDevices is an upload's contained deviceIdentities collection; false when the upload is
// not there.
func (e *Emulator) uploadDevices(p Principal, version, uploadID string) (collection, bool) {
	e.mu.Lock()
	up := e.tenant(p.TenantID).uploads[uploadID]
	e.mu.Unlock()
	if up == nil {
		return collection{}, false
	}
	ctx := metadata(version, "deviceManagement/"+uploadsSegment+"('"+uploadID+"')/deviceIdentities")
	return collection{
		template: "~/singleton/navigation/key/navigation",
		list: func(a answer, r *http.Request) {
			e.pageDevices(a, r, ctx, up.devices, func(*device) bool { return true })
		},
		create: func(a answer, body []byte) { e.createDevice(a, p, body, ctx+"/$entity", up) },
		entity: func(a answer, r *http.Request, id string, below []string, body []byte) {
			switch {
			case len(below) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
				e.oneDevice(a, r, p, id, ctx+"/$entity", up)
			case len(below) == 0 && r.Method == http.MethodPatch:
				e.patchUploadDevice(a, up, id, body, ctx+"/$entity")
			default:
				noRoute(a, r, "~/singleton/navigation/key/navigation/key")
			}
		},
	}, true
}

func (e *Emulator) patchUploadDevice(a answer, up *upload, id string, body []byte, ctx string) {
	patch, ok := decodeDevice(a, body)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, found := up.devices[id]
	if !found {
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
		return
	}
	for dst, src := range map[*string]string{
		&d.SerialNumber: patch.SerialNumber, &d.ProductKey: patch.ProductKey, &d.HardwareIdentifier: patch.HardwareIdentifier,
		&d.GroupTag: patch.GroupTag, &d.AssignedUPN: patch.AssignedUPN, &d.ImportID: patch.ImportID,
	} {
		if src != "" {
			*dst = src
		}
	}
	a.json(http.StatusOK, d.json(a.now, e.opts.ImportDelays, ctx))
}

// deviceStream answers autopilotDeviceStream: the upload's devices as the portal's CSV.
func (e *Emulator) deviceStream(a answer, p Principal, version, uploadID string) {
	e.mu.Lock()
	up := e.tenant(p.TenantID).uploads[uploadID]
	var csv strings.Builder
	if up != nil {
		csv.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
		for _, d := range matching(up.devices, func(*device) bool { return true }) {
			m := d.json(a.now, e.opts.ImportDelays, "")
			fmt.Fprintf(&csv, "%s,%s,%s,%s,%s\r\n", m["serialNumber"], m["productKey"], m["hardwareIdentifier"], m["groupTag"], m["assignedUserPrincipalName"])
		}
	}
	e.mu.Unlock()
	if up == nil {
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
		return
	}
	a.json(http.StatusOK, map[string]any{"@odata.context": metadata(version, "Edm.String"), "value": csv.String()})
}

// syncState is a tenant's Autopilot sync window.
type syncState struct {
	last   time.Time // start of the last accepted sync; zero: never
	synced time.Time // the last sync Intune made on its own schedule (seeded); zero: never
}

// sync answers windowsAutopilotSettings/sync: 204, 409 while one runs, 429 within 10 minutes.
// Only beta has the action: v1.0 answers as Graph does for a segment it does not know.
func (e *Emulator) sync(a answer, r *http.Request, p Principal, version string) {
	if version != "beta" {
		a.fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'windowsAutopilotSettings'.")
		return
	}
	if r.Method != http.MethodPost {
		noRoute(a, r, "~/singleton/navigation/action")
		return
	}
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	last := t.sync.last
	since := a.now.Sub(last)
	switch {
	case !last.IsZero() && since < e.opts.SyncDuration:
		e.mu.Unlock()
		a.fail(http.StatusConflict, "Conflict", intuneMessage("An Autopilot sync is already in progress. Try again when it has finished. - Activity ID: "+a.requestID))
	case !last.IsZero() && since < syncBackoff:
		e.mu.Unlock()
		wait := syncBackoff - since
		a.w.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
		a.fail(http.StatusTooManyRequests, "TooManyRequests", intuneMessage("An Autopilot sync was requested less than 10 minutes ago. Try again later. - Activity ID: "+a.requestID))
	default:
		t.sync.last = a.now
		e.mu.Unlock()
		a.noContent()
	}
}

// autopilotSettings answers GET windowsAutopilotSettings, the tenant's sync with the Windows
// Autopilot service: in progress for SyncDuration after a sync was asked, completed from then on.
// Only beta has the singleton.
func (e *Emulator) autopilotSettings(a answer, r *http.Request, p Principal, version string) {
	if version != "beta" {
		a.fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'windowsAutopilotSettings'.")
		return
	}
	if r.Method != http.MethodGet {
		noRoute(a, r, "~/singleton")
		return
	}
	e.mu.Lock()
	s := e.tenant(p.TenantID).sync
	e.mu.Unlock()
	status, synced := "unknown", s.synced
	switch {
	case !s.last.IsZero() && a.now.Sub(s.last) < e.opts.SyncDuration:
		status = "inProgress"
	case !s.last.IsZero():
		status, synced = "completed", s.last.Add(e.opts.SyncDuration)
	case !synced.IsZero():
		status = "completed"
	}
	a.json(http.StatusOK, map[string]any{
		"@odata.context": metadata(version, "deviceManagement/windowsAutopilotSettings/$entity"),
		"@odata.type":    "#microsoft.graph.windowsAutopilotSettings", "id": "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d",
		"lastSyncDateTime": graphTime(synced), "lastManualSyncTriggerDateTime": graphTime(s.last), "syncStatus": status,
	})
}

// SeedAutopilotSync records that the tenant's devices last synced with the Windows Autopilot
// service ago, on Intune's own schedule, with no sync asked since.
func (e *Emulator) SeedAutopilotSync(tenantID string, ago time.Duration) {
	synced := e.opts.Now().Add(-ago).UTC().Truncate(time.Second)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tenant(tenantID).sync.synced = synced
}

// ImportRecord is an imported device identity as the emulator holds it: when its import arrived
// and when Intune is done with it (its final state shows from then on).
type ImportRecord struct {
	ID, SerialNumber string
	Arrived, Final   time.Time
}

// ImportRecords lists a tenant's imported device identities in arrival order, for a benchmark
// or a test to compare what a client saw with what the service did.
func (e *Emulator) ImportRecords(tenantID string) []ImportRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := matching(e.tenant(tenantID).devices, func(*device) bool { return true })
	out := make([]ImportRecord, len(all))
	for i, d := range all {
		out[i] = ImportRecord{ID: d.ID, SerialNumber: d.SerialNumber, Arrived: d.importedAt,
			Final: d.importedAt.Add(e.opts.ImportDelays.Unknown + e.opts.ImportDelays.Pending)}
	}
	return out
}
