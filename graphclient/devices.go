package graphclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/guid"
)

const devicesPath = "/deviceManagement/importedWindowsAutopilotDeviceIdentities"

// DeviceIdentity is an importedWindowsAutopilotDeviceIdentity. HardwareIdentifier is the raw hash;
// JSON carries it as padded standard base64 (Edm.Binary).
type DeviceIdentity struct {
	ID                        string            `json:"id,omitempty"`
	SerialNumber              string            `json:"serialNumber"`
	ProductKey                string            `json:"productKey,omitempty"`
	HardwareIdentifier        []byte            `json:"hardwareIdentifier,omitempty"`
	GroupTag                  string            `json:"groupTag,omitempty"`
	AssignedUserPrincipalName string            `json:"assignedUserPrincipalName,omitempty"`
	ImportID                  string            `json:"importId,omitempty"`
	State                     DeviceImportState `json:"state"`
}

// DeviceImportState is where a device's import stands. The schema makes the state and each of its
// members nullable: a null state or status decodes as "" and is read as unknown, never as a failure.
type DeviceImportState struct {
	DeviceImportStatus   string `json:"deviceImportStatus"`
	DeviceRegistrationID string `json:"deviceRegistrationId"`
	DeviceErrorCode      int    `json:"deviceErrorCode"`
	DeviceErrorName      string `json:"deviceErrorName"`
}

// The members of importedWindowsAutopilotDeviceIdentityImportStatus (deviceImportStatus), as
// Graph spells them.
const (
	ImportUnknown  = "unknown"
	ImportPending  = "pending"
	ImportPartial  = "partial"
	ImportComplete = "complete"
	ImportError    = "error"
)

// DeviceImportStatuses lists the members of deviceImportStatus in the metadata's order.
var DeviceImportStatuses = [...]string{ImportUnknown, ImportPending, ImportPartial, ImportComplete, ImportError}

// Final reports whether the import of this device has ended: complete, partial or error.
func (s DeviceImportState) Final() bool {
	switch s.DeviceImportStatus {
	case ImportComplete, ImportPartial, ImportError:
		return true
	}
	return false
}

// Status is deviceImportStatus with a missing (null) value read as "unknown".
func (s DeviceImportState) Status() string {
	if s.DeviceImportStatus == "" {
		return ImportUnknown
	}
	return s.DeviceImportStatus
}

// MaxImportDevices is the most devices one import action takes.
const MaxImportDevices = 500

// MaxImportRequestBytes bounds the body of one import action. Microsoft Graph refuses requests
// over 4 MB with 413 (docs/importing-devices.md names the source); a batch is cut at half that,
// which also keeps Graph's answer, which repeats every hash, well inside MaxBody.
const MaxImportRequestBytes = 2 << 20

// ImportRequestOverhead is what the import body costs besides its devices (wrapper and indentation).
const ImportRequestOverhead = 128

// ImportEntryBytes is what one device adds to an import body, as ImportDeviceIdentities encodes
// it, separator included; a batch whose entries and ImportRequestOverhead fit in
// MaxImportRequestBytes is accepted.
func ImportEntryBytes(d DeviceIdentity) int {
	b, _ := json.MarshalIndent(importEntry(d), "    ", "  ")
	return len(b) + 6 // ",\n    " before each entry
}

// ImportEntryBytesWithHash is ImportEntryBytes for d carrying a hash of hashLen bytes, which it
// need not hold: a hash's encoded length depends on its length alone.
func ImportEntryBytesWithHash(d DeviceIdentity, hashLen int) int {
	d.HardwareIdentifier = nil
	return ImportEntryBytes(d) - len("null") + base64.StdEncoding.EncodedLen(hashLen) + len(`""`)
}

func importEntry(d DeviceIdentity) deviceInput {
	return deviceInput{ODataType: "#microsoft.graph.importedWindowsAutopilotDeviceIdentity", SerialNumber: d.SerialNumber, ProductKey: d.ProductKey,
		HardwareIdentifier: d.HardwareIdentifier, GroupTag: d.GroupTag, AssignedUserPrincipalName: d.AssignedUserPrincipalName}
}

