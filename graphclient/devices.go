package graphclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"autopilotdesk/guid"
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

// DeviceImportState is where a device's import stands.
type DeviceImportState struct {
	DeviceImportStatus   string `json:"deviceImportStatus"`
	DeviceRegistrationID string `json:"deviceRegistrationId"`
	DeviceErrorCode      int    `json:"deviceErrorCode"`
	DeviceErrorName      string `json:"deviceErrorName"`
}

// Final reports whether the import of this device has ended (complete or error).
func (s DeviceImportState) Final() bool {
	return s.DeviceImportStatus == "complete" || s.DeviceImportStatus == "error"
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

// ImportDeviceIdentities runs the import action for at most 500 devices. A throttled import is
// retried (Graph did not run it); one that timed out is reported as outcome unknown.
func (c *Client) ImportDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, devices []DeviceIdentity) ([]DeviceIdentity, *Exchange, error) {
	if len(devices) == 0 || len(devices) > 500 {
		return nil, nil, &Error{Kind: KindInvalidInput, Message: "An import takes between 1 and 500 devices."}
	}
	in := make([]deviceInput, len(devices))
	for i, d := range devices {
		in[i] = deviceInput{ODataType: "#microsoft.graph.importedWindowsAutopilotDeviceIdentity", SerialNumber: d.SerialNumber, ProductKey: d.ProductKey,
			HardwareIdentifier: d.HardwareIdentifier, GroupTag: d.GroupTag, AssignedUserPrincipalName: d.AssignedUserPrincipalName}
	}
	body := jsonBody(map[string]any{"importedWindowsAutopilotDeviceIdentities": in})
	var out deviceList
	ex, err := c.do(ctx, ts, call{op: "import-devices", method: http.MethodPost, url: c.base + devicesPath + "/import", body: body, sensitive: true}, &out)
	if err != nil {
		return nil, ex, err
	}
	return out.Value, ex, nil
}

// GetDeviceIdentity reads one imported device.
func (c *Client) GetDeviceIdentity(ctx context.Context, ts oauth2.TokenSource, id string) (*DeviceIdentity, *Exchange, error) {
	if !guid.Valid(id) {
		return nil, nil, invalidID("The device id", id)
	}
	var d DeviceIdentity
	ex, err := c.do(ctx, ts, call{op: "get-device", method: http.MethodGet, url: c.base + devicesPath + "/" + id, sensitive: true}, &d)
	if err != nil {
		return nil, ex, err
	}
	return &d, ex, nil
}

// FindDevicesBySerial lists imported devices with exactly this serial number.
func (c *Client) FindDevicesBySerial(ctx context.Context, ts oauth2.TokenSource, serial string) ([]DeviceIdentity, *Exchange, error) {
	if serial == "" || len(serial) > 128 || strings.ContainsFunc(serial, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, nil, &Error{Kind: KindInvalidInput, Message: "The serial number to search for is not valid."}
	}
	q := url.Values{"$filter": {"serialNumber eq '" + strings.ReplaceAll(serial, "'", "''") + "'"}}
	var out deviceList
	ex, err := c.do(ctx, ts, call{op: "find-device", method: http.MethodGet, url: c.base + devicesPath + "?" + strings.ReplaceAll(q.Encode(), "+", "%20"), sensitive: true}, &out)
	if err != nil {
		return nil, ex, err
	}
	return out.Value, ex, nil
}

// ListUploadDeviceIdentities lists an upload's contained device identities.
func (c *Client) ListUploadDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, uploadID string) ([]DeviceIdentity, *Exchange, error) {
	if !guid.Valid(uploadID) {
		return nil, nil, invalidID("The upload id", uploadID)
	}
	var out deviceList
	ex, err := c.do(ctx, ts, call{op: "list-upload-devices", method: http.MethodGet, url: c.base + uploadsPath + "/" + uploadID + "/deviceIdentities", sensitive: true}, &out)
	if err != nil {
		return nil, ex, err
	}
	return out.Value, ex, nil
}

// ListDeviceIdentities reads one page of imported devices, optionally those whose serial number
// contains filterSerial; nextLink is followed only under the configured root.
func (c *Client) ListDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, filterSerial, nextLink string) ([]DeviceIdentity, string, *Exchange, error) {
	target := c.base + devicesPath
	switch {
	case nextLink != "":
		if !strings.HasPrefix(nextLink, c.base+devicesPath+"?") {
			return nil, "", nil, &Error{Kind: KindInvalidInput, Message: "The paging link does not belong to the configured Microsoft Graph."}
		}
		target = nextLink
	case filterSerial != "":
		if len(filterSerial) > 128 || strings.ContainsFunc(filterSerial, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, "", nil, &Error{Kind: KindInvalidInput, Message: "The serial number to search for is not valid."}
		}
		// OData string literals escape a single quote by doubling it.
		q := url.Values{"$filter": {"contains(serialNumber,'" + strings.ReplaceAll(filterSerial, "'", "''") + "')"}}
		target += "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	var l deviceList
	ex, err := c.do(ctx, ts, call{op: "list-devices", method: http.MethodGet, url: target, sensitive: true}, &l)
	if err != nil {
		return nil, "", ex, err
	}
	return l.Value, l.NextLink, ex, nil
}

// DeleteDeviceIdentity deletes an imported device (204).
func (c *Client) DeleteDeviceIdentity(ctx context.Context, ts oauth2.TokenSource, id string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The device id", id)
	}
	return c.do(ctx, ts, call{op: "delete-device", method: http.MethodDelete, url: c.base + devicesPath + "/" + id}, nil)
}

// SyncAutopilot asks Intune to sync Autopilot devices (204); Intune allows one sync per 10 minutes.
func (c *Client) SyncAutopilot(ctx context.Context, ts oauth2.TokenSource) (*Exchange, error) {
	return c.do(ctx, ts, call{op: "sync-autopilot", method: http.MethodPost, url: c.base + "/deviceManagement/windowsAutopilotSettings/sync"}, nil)
}
