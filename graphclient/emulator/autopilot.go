package emulator

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

const (
	autopilotSegment = "windowsAutopilotDeviceIdentities"
	autopilotType    = "#microsoft.graph.windowsAutopilotDeviceIdentity"
)

// AutopilotDevice is a registered Windows Autopilot device (windowsAutopilotDeviceIdentity) to
// preload with SeedAutopilotDevices. A zero LastContacted means the device never contacted
// Intune; an empty ID is derived from the serial number, so seeded ids do not change.
type AutopilotDevice struct {
	ID, SerialNumber, Manufacturer, Model, EnrollmentState     string
	GroupTag, PurchaseOrderIdentifier, ProductKey, DisplayName string
	UserPrincipalName, AddressableUserName                     string
	ResourceName, SkuNumber, SystemFamily                      string
	AzureActiveDirectoryDeviceID, ManagedDeviceID              string
	LastContacted                                              time.Time
	// Only beta shows the deployment profile assignment. An empty ProfileStatus is notAssigned,
	// an empty ProfileDetailedStatus none.
	ProfileStatus, ProfileDetailedStatus string
	ProfileAssigned                      time.Time
	Profile, IntendedProfile             *DeploymentProfile
}

// DeploymentProfile is a Windows Autopilot deployment profile (azureADWindowsAutopilotDeploymentProfile).
type DeploymentProfile struct {
	ID, DisplayName, Description string
}

func (p *DeploymentProfile) json() any {
	if p == nil {
		return nil
	}
	return map[string]any{
		"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "id": p.ID,
		"displayName": p.DisplayName, "description": p.Description, "language": "os-default",
		"deviceNameTemplate": "", "deviceType": "windowsPc", "enableWhiteGlove": false,
	}
}

// The demo tenant's deployment profiles.
var (
	demoUserDriven = &DeploymentProfile{ID: "3f2a9c1e-7d4b-4c8e-9a6f-1b2c3d4e5f60", DisplayName: "Contoso user-driven",
		Description: "Microsoft Entra joined, user-driven: the user signs in during setup."}
	demoSelfDeploying = &DeploymentProfile{ID: "8b7c6d5e-4f3a-4b2c-9d1e-0f1a2b3c4d5e", DisplayName: "Contoso kiosk self-deploying",
		Description: "Self-deploying for shared kiosks: no user signs in during setup."}
)

// registered is a registered device and its versions: Intune's registration is eventually
// consistent, so every change takes effect at once for writes (from) and shows in reads only
// after the emulator's ConsistencyDelay (visible).
type registered struct {
	id       string
	seq      int
	versions []registeredVersion // oldest first
}

type registeredVersion struct {
	from, visible time.Time
	props         AutopilotDevice
	deleted       bool
}

// current is the version writes see at now, or nil when the device does not exist (yet).
func (d *registered) current(now time.Time) *registeredVersion {
	return d.latest(now, func(v *registeredVersion) time.Time { return v.from })
}

// shown is the version reads see at now, or nil; older versions no read can see again are dropped.
func (d *registered) shown(now time.Time) *registeredVersion {
	for len(d.versions) > 1 && !d.versions[1].visible.After(now) {
		d.versions = d.versions[1:]
	}
	return d.latest(now, func(v *registeredVersion) time.Time { return v.visible })
}

// latest is the newest version that has come by now, by the time since says it comes; nil when
// none has, or when it is a deletion.
func (d *registered) latest(now time.Time, since func(*registeredVersion) time.Time) *registeredVersion {
	for i := len(d.versions) - 1; i >= 0; i-- {
		if v := &d.versions[i]; !since(v).After(now) {
			if v.deleted {
				return nil
			}
			return v
		}
	}
	return nil
}

// change records a new version taking effect now.
func (e *Emulator) change(d *registered, now time.Time, props AutopilotDevice, deleted bool) {
	d.versions = append(d.versions, registeredVersion{from: now, visible: now.Add(e.opts.ConsistencyDelay), props: props, deleted: deleted})
}

func (t *tenant) autopilotDevices() map[string]*registered {
	if t.registered == nil {
		t.registered = map[string]*registered{}
	}
	return t.registered
}

