package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

const devicesSegment = "importedWindowsAutopilotDeviceIdentities"

// ImportDelays is how long an imported device stays unknown, then pending, before its final state.
type ImportDelays struct{ Unknown, Pending time.Duration }

// device is an imported Autopilot device identity and the outcome its import will reach.
type device struct {
	ID, SerialNumber, ProductKey, GroupTag, AssignedUser, ImportID string
	Hash                                                           []byte
	createdAt                                                      time.Time
	finalStatus                                                    string // complete or error
	errorCode                                                      int
	errorName                                                      string
	registrationID                                                 string
	seq                                                            int
}

func (e *Emulator) deviceState(d *device, now time.Time) map[string]any {
	status, code, name, reg := "unknown", 0, "", ""
	age := now.Sub(d.createdAt)
	switch {
	case age < e.opts.ImportDelays.Unknown:
	case age < e.opts.ImportDelays.Unknown+e.opts.ImportDelays.Pending:
		status = "pending"
	default:
		status, code, name, reg = d.finalStatus, d.errorCode, d.errorName, d.registrationID
	}
	return map[string]any{"deviceImportStatus": status, "deviceRegistrationId": reg, "deviceErrorCode": code, "deviceErrorName": name}
}

func (e *Emulator) deviceJSON(d *device, now time.Time) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.importedWindowsAutopilotDeviceIdentity", "id": d.ID,
		"orderIdentifier": "", "serialNumber": d.SerialNumber, "productKey": d.ProductKey, "importId": d.ImportID,
		"hardwareIdentifier": base64.StdEncoding.EncodeToString(d.Hash), "groupTag": d.GroupTag,
		"assignedUserPrincipalName": d.AssignedUser, "state": e.deviceState(d, now),
	}
}

// registered reports whether a serial is already registered in the tenant (a completed import).
func (t *tenant) registered(serial string, now time.Time, e *Emulator) bool {
	for _, d := range t.devices {
		if strings.EqualFold(d.SerialNumber, serial) && d.finalStatus == "complete" && d.errorCode == 0 {
			return true
		}
	}
	return false
}

var edmBinaryRE = regexp.MustCompile(`^[A-Za-z0-9+/]*={0,2}$`)

type deviceInput struct {
	SerialNumber              string `json:"serialNumber"`
	ProductKey                string `json:"productKey"`
	HardwareIdentifier        string `json:"hardwareIdentifier"`
	GroupTag                  string `json:"groupTag"`
	AssignedUserPrincipalName string `json:"assignedUserPrincipalName"`
	ODataType                 string `json:"@odata.type"`
	OrderIdentifier           string `json:"orderIdentifier"`
	ImportID                  string `json:"importId"`
	ID                        string `json:"id"`
}

func (e *Emulator) devices(a answer, r *http.Request, p Principal, version string, segs []string, body []byte) {
	if !authorized(a, r, p) {
		return
	}
	ctxBase := "https://graph.microsoft.com/" + version + "/$metadata#deviceManagement/" + devicesSegment
	switch {
	case len(segs) == 0 && r.Method == http.MethodGet:
		e.listDevices(a, r, p, ctxBase)
	case len(segs) == 1 && segs[0] == "import" && r.Method == http.MethodPost:
		e.importDevices(a, p, body, ctxBase)
	case len(segs) == 1 && guidRE.MatchString(segs[0]) && r.Method == http.MethodGet:
		e.mu.Lock()
		d := e.tenant(p.TenantID).devices[segs[0]]
		var out map[string]any
		if d != nil {
			out = e.deviceJSON(d, a.now)
		}
		e.mu.Unlock()
		if out == nil {
			a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
			return
		}
		out["@odata.context"] = ctxBase + "/$entity"
		a.json(http.StatusOK, out)
	case len(segs) == 1 && guidRE.MatchString(segs[0]) && r.Method == http.MethodDelete:
		e.mu.Lock()
		t := e.tenant(p.TenantID)
		_, ok := t.devices[segs[0]]
		delete(t.devices, segs[0])
		e.mu.Unlock()
		if !ok {
			a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
			return
		}
		a.noContent()
	default:
		a.fail(http.StatusBadRequest, "No method match route template", "No OData route exists that match template ~/singleton/navigation with http verb "+r.Method+" for request /DeviceEnrollmentFE/StatelessDeviceEnrollmentFEService/deviceManagement/"+devicesSegment+".")
	}
}