// deviceInput is what the import action takes: only the fields that matter on input.
type deviceInput struct {
	ODataType                 string `json:"@odata.type"`
	SerialNumber              string `json:"serialNumber"`
	ProductKey                string `json:"productKey,omitempty"`
	HardwareIdentifier        []byte `json:"hardwareIdentifier"`
	GroupTag                  string `json:"groupTag,omitempty"`
	AssignedUserPrincipalName string `json:"assignedUserPrincipalName,omitempty"`
}

type deviceList struct {
	Value    []DeviceIdentity `json:"value"`
	NextLink string           `json:"@odata.nextLink"`
}

// ImportDeviceIdentities runs the import action for at most 500 devices in at most
// MaxImportRequestBytes. A throttled import is retried (Graph did not run it); one that timed out
// is reported as outcome unknown.
func (c *Client) ImportDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, devices []DeviceIdentity) ([]DeviceIdentity, *Exchange, error) {
	if len(devices) == 0 || len(devices) > MaxImportDevices {
		return nil, nil, &Error{Kind: KindInvalidInput, Message: "An import takes between 1 and 500 devices."}
	}
	in := make([]deviceInput, len(devices))
	for i, d := range devices {
		in[i] = importEntry(d)
	}
	body := jsonBody(map[string]any{"importedWindowsAutopilotDeviceIdentities": in})
	if len(body) > MaxImportRequestBytes {
		return nil, nil, &Error{Kind: KindInvalidInput, Message: fmt.Sprintf("These %d devices make a request of %d bytes, more than the %d bytes one import may send; nothing was sent.", len(devices), len(body), MaxImportRequestBytes)}
	}
	var out deviceList
	ex, err := c.do(ctx, ts, call{op: "import-devices", method: http.MethodPost, url: c.base + devicesPath + "/import", body: body, sensitive: true}, &out)
	if err != nil {
		return nil, ex, err
	}
	return out.Value, ex, nil
}

// DeviceIdentityRead is what ReadDeviceIdentities found for one id.
type DeviceIdentityRead = Read[DeviceIdentity]

// ReadDeviceIdentities reads imported devices by id, 20 to a JSON batch (see readByID).
func (c *Client) ReadDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, ids []string) ([]DeviceIdentityRead, []*Exchange, error) {
	request := func(reqID, id string) (BatchRequest, error) {
		return getRequest(reqID, devicesPath, "The device id", id)
	}
	return readByID(ctx, c, ts, ids, request, func(r BatchResponse) (*DeviceIdentity, error) {
		return decodeEntity(r, func(d *DeviceIdentity) string { return d.ID })
	})
}

// UploadDevices are an upload's contained device identities, as far as the desk reads them.
type UploadDevices struct {
	Devices []DeviceIdentity
	More    bool // Graph has further pages than the desk reads (maxUploadDevicePages)
}

// maxUploadDevicePages bounds the pages of an upload's devices one look reads.
const maxUploadDevicePages = 20

// ListUploadDeviceIdentities lists an upload's contained device identities, following Graph's
// pages up to maxUploadDevicePages; More says whether Graph has more. A page that fails ends the
// list with its error, and the devices read before it.
func (c *Client) ListUploadDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, uploadID string) (*UploadDevices, *Exchange, error) {
	if !guid.Valid(uploadID) {
		return nil, nil, invalidID("The upload id", uploadID)
	}
	path := uploadsPath + "/" + uploadID + "/deviceIdentities"
	out := &UploadDevices{}
	var ex *Exchange
	target, from := c.base+path, ""
	for pages := 0; ; pages++ {
		if pages == maxUploadDevicePages {
			out.More = true
			return out, ex, nil
		}
		var l deviceList
		pex, err := c.do(ctx, ts, call{op: "list-upload-devices", method: http.MethodGet, url: target, sensitive: true}, &l)
		ex = Joined(ex, pex)
		if err != nil {
			return out, ex, err
		}
		devices, next := page(c, from, l.Value, l.NextLink, identityID)
		out.Devices = append(out.Devices, devices...)
		if next == "" {
			return out, ex, nil
		}
		if target, err = c.pageLink(path, next); err != nil {
			return out, ex, err
		}
		from = next
	}
}