// registeredSerials are the serials, lower-cased, of the registrations that exist or are on
// their way (an import of it was accepted), which make Intune refuse another import with 806.
func (t *tenant) registeredSerials() map[string]bool {
	serials := map[string]bool{}
	for _, d := range t.autopilotDevices() {
		if last := d.versions[len(d.versions)-1]; !last.deleted && last.props.SerialNumber != "" {
			serials[strings.ToLower(last.props.SerialNumber)] = true
		}
	}
	return serials
}

// registerImported turns an imported device into a registered one from the moment its import
// completes. The caller holds e.mu.
func (e *Emulator) registerImported(t *tenant, d *device, now time.Time) {
	made, model := modelFor(d.SerialNumber)
	from := now.Add(e.opts.ImportDelays.Unknown + e.opts.ImportDelays.Pending)
	t.seq++
	r := &registered{id: d.registrationID, seq: t.seq}
	r.versions = []registeredVersion{{from: from, visible: from.Add(e.opts.ConsistencyDelay), props: AutopilotDevice{
		ID: d.registrationID, SerialNumber: d.SerialNumber, ProductKey: d.ProductKey, GroupTag: d.GroupTag,
		UserPrincipalName: d.AssignedUPN, Manufacturer: made, Model: model, EnrollmentState: "notContacted",
	}}}
	t.autopilotDevices()[r.id] = r
}

// demoModels are what Intune reads from real hardware hashes of common business devices.
var demoModels = [][2]string{
	{"HP", "HP EliteBook 840 14 inch G10 Notebook PC"},
	{"Dell Inc.", "Latitude 5440"},
	{"LENOVO", "21HD003QUS"},
	{"Microsoft Corporation", "Surface Laptop 5"},
	{"HP", "HP Elite Mini 800 G9 Desktop PC"},
	{"Dell Inc.", "OptiPlex 7010"},
}

// modelFor picks an imported device's manufacturer and model from its serial number, the same
// every time: the emulator's hashes carry no real hardware details.
func modelFor(serial string) (string, string) {
	sum := sha1.Sum([]byte(strings.ToUpper(serial)))
	m := demoModels[int(sum[0])%len(demoModels)]
	return m[0], m[1]
}

// AutopilotDeviceID is the id SeedAutopilotDevices gives a device seeded without one.
func AutopilotDeviceID(serial string) string { return idFromSerial(serial) }