var serialFilterRE = regexp.MustCompile(`^(?:serialNumber eq '([^']*)'|contains\(serialNumber,\s*'([^']*)'\))$`)

func (e *Emulator) listDevices(a answer, r *http.Request, p Principal, ctxBase string) {
	q := r.URL.Query()
	eq, contains := "", ""
	if f := q.Get("$filter"); f != "" {
		m := serialFilterRE.FindStringSubmatch(f)
		if m == nil {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid filter clause")
			return
		}
		eq, contains = m[1], m[2]
	}
	e.mu.Lock()
	var all []*device
	for _, d := range e.tenant(p.TenantID).devices {
		if eq != "" && !strings.EqualFold(d.SerialNumber, eq) || contains != "" && !strings.Contains(strings.ToLower(d.SerialNumber), strings.ToLower(contains)) {
			continue
		}
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq })
	value := []map[string]any{}
	for _, d := range all {
		value = append(value, e.deviceJSON(d, a.now))
	}
	e.mu.Unlock()
	a.json(http.StatusOK, map[string]any{"@odata.context": ctxBase, "value": value})
}

func (e *Emulator) importDevices(a answer, p Principal, body []byte, ctxBase string) {
	var in struct {
		Devices []json.RawMessage `json:"importedWindowsAutopilotDeviceIdentities"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
		return
	}
	if len(in.Devices) == 0 {
		a.fail(http.StatusBadRequest, "BadRequest", "The parameter 'importedWindowsAutopilotDeviceIdentities' is required.")
		return
	}
	if len(in.Devices) > 500 {
		a.fail(http.StatusBadRequest, "BadRequest", "At most 500 devices can be imported at once.")
		return
	}
	inputs := make([]deviceInput, len(in.Devices))
	for i, raw := range in.Devices {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&inputs[i]); err != nil {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid device identity: "+truncate(err.Error(), 120))
			return
		}
		h := inputs[i].HardwareIdentifier
		if len(h)%4 != 0 || !edmBinaryRE.MatchString(h) {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Binary'.", truncateHash(h)))
			return
		}
	}
	importID := e.opts.NewID()
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	seenHash := map[string]bool{}
	var out []map[string]any
	for _, in := range inputs {
		hash, _ := base64.StdEncoding.DecodeString(in.HardwareIdentifier)
		t.seq++
		d := &device{ID: e.opts.NewID(), SerialNumber: in.SerialNumber, ProductKey: in.ProductKey, GroupTag: in.GroupTag,
			AssignedUser: in.AssignedUserPrincipalName, ImportID: importID, Hash: hash, createdAt: a.now, seq: t.seq, finalStatus: "complete"}
		switch {
		case strings.TrimSpace(in.SerialNumber) == "" && strings.TrimSpace(in.ProductKey) == "":
			d.finalStatus, d.errorCode, d.errorName = "error", 803, "MissingZtdSerialNumberAndProductKey"
		case len(hash) < 64:
			d.finalStatus, d.errorCode, d.errorName = "error", 802, "InvalidZtdHardwareHash"
		case seenHash[string(hash)]:
			d.finalStatus, d.errorName = "error", "ZtdDeviceDuplicated"
		case e.otherTenant(in.SerialNumber):
			d.finalStatus, d.errorCode, d.errorName = "error", 808, "ZtdDeviceAssignedToOtherTenant"
		case t.registered(in.SerialNumber, a.now, e):
			d.finalStatus, d.errorCode, d.errorName = "error", 806, "ZtdDeviceAlreadyAssigned"
		default:
			d.registrationID = e.opts.NewID()
		}
		seenHash[string(hash)] = true
		t.devices[d.ID] = d
		out = append(out, e.deviceJSON(d, a.now))
	}
	e.mu.Unlock()
	a.json(http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentity)", "value": out})
}

func (e *Emulator) otherTenant(serial string) bool {
	for _, s := range e.opts.OtherTenantSerials {
		if strings.EqualFold(s, serial) {
			return true
		}
	}
	return false
}

// truncateHash keeps a hash out of error messages: its ends only.
func truncateHash(h string) string {
	if len(h) <= 12 {
		return h
	}
	return h[:4] + "…" + h[len(h)-4:]
}

// sync answers POST windowsAutopilotSettings/sync: 204, 409 while one runs, 429 within 10 minutes.
func (e *Emulator) sync(a answer, r *http.Request, p Principal) {
	if r.Method != http.MethodPost {
		a.fail(http.StatusBadRequest, "No method match route template", "No OData route exists that match template with http verb "+r.Method+".")
		return
	}
	if !hasScope(p, writeScope) {
		forbidden(a, writeScope)
		return
	}
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	last := t.lastSync
	running := !last.IsZero() && a.now.Sub(last) < e.opts.SyncDuration
	recent := !last.IsZero() && a.now.Sub(last) < 10*time.Minute
	if !recent {
		t.lastSync = a.now
	}
	e.mu.Unlock()
	switch {
	case running:
		a.fail(http.StatusConflict, "Conflict", "An Autopilot sync is already in progress.")
	case recent:
		a.w.Header().Set("Retry-After", strconv.Itoa(int(last.Add(10*time.Minute).Sub(a.now).Seconds()+0.999)))
		a.fail(http.StatusTooManyRequests, "TooManyRequests", "Autopilot sync can run once every 10 minutes.")
	default:
		a.noContent()
	}
}

// uploadDevices serves an upload's contained deviceIdentities collection.
func (e *Emulator) uploadDevices(a answer, r *http.Request, p Principal, uploadID string, rest []string, body []byte, ctxBase string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(p.TenantID)
	u := t.uploads[uploadID]
	if u == nil {
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
		return
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		value := []map[string]any{}
		for _, id := range u.devices {
			if d := t.devices[id]; d != nil {
				value = append(value, e.deviceJSON(d, a.now))
			}
		}
		a.json(http.StatusOK, map[string]any{"@odata.context": ctxBase + "('" + uploadID + "')/deviceIdentities", "value": value})
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in deviceInput
		if err := json.Unmarshal(body, &in); err != nil {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
			return
		}
		hash, err := base64.StdEncoding.DecodeString(in.HardwareIdentifier)
		if err != nil {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Binary'.", truncateHash(in.HardwareIdentifier)))
			return
		}
		t.seq++
		d := &device{ID: e.opts.NewID(), SerialNumber: in.SerialNumber, ProductKey: in.ProductKey, GroupTag: in.GroupTag,
			AssignedUser: in.AssignedUserPrincipalName, ImportID: uploadID, Hash: hash, createdAt: a.now, seq: t.seq, finalStatus: "complete", registrationID: e.opts.NewID()}
		t.devices[d.ID] = d
		u.devices = append(u.devices, d.ID)
		out := e.deviceJSON(d, a.now)
		out["@odata.context"] = ctxBase + "('" + uploadID + "')/deviceIdentities/$entity"
		a.json(http.StatusCreated, out)
	case len(rest) == 1 && guidRE.MatchString(rest[0]) && r.Method == http.MethodDelete:
		for i, id := range u.devices {
			if id == rest[0] {
				u.devices = append(u.devices[:i], u.devices[i+1:]...)
				delete(t.devices, id)
				a.noContent()
				return
			}
		}
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
	default:
		a.fail(http.StatusBadRequest, "No method match route template", "No OData route exists that match template ~/singleton/navigation/key/navigation with http verb "+r.Method+".")
	}
}