// ListDeviceIdentities reads one page of imported devices, optionally those whose serial number
// contains filterSerial; nextLink is followed only under the configured root.
func (c *Client) ListDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, filterSerial, nextLink string) ([]DeviceIdentity, string, *Exchange, error) {
	target := c.base + devicesPath
	switch {
	case nextLink != "":
		var err error
		if target, err = c.pageLink(devicesPath, nextLink); err != nil {
			return nil, "", nil, err
		}
	case filterSerial != "":
		if !validSerialQuery(filterSerial) {
			return nil, "", nil, &Error{Kind: KindInvalidInput, Message: "The serial number to search for is not valid."}
		}
		target += "?" + containsSerialFilter(filterSerial)
	}
	var l deviceList
	ex, err := c.do(ctx, ts, call{op: "list-devices", method: http.MethodGet, url: target, sensitive: true}, &l)
	if err != nil {
		return nil, "", ex, err
	}
	devices, next := page(c, nextLink, l.Value, l.NextLink, identityID)
	return devices, next, ex, nil
}

func identityID(d DeviceIdentity) string { return d.ID }

// DeleteDeviceIdentity deletes an imported device (204).
func (c *Client) DeleteDeviceIdentity(ctx context.Context, ts oauth2.TokenSource, id string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The device id", id)
	}
	return c.do(ctx, ts, call{op: "delete-device", method: http.MethodDelete, url: c.base + devicesPath + "/" + id}, nil)
}

// SyncAutopilot asks Intune to sync Autopilot devices (204); Intune allows one sync per 10 minutes.
// The action exists only in Graph beta (the v1.0 metadata has never had windowsAutopilotSettings),
// so it goes to beta whatever version the client is configured with.
func (c *Client) SyncAutopilot(ctx context.Context, ts oauth2.TokenSource) (*Exchange, error) {
	return c.do(ctx, ts, call{op: "sync-autopilot", method: http.MethodPost, url: c.Root() + "/beta/deviceManagement/windowsAutopilotSettings/sync"}, nil)
}

// AutopilotSettings is the tenant's sync with the Windows Autopilot service
// (windowsAutopilotSettings), as the Intune admin center's "Last sync request" and "Last
// successful sync" show it.
type AutopilotSettings struct {
	LastSyncDateTime              string     `json:"lastSyncDateTime"`
	LastManualSyncTriggerDateTime string     `json:"lastManualSyncTriggerDateTime"`
	SyncStatus                    SyncStatus `json:"syncStatus"`
}

// SyncStatus is Graph beta's windowsAutopilotSyncStatus enum.
type SyncStatus string

// The members of windowsAutopilotSyncStatus in Graph's beta metadata.
const (
	SyncUnknown    SyncStatus = "unknown"
	SyncInProgress SyncStatus = "inProgress"
	SyncCompleted  SyncStatus = "completed"
	SyncFailed     SyncStatus = "failed"
)

// SyncStatuses lists the members in the metadata's order.
var SyncStatuses = []SyncStatus{SyncUnknown, SyncInProgress, SyncCompleted, SyncFailed}

// LastSync is when the devices last synced with the Windows Autopilot service; false when never.
func (s AutopilotSettings) LastSync() (time.Time, bool) { return graphInstant(s.LastSyncDateTime) }

// LastRequest is when someone last asked for a sync; false when never.
func (s AutopilotSettings) LastRequest() (time.Time, bool) {
	return graphInstant(s.LastManualSyncTriggerDateTime)
}

// graphInstant reads a DateTimeOffset Intune wrote; its 0001-01-01 means never.
func graphInstant(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() <= 1 {
		return time.Time{}, false
	}
	return t, true
}

// GetAutopilotSettings reads the tenant's sync with the Windows Autopilot service. Like the sync
// action, windowsAutopilotSettings exists only in Graph beta, so it is read there.
func (c *Client) GetAutopilotSettings(ctx context.Context, ts oauth2.TokenSource) (*AutopilotSettings, *Exchange, error) {
	return entity[AutopilotSettings](ctx, c, ts, call{op: "get-autopilot-settings", method: http.MethodGet, url: c.Root() + "/beta/deviceManagement/windowsAutopilotSettings"})
}