// idFromSerial derives a stable GUID from a serial number, so seeded devices keep their ids.
func idFromSerial(serial string) string {
	b := sha1.Sum([]byte("autopilot-device:" + serial))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// DemoAutopilotDevices is a realistic tenant: common business models, every enrollment state,
// some with a user and a group tag, contact times relative to now.
func DemoAutopilotDevices(now time.Time) []AutopilotDevice {
	ago := func(d time.Duration) time.Time { return now.Add(-d).UTC().Truncate(time.Second) }
	day := 24 * time.Hour
	enrolled := func(serial, made, model, tag, upn, name, user string, last time.Duration) AutopilotDevice {
		return AutopilotDevice{SerialNumber: serial, Manufacturer: made, Model: model, EnrollmentState: "enrolled", GroupTag: tag,
			UserPrincipalName: upn, AddressableUserName: user, DisplayName: name, LastContacted: ago(last),
			AzureActiveDirectoryDeviceID: idFromSerial("entra:" + serial), ManagedDeviceID: idFromSerial("intune:" + serial)}
	}
	waiting := func(serial, made, model, tag, upn, user string) AutopilotDevice {
		return AutopilotDevice{SerialNumber: serial, Manufacturer: made, Model: model, EnrollmentState: "notContacted", GroupTag: tag,
			UserPrincipalName: upn, AddressableUserName: user}
	}
	devices := []AutopilotDevice{
		enrolled("5CG3281JQZ", "HP", "HP EliteBook 840 14 inch G10 Notebook PC", "Sales", "AdeleV@contoso.example", "CONTOSO-5CG3281", "Adele Vance", 2*time.Hour),
		enrolled("5CG3281JR0", "HP", "HP EliteBook 840 14 inch G10 Notebook PC", "Sales", "", "CONTOSO-5CG3282", "", 26*time.Hour),
		enrolled("7HX2LM3", "Dell Inc.", "Latitude 5440", "Engineering", "IsaiahL@contoso.example", "CONTOSO-7HX2LM3", "Isaiah Langer", 40*time.Minute),
		enrolled("9KD4QR3", "Dell Inc.", "Latitude 7440", "Engineering", "", "CONTOSO-9KD4QR3", "", 3*day),
		enrolled("PF4BX7QK", "LENOVO", "21HD003QUS", "", "MeganB@contoso.example", "CONTOSO-PF4BX7QK", "Megan Bowen", 5*time.Hour),
		enrolled("028417694553", "Microsoft Corporation", "Surface Laptop 5", "Executives", "LeeG@contoso.example", "CONTOSO-EXEC-01", "Lee Gu", 9*day),
		enrolled("CZC4129XKP", "HP", "HP Elite Mini 800 G9 Desktop PC", "Kiosk", "", "KIOSK-LOBBY-01", "", 15*time.Minute),
		enrolled("CZC4129XKQ", "HP", "HP Elite Mini 800 G9 Desktop PC", "Kiosk", "", "KIOSK-LOBBY-02", "", 20*time.Minute),
		enrolled("4BW8YT3", "Dell Inc.", "OptiPlex 7010", "Frontline", "", "CONTOSO-4BW8YT3", "", 31*day),
		waiting("5CG4102MNB", "HP", "HP ProBook 450 15.6 inch G10 Notebook PC", "Sales", "", ""),
		waiting("5CG4102MNC", "HP", "HP ProBook 450 15.6 inch G10 Notebook PC", "Sales", "NestorW@contoso.example", "Nestor Wilke"),
		waiting("PF4CK2LM", "LENOVO", "21HD003QUS", "Engineering", "", ""),
		waiting("033905294357", "Microsoft Corporation", "Surface Pro 9", "", "", ""),
		waiting("2JT6WX3", "Dell Inc.", "Latitude 5440", "", "", ""),
		{SerialNumber: "5CG3281JR7", Manufacturer: "HP", Model: "HP EliteBook 840 14 inch G10 Notebook PC", EnrollmentState: "failed", GroupTag: "Sales",
			UserPrincipalName: "AlexW@contoso.example", AddressableUserName: "Alex Wilber", LastContacted: ago(4 * day), PurchaseOrderIdentifier: "PO-2026-0142"},
		{SerialNumber: "8NR5PQ3", Manufacturer: "Dell Inc.", Model: "Latitude 7440", EnrollmentState: "pendingReset", GroupTag: "Engineering",
			DisplayName: "CONTOSO-8NR5PQ3", LastContacted: ago(11 * time.Hour), AzureActiveDirectoryDeviceID: idFromSerial("entra:8NR5PQ3"), ManagedDeviceID: idFromSerial("intune:8NR5PQ3")},
		{SerialNumber: "PF3ZQ8NA", Manufacturer: "LENOVO", Model: "20XW0031US", EnrollmentState: "unknown", PurchaseOrderIdentifier: "PO-2025-0917"},
	}
	for i := range devices {
		d := &devices[i]
		d.ID = idFromSerial(d.SerialNumber)
		if d.EnrollmentState == "enrolled" || d.EnrollmentState == "pendingReset" {
			d.Profile = demoUserDriven
			if d.GroupTag == "Kiosk" {
				d.Profile = demoSelfDeploying
			}
			d.IntendedProfile, d.ProfileStatus, d.ProfileAssigned = d.Profile, "assignedInSync", ago(45*day)
		}
	}
	// The devices not set up yet show every other state of their profile assignment.
	profiles := map[string]func(d *AutopilotDevice){
		"5CG4102MNB": func(d *AutopilotDevice) {
			d.ProfileStatus, d.Profile, d.IntendedProfile, d.ProfileAssigned = "assignedInSync", demoUserDriven, demoUserDriven, ago(2*day)
		},
		"5CG4102MNC": func(d *AutopilotDevice) {
			d.ProfileStatus, d.Profile, d.IntendedProfile, d.ProfileAssigned = "assignedOutOfSync", demoUserDriven, demoUserDriven, ago(20*time.Minute)
		},
		"PF4CK2LM": func(d *AutopilotDevice) { d.ProfileStatus, d.IntendedProfile = "pending", demoUserDriven },
		"5CG3281JR7": func(d *AutopilotDevice) {
			d.ProfileStatus, d.ProfileDetailedStatus, d.IntendedProfile = "failed", "hardwareRequirementsNotMet", demoSelfDeploying
		},
	}
	for i := range devices {
		if set := profiles[devices[i].SerialNumber]; set != nil {
			set(&devices[i])
		}
	}
	return devices
}

// SeedAutopilotDevices preloads registered devices for a tenant, visible at once; with none
// given it preloads DemoAutopilotDevices.
func (e *Emulator) SeedAutopilotDevices(tenantID string, devices ...AutopilotDevice) {
	if len(devices) == 0 {
		devices = DemoAutopilotDevices(e.opts.Now())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	for _, d := range devices {
		if d.ID == "" {
			d.ID = idFromSerial(d.SerialNumber)
		}
		if d.EnrollmentState == "" {
			d.EnrollmentState = "notContacted"
		}
		t.seq++
		t.autopilotDevices()[d.ID] = &registered{id: d.ID, seq: t.seq, versions: []registeredVersion{{props: d}}}
	}
}

// graphTime writes a DateTimeOffset as Intune does, to 7 fractional digits at most; the zero time
// is Intune's "never".
func graphTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Truncate(100 * time.Nanosecond).Format(time.RFC3339Nano)
}

// json is the device as Graph writes it in version; beta adds its own properties.
func (d AutopilotDevice) json(ctx, version string) map[string]any {
	m := map[string]any{
		"@odata.type": autopilotType, "id": d.ID, "groupTag": d.GroupTag, "purchaseOrderIdentifier": d.PurchaseOrderIdentifier,
		"serialNumber": d.SerialNumber, "productKey": d.ProductKey, "manufacturer": d.Manufacturer, "model": d.Model,
		"enrollmentState": d.EnrollmentState, "lastContactedDateTime": graphTime(d.LastContacted),
		"addressableUserName": d.AddressableUserName, "userPrincipalName": d.UserPrincipalName, "resourceName": d.ResourceName,
		"skuNumber": d.SkuNumber, "systemFamily": d.SystemFamily, "azureActiveDirectoryDeviceId": d.AzureActiveDirectoryDeviceID,
		"managedDeviceId": d.ManagedDeviceID, "displayName": d.DisplayName,
	}
	if version == "beta" {
		status, detailed := d.ProfileStatus, d.ProfileDetailedStatus
		if status == "" {
			status = "notAssigned"
		}
		if detailed == "" {
			detailed = "none"
		}
		m["deploymentProfileAssignmentStatus"], m["deploymentProfileAssignmentDetailedStatus"] = status, detailed
		m["deploymentProfileAssignedDateTime"] = graphTime(d.ProfileAssigned)
		m["azureAdDeviceId"] = d.AzureActiveDirectoryDeviceID
		m["deviceAccountUpn"], m["deviceAccountPassword"], m["deviceFriendlyName"] = "", nil, ""
		m["remediationState"], m["remediationStateLastModifiedDateTime"] = "unknown", graphTime(time.Time{})
		m["userlessEnrollmentStatus"] = "unknown"
	}
	if ctx != "" {
		m["@odata.context"] = ctx
	}
	return m
}

// expandable are the navigation properties of a registered device, in Graph beta only.
var expandable = map[string]func(AutopilotDevice) any{
	"deploymentProfile":         func(d AutopilotDevice) any { return d.Profile.json() },
	"intendedDeploymentProfile": func(d AutopilotDevice) any { return d.IntendedProfile.json() },
}

// expansions reads $expand: each name must be a navigation property of the device in version,
// as Graph refuses any other with 400.
func expansions(a answer, r *http.Request, version string) ([]string, bool) {
	raw := r.URL.Query().Get("$expand")
	if raw == "" {
		return nil, true
	}
	names := strings.Split(raw, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
		if _, ok := expandable[names[i]]; !ok || version != "beta" {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.windowsAutopilotDeviceIdentity'.", truncate(names[i], 80)))
			return nil, false
		}
	}
	return names, true
}

// autopilot is the collection of registered Autopilot devices. Devices are registered by
// importing them: the collection takes no POST.
func (e *Emulator) autopilot(p Principal, version string) collection {
	ctxBase := metadata(version, "deviceManagement/"+autopilotSegment)
	return collection{
		template: "~/singleton/navigation",
		list:     func(a answer, r *http.Request) { e.listAutopilot(a, r, p, version, ctxBase) },
		entity: func(a answer, r *http.Request, id string, below []string, body []byte) {
			switch {
			case len(below) == 0 && r.Method == http.MethodGet:
				e.getAutopilot(a, r, p, id, version, ctxBase+"/$entity")
			case len(below) == 0 && r.Method == http.MethodDelete:
				e.deleteAutopilot(a, p, id)
			case len(below) == 0:
				noRoute(a, r, "~/singleton/navigation/key")
			case len(below) == 1 && r.Method == http.MethodPost:
				action := strings.TrimPrefix(below[0], "microsoft.graph.")
				switch action {
				case "updateDeviceProperties", "assignUserToDevice", "unassignUserFromDevice":
					e.autopilotAction(a, p, id, action, body)
				default:
					a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", truncate(below[0], 80)))
				}
			default:
				noRoute(a, r, "~/singleton/navigation/key/action")
			}
		},
	}
}

// containsSerialRE is the one filter the emulator answers on registered devices, the one in wide
// use: contains(serialNumber,'…') with a quote inside the literal doubled.
var containsSerialRE = regexp.MustCompile(`^contains\(serialNumber,\s*'((?:[^']|'')*)'\)$`)

// listAutopilot answers the collection. Which other $filter and $orderby forms Intune accepts is
// unverified, so the emulator refuses all of them, in Intune's nested message, and the desk never
// comes to depend on one.
func (e *Emulator) listAutopilot(a answer, r *http.Request, p Principal, version, ctxBase string) {
	q := r.URL.Query()
	match := func(AutopilotDevice) bool { return true }
	if f := q.Get("$filter"); f != "" {
		m := containsSerialRE.FindStringSubmatch(f)
		if m == nil {
			a.fail(http.StatusBadRequest, "BadRequest", intuneMessage("The filter is not supported for windowsAutopilotDeviceIdentities; filter by contains(serialNumber,'…') only. - Activity ID: "+a.requestID))
			return
		}
		want := strings.ToUpper(strings.ReplaceAll(m[1], "''", "'"))
		match = func(d AutopilotDevice) bool { return strings.Contains(strings.ToUpper(d.SerialNumber), want) }
	}
	for _, option := range []string{"$orderby", "$search"} {
		if q.Has(option) {
			a.fail(http.StatusBadRequest, "BadRequest", intuneMessage("The query option "+option+" is not supported for windowsAutopilotDeviceIdentities. - Activity ID: "+a.requestID))
			return
		}
	}
	e.mu.Lock()
	var shown []*registered
	views := map[*registered]AutopilotDevice{}
	for _, d := range e.tenant(p.TenantID).autopilotDevices() {
		if v := d.shown(a.now); v != nil && match(v.props) {
			shown = append(shown, d)
			views[d] = v.props
		}
	}
	e.mu.Unlock()
	sort.Slice(shown, func(i, j int) bool { return shown[i].seq < shown[j].seq })
	items := make([]map[string]any, len(shown))
	for i, d := range shown {
		items[i] = views[d].json("", version)
	}
	e.page(a, r, ctxBase, len(items), func(start, end int) []map[string]any { return items[start:end] })
}

// lockCurrent takes the emulator's lock and finds a registered device's current version; the
// caller then holds the lock. A device unknown or deleted is answered 404 and the lock released.
func (e *Emulator) lockCurrent(a answer, p Principal, id string) (*registered, *registeredVersion) {
	e.mu.Lock()
	d := e.tenant(p.TenantID).autopilotDevices()[id]
	var v *registeredVersion
	if d != nil {
		v = d.current(a.now)
	}
	if v == nil {
		e.mu.Unlock()
		notFound(a)
	}
	return d, v
}

func notFound(a answer) { a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.") }

func (e *Emulator) getAutopilot(a answer, r *http.Request, p Principal, id, version, ctx string) {
	expand, ok := expansions(a, r, version)
	if !ok {
		return
	}
	e.mu.Lock()
	var v *registeredVersion
	if d := e.tenant(p.TenantID).autopilotDevices()[id]; d != nil {
		v = d.shown(a.now)
	}
	var props AutopilotDevice
	if v != nil {
		props = v.props
	}
	e.mu.Unlock()
	if v == nil {
		notFound(a)
		return
	}
	if len(expand) > 0 {
		shape := make([]string, len(expand))
		for i, name := range expand {
			shape[i] = name + "()"
		}
		ctx = strings.TrimSuffix(ctx, "/$entity") + "(" + strings.Join(shape, ",") + ")/$entity"
	}
	m := props.json(ctx, version)
	for _, name := range expand {
		m[name] = expandable[name](props)
	}
	a.json(http.StatusOK, m)
}

func (e *Emulator) deleteAutopilot(a answer, p Principal, id string) {
	d, v := e.lockCurrent(a, p, id)
	if v == nil {
		return
	}
	// Whether Intune refuses to delete the registration of a device that is still enrolled is
	// unverified; the emulator takes the defensive view and refuses, so the desk must explain a
	// refused delete and never assume one worked.
	if (v.props.EnrollmentState == "enrolled" || v.props.EnrollmentState == "pendingReset") && v.props.ManagedDeviceID != "" {
		managed := v.props.ManagedDeviceID
		e.mu.Unlock()
		a.fail(http.StatusBadRequest, "BadRequest", intuneMessage("The device is enrolled in Intune (managed device "+managed+
			"), so its Autopilot registration cannot be deleted. Delete the device from Intune first, then delete the registration. - Activity ID: "+a.requestID))
		return
	}
	e.change(d, a.now, v.props, true)
	e.mu.Unlock()
	a.noContent()
}

// actionParameters are the parameters each action takes.
var actionParameters = map[string][]string{
	"updateDeviceProperties": {"userPrincipalName", "addressableUserName", "groupTag", "displayName"},
	"assignUserToDevice":     {"userPrincipalName", "addressableUserName"},
	"unassignUserFromDevice": nil,
}

// deviceNameRE is the device name rule of Intune's admin center: letters, digits and hyphens, or
// the %SERIAL% and %RAND:n% macros, at most 15 characters, not digits only. Whether Graph itself
// enforces it is unverified; the emulator refuses what the admin center refuses.
var deviceNameRE = regexp.MustCompile(`^(?:[A-Za-z0-9-]|%SERIAL%|%RAND:[0-9]+%)+$`)

func validDeviceName(name string) bool {
	if name == "" { // clears the name
		return true
	}
	if strings.Contains(name, "%") {
		return deviceNameRE.MatchString(name) && len(name) <= 63
	}
	return len(name) <= 15 && deviceNameRE.MatchString(name) && strings.Trim(name, "0123456789") != ""
}

// autopilotAction answers updateDeviceProperties, assignUserToDevice and
// unassignUserFromDevice: 204 once the change is accepted (reads see it after the delay).
func (e *Emulator) autopilotAction(a answer, p Principal, id, action string, body []byte) {
	params := map[string]string{}
	if len(bytes.TrimSpace(body)) > 0 {
		var raw map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
			return
		}
		for k, v := range raw {
			allowed := false
			for _, name := range actionParameters[action] {
				allowed = allowed || k == name
			}
			if !allowed {
				a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The parameter '%s' in the request payload is not a valid parameter for the operation '%s'.", truncate(k, 80), action))
				return
			}
			if string(v) == "null" {
				params[k] = ""
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert a primitive value to the expected type 'Edm.String' for the parameter '%s'.", k))
				return
			}
			if len(s) > 1024 {
				a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The value of the parameter '%s' is too long.", k))
				return
			}
			params[k] = s
		}
	}
	upn, hasUPN := params["userPrincipalName"]
	switch {
	case action == "assignUserToDevice" && upn == "":
		a.fail(http.StatusBadRequest, "BadRequest", "The parameter 'userPrincipalName' is required for the operation 'assignUserToDevice' and cannot be empty.")
		return
	case hasUPN && upn != "" && !strings.Contains(upn, "@"):
		a.fail(http.StatusBadRequest, "BadRequest", intuneMessage("The user principal name '"+truncate(upn, 80)+"' is not valid. - Activity ID: "+a.requestID))
		return
	}
	if name, ok := params["displayName"]; ok && !validDeviceName(name) {
		a.fail(http.StatusBadRequest, "BadRequest", intuneMessage("The device name '"+truncate(name, 80)+"' is not valid: use up to 15 letters, digits and hyphens, not digits only, or the %SERIAL% and %RAND:x% macros. - Activity ID: "+a.requestID))
		return
	}
	d, v := e.lockCurrent(a, p, id)
	if v == nil {
		return
	}
	next := v.props
	switch action {
	case "unassignUserFromDevice":
		next.UserPrincipalName, next.AddressableUserName = "", ""
	default:
		for k, val := range params {
			switch k {
			case "userPrincipalName":
				next.UserPrincipalName = val
			case "addressableUserName":
				next.AddressableUserName = val
			case "groupTag":
				next.GroupTag = val
			case "displayName":
				next.DisplayName = val
			}
		}
	}
	e.change(d, a.now, next, false)
	e.mu.Unlock()
	a.noContent()
}
