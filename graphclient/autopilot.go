package graphclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/graphclient/unseen"
)

const autopilotPath = "/deviceManagement/windowsAutopilotDeviceIdentities"

// AutopilotDevice is a registered Windows Autopilot device (windowsAutopilotDeviceIdentity), with
// the v1.0 properties. LastContactedDateTime is kept as Graph wrote it; LastContacted reads it.
type AutopilotDevice struct {
	ID                           string          `json:"id"`
	GroupTag                     string          `json:"groupTag"`
	PurchaseOrderIdentifier      string          `json:"purchaseOrderIdentifier"`
	SerialNumber                 string          `json:"serialNumber"`
	ProductKey                   string          `json:"productKey"`
	Manufacturer                 string          `json:"manufacturer"`
	Model                        string          `json:"model"`
	EnrollmentState              EnrollmentState `json:"enrollmentState"`
	LastContactedDateTime        string          `json:"lastContactedDateTime"`
	AddressableUserName          string          `json:"addressableUserName"`
	UserPrincipalName            string          `json:"userPrincipalName"`
	ResourceName                 string          `json:"resourceName"`
	SkuNumber                    string          `json:"skuNumber"`
	SystemFamily                 string          `json:"systemFamily"`
	AzureActiveDirectoryDeviceID string          `json:"azureActiveDirectoryDeviceId"`
	ManagedDeviceID              string          `json:"managedDeviceId"`
	DisplayName                  string          `json:"displayName"`
}

// LastContacted is when the device last talked to Intune; false when it never has (Graph
// writes 0001-01-01T00:00:00Z then) or the value cannot be read.
func (d AutopilotDevice) LastContacted() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, d.LastContactedDateTime)
	if err != nil || t.Year() <= 1 {
		return time.Time{}, false
	}
	return t, true
}

// EnrollmentState is Graph's enrollmentState enum, as Graph spells its members.
type EnrollmentState string

// The members of enrollmentState in Graph's v1.0 metadata.
const (
	EnrollmentUnknown      EnrollmentState = "unknown"
	EnrollmentEnrolled     EnrollmentState = "enrolled"
	EnrollmentPendingReset EnrollmentState = "pendingReset"
	EnrollmentFailed       EnrollmentState = "failed"
	EnrollmentNotContacted EnrollmentState = "notContacted"
)

// EnrollmentStates lists the members in the metadata's order.
var EnrollmentStates = []EnrollmentState{EnrollmentUnknown, EnrollmentEnrolled, EnrollmentPendingReset, EnrollmentFailed, EnrollmentNotContacted}

// Known reports whether s is a member of the enum; Graph may add members later.
func (s EnrollmentState) Known() bool {
	for _, k := range EnrollmentStates {
		if s == k {
			return true
		}
	}
	return false
}

// SameSerial reports whether a serial number Graph returned is the one asked for. Graph's
// contains(serialNumber,…) also matches longer serials, so every search compares with this.
// Letter case and surrounding spaces are ignored: a serial that differs only in case is taken
// as the same device, so a check errs towards warning.
func SameSerial(got, want string) bool {
	return strings.EqualFold(strings.TrimSpace(got), strings.TrimSpace(want))
}

// WithSerial keeps the devices whose serial number is exactly serial (see SameSerial).
func WithSerial(devices []AutopilotDevice, serial string) []AutopilotDevice {
	return withSerial(devices, serial, func(d AutopilotDevice) string { return d.SerialNumber })
}

// withSerial keeps the records whose serial number, as serialOf reads it, is exactly serial.
func withSerial[T any](records []T, serial string, serialOf func(T) string) []T {
	var out []T
	for _, r := range records {
		if SameSerial(serialOf(r), serial) {
			out = append(out, r)
		}
	}
	return out
}

// AutopilotDeviceQuery selects one page of registered devices.
type AutopilotDeviceQuery struct {
	SerialContains string // sent as $filter=contains(serialNumber,'…'); Graph's only verified filter
	Top            int    // page size asked for; 0 leaves it to Graph
	NextLink       string // an @odata.nextLink from an earlier page; the other fields are then ignored
}

// AutopilotDevicePage is one page of registered devices.
type AutopilotDevicePage struct {
	Devices  []AutopilotDevice
	NextLink string
}

type autopilotList struct {
	Value    []AutopilotDevice `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

func validSerialQuery(s string) bool {
	return s != "" && len(s) <= devicecsv.MaxSerialLength && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// containsSerialFilter is the query Graph answers for a serial search; an OData string literal
// escapes a single quote by doubling it.
func containsSerialFilter(serial string) string {
	q := url.Values{"$filter": {"contains(serialNumber,'" + strings.ReplaceAll(serial, "'", "''") + "')"}}
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// ListAutopilotDevices reads one page of the tenant's registered Autopilot devices; a NextLink
// is followed only when it stays on the configured Graph root and this collection's path.
func (c *Client) ListAutopilotDevices(ctx context.Context, ts oauth2.TokenSource, q AutopilotDeviceQuery) (*AutopilotDevicePage, *Exchange, error) {
	target := c.base + autopilotPath
	if q.NextLink != "" {
		var err error
		if target, err = c.pageLink(autopilotPath, q.NextLink); err != nil {
			return nil, nil, err
		}
	} else {
		var params []string
		if q.SerialContains != "" {
			if !validSerialQuery(q.SerialContains) {
				return nil, nil, &Error{Kind: KindInvalidInput, Message: "The serial number to search for is not valid: use up to 128 characters without line breaks."}
			}
			params = append(params, containsSerialFilter(q.SerialContains))
		}
		if q.Top < 0 || q.Top > 999 {
			return nil, nil, &Error{Kind: KindInvalidInput, Message: "A page holds between 1 and 999 devices."}
		}
		if q.Top > 0 {
			params = append(params, "%24top="+strconv.Itoa(q.Top))
		}
		if len(params) > 0 {
			target += "?" + strings.Join(params, "&")
		}
	}
	var l autopilotList
	ex, err := c.do(ctx, ts, call{op: "list-autopilot-devices", method: http.MethodGet, url: target}, &l)
	if err != nil {
		return nil, ex, err
	}
	devices, next := page(c, q.NextLink, l.Value, l.NextLink, func(d AutopilotDevice) string { return d.ID })
	return &AutopilotDevicePage{Devices: devices, NextLink: next}, ex, nil
}

// maxSerialPages bounds how many pages one serial search reads: contains() also matches longer
// serials, and a short search string could match much of a tenant.
const maxSerialPages = 5

// GetAutopilotDevice reads one registered device.
func (c *Client) GetAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*AutopilotDevice, *Exchange, error) {
	if !guid.Valid(id) {
		return nil, nil, invalidID("The Autopilot device id", id)
	}
	return entity[AutopilotDevice](ctx, c, ts, call{op: "get-autopilot-device", method: http.MethodGet, url: c.base + autopilotPath + "/" + id})
}

// ProfileAssignment is a registered device's Windows Autopilot deployment profile: whether one is
// assigned, which, and since when. Only Graph beta has these properties (the v1.0 metadata lacks
// them), so it is read from beta whatever version the client is configured with.
type ProfileAssignment struct {
	ID               string                      `json:"id"`
	Status           ProfileAssignmentStatus     `json:"deploymentProfileAssignmentStatus"`
	DetailedStatus   string                      `json:"deploymentProfileAssignmentDetailedStatus"`
	AssignedDateTime string                      `json:"deploymentProfileAssignedDateTime"`
	Profile          *AutopilotDeploymentProfile `json:"deploymentProfile"`
	IntendedProfile  *AutopilotDeploymentProfile `json:"intendedDeploymentProfile"`
}

// AssignedAt is when the profile was set; false when it never was (Graph writes
// 0001-01-01T00:00:00Z then) or the value cannot be read.
func (p ProfileAssignment) AssignedAt() (time.Time, bool) { return graphInstant(p.AssignedDateTime) }

// AutopilotDeploymentProfile is a Windows Autopilot deployment profile, as far as the desk shows it.
type AutopilotDeploymentProfile struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
}

// ProfileAssignmentStatus is Graph beta's windowsAutopilotProfileAssignmentStatus enum.
type ProfileAssignmentStatus string

// The members of windowsAutopilotProfileAssignmentStatus in Graph's beta metadata (the third is
// misspelt there, and so on the wire).
const (
	ProfileUnknown             ProfileAssignmentStatus = "unknown"
	ProfileAssignedInSync      ProfileAssignmentStatus = "assignedInSync"
	ProfileAssignedOutOfSync   ProfileAssignmentStatus = "assignedOutOfSync"
	ProfileAssignedUnknownSync ProfileAssignmentStatus = "assignedUnkownSyncState"
	ProfileNotAssigned         ProfileAssignmentStatus = "notAssigned"
	ProfilePending             ProfileAssignmentStatus = "pending"
	ProfileFailed              ProfileAssignmentStatus = "failed"
)

// ProfileAssignmentStatuses lists the members in the metadata's order.
var ProfileAssignmentStatuses = []ProfileAssignmentStatus{ProfileUnknown, ProfileAssignedInSync, ProfileAssignedOutOfSync,
	ProfileAssignedUnknownSync, ProfileNotAssigned, ProfilePending, ProfileFailed}

// profileExpand is the query Get-AutopilotDevice -Expand of the community WindowsAutopilotIntune
// module sends: the assigned and the intended profile, in the device's own answer.
const profileExpand = "?%24expand=deploymentProfile,intendedDeploymentProfile"

// GetProfileAssignment reads a registered device's deployment profile assignment from Graph beta.
// A successful answer carries every beta property of the device, a Surface Hub's account password
// (deviceAccountPassword) among them, so its exchange is not returned: only a failure's is.
func (c *Client) GetProfileAssignment(ctx context.Context, ts oauth2.TokenSource, id string) (*ProfileAssignment, *Exchange, error) {
	if !guid.Valid(id) {
		return nil, nil, invalidID("The Autopilot device id", id)
	}
	p, ex, err := entity[ProfileAssignment](ctx, c, ts, call{op: "get-profile-assignment", method: http.MethodGet, url: c.Root() + "/beta" + autopilotPath + "/" + id + profileExpand})
	if err != nil {
		return nil, ex, err
	}
	return p, nil, nil
}

// DeleteAutopilotDevice deletes a device's Autopilot registration (204). It is never re-sent
// after a timeout or a 500/502/504: a second DELETE would answer 404 for a delete that worked,
// so the outcome is reported unknown and the caller looks before trying again.
func (c *Client) DeleteAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The Autopilot device id", id)
	}
	return c.do(ctx, ts, call{op: "delete-autopilot-device", method: http.MethodDelete, url: c.base + autopilotPath + "/" + id, rules: http.MethodPost}, nil)
}

// AutopilotDeviceChange is what updateDeviceProperties sets; a nil field is left as it is, an
// empty string clears it.
type AutopilotDeviceChange struct {
	UserPrincipalName   *string `json:"userPrincipalName,omitempty"`
	AddressableUserName *string `json:"addressableUserName,omitempty"`
	GroupTag            *string `json:"groupTag,omitempty"`
	DisplayName         *string `json:"displayName,omitempty"`
}

// maxPropertyLength bounds a property value the desk sends; a group tag has Intune's own limit,
// the one a device import keeps too (devicecsv.MaxGroupTagLength).
const (
	maxPropertyLength = 256
	MaxGroupTagLength = 200
)

func checkProperty(name string, v *string) error {
	if v == nil {
		return nil
	}
	if problem := PropertyProblem(name, *v); problem != "" {
		return &Error{Kind: KindInvalidInput, Message: problem + " Nothing was sent to Graph."}
	}
	return nil
}

// PropertyProblem says what is wrong with a value for a registered device's property (its name
// in words: "group tag"), or "" when the desk may send it: at most 256 characters (a group tag
// 200), none of them one a person cannot see (package unseen: a tab, a line break, a direction
// mark, a zero-width space), which would make the value read otherwise than it is.
func PropertyProblem(name, v string) string {
	limit := maxPropertyLength
	if name == "group tag" {
		limit = MaxGroupTagLength
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return fmt.Sprintf("The %s has %s characters; it may have at most %d.", name, devicecsv.Thousands(n), limit)
	}
	return unseen.Problem("The "+name, v)
}

// Device names as Intune's admin center takes them: Windows computer names of at most 15
// letters, digits and hyphens, not digits only; or a pattern with the %SERIAL% and %RAND:x%
// macros, which Intune fills in at setup.
const (
	maxDeviceName        = 15
	maxDeviceNamePattern = 63
)

var deviceNameMacro = regexp.MustCompile(`%SERIAL%|%RAND:[0-9]+%`)

// DeviceNameProblem says what is wrong with a device name typed for a registered device, or ""
// when the admin center would take it (empty clears the name).
func DeviceNameProblem(v string) string {
	if v == "" {
		return ""
	}
	if problem := unseen.Problem("The device name", v); problem != "" {
		return problem
	}
	rest := deviceNameMacro.ReplaceAllString(v, "")
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			what := fmt.Sprintf("“%c”", r)
			switch {
			case r == ' ':
				what = "a space"
			case r == '%':
				what = "a % outside the %SERIAL% and %RAND:x% macros"
			}
			return "The device name holds " + what + ": use only letters, digits and hyphens, or the %SERIAL% and %RAND:x% macros."
		}
	}
	n := utf8.RuneCountInString(v)
	switch {
	case rest != v && n > maxDeviceNamePattern:
		return fmt.Sprintf("The device name has %s characters; with macros it may have at most %d.", devicecsv.Thousands(n), maxDeviceNamePattern)
	case rest == v && n > maxDeviceName:
		return fmt.Sprintf("The device name has %s characters; Windows takes at most %d. Shorten it, or use a macro such as %%SERIAL%%.", devicecsv.Thousands(n), maxDeviceName)
	case rest == v && strings.Trim(v, "0123456789") == "":
		return "The device name is digits only, which Windows does not take: add a letter or a hyphen."
	}
	return ""
}

// UpdateAutopilotDeviceProperties sets a registered device's group tag, display name or user
// (POST …/updateDeviceProperties, 204). Registration is eventually consistent: a read right
// after may still show the old values.
func (c *Client) UpdateAutopilotDeviceProperties(ctx context.Context, ts oauth2.TokenSource, id string, change AutopilotDeviceChange) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The Autopilot device id", id)
	}
	if change == (AutopilotDeviceChange{}) {
		return nil, &Error{Kind: KindInvalidInput, Message: "Nothing to change was given, so nothing was sent to Graph."}
	}
	for _, p := range []struct {
		name string
		v    *string
	}{{"user principal name", change.UserPrincipalName}, {"user's display name", change.AddressableUserName}, {"group tag", change.GroupTag}, {"device name", change.DisplayName}} {
		if err := checkProperty(p.name, p.v); err != nil {
			return nil, err
		}
	}
	return c.do(ctx, ts, call{op: "update-autopilot-device", method: http.MethodPost, url: c.base + autopilotPath + "/" + id + "/updateDeviceProperties", body: jsonBody(change)}, nil)
}

// AssignUserToAutopilotDevice assigns a user to a registered device (POST …/assignUserToDevice,
// 204). addressableUserName is the greeting name shown at sign-in; it may be empty.
func (c *Client) AssignUserToAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id, userPrincipalName, addressableUserName string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The Autopilot device id", id)
	}
	if !devicecsv.PlausibleUPN(userPrincipalName) {
		return nil, &Error{Kind: KindInvalidInput, Message: "The user principal name must look like adele@contoso.com, with one @ and no spaces. Nothing was sent to Graph."}
	}
	if err := checkProperty("user principal name", &userPrincipalName); err != nil {
		return nil, err
	}
	if err := checkProperty("user's display name", &addressableUserName); err != nil {
		return nil, err
	}
	body := jsonBody(struct {
		UserPrincipalName   string `json:"userPrincipalName"`
		AddressableUserName string `json:"addressableUserName"`
	}{userPrincipalName, addressableUserName})
	return c.do(ctx, ts, call{op: "assign-autopilot-user", method: http.MethodPost, url: c.base + autopilotPath + "/" + id + "/assignUserToDevice", body: body}, nil)
}

// UnassignUserFromAutopilotDevice removes the user from a registered device (POST
// …/unassignUserFromDevice without a body, 204).
func (c *Client) UnassignUserFromAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The Autopilot device id", id)
	}
	return c.do(ctx, ts, call{op: "unassign-autopilot-user", method: http.MethodPost, url: c.base + autopilotPath + "/" + id + "/unassignUserFromDevice"}, nil)
}

// The batch requests of the calls above, for changing or reading many devices in JSON batches
// (Batch); each is checked as its standalone call is, and its URL is relative to the version.

// GetAutopilotDeviceRequest reads one registered device; DecodeAutopilotDevice reads its answer.
func GetAutopilotDeviceRequest(reqID, id string) (BatchRequest, error) {
	return getRequest(reqID, autopilotPath, "The Autopilot device id", id)
}

// DecodeAutopilotDevice reads the device of a GetAutopilotDeviceRequest's answer.
func DecodeAutopilotDevice(r BatchResponse) (*AutopilotDevice, error) {
	return decodeEntity(r, func(d *AutopilotDevice) string { return d.ID })
}

// UpdateAutopilotDeviceRequest is UpdateAutopilotDeviceProperties as a batch request.
func UpdateAutopilotDeviceRequest(reqID, id string, change AutopilotDeviceChange) (BatchRequest, error) {
	if !guid.Valid(id) {
		return BatchRequest{}, invalidID("The Autopilot device id", id)
	}
	if change == (AutopilotDeviceChange{}) {
		return BatchRequest{}, &Error{Kind: KindInvalidInput, Message: "Nothing to change was given, so nothing was sent to Graph."}
	}
	for _, p := range []struct {
		name string
		v    *string
	}{{"user principal name", change.UserPrincipalName}, {"user's display name", change.AddressableUserName}, {"group tag", change.GroupTag}, {"device name", change.DisplayName}} {
		if err := checkProperty(p.name, p.v); err != nil {
			return BatchRequest{}, err
		}
	}
	body, _ := json.Marshal(change)
	return BatchRequest{ID: reqID, Method: http.MethodPost, URL: autopilotPath + "/" + id + "/updateDeviceProperties", Body: body}, nil
}

// UnassignAutopilotUserRequest is UnassignUserFromAutopilotDevice as a batch request. Graph wants
// a body with every POST inside a batch, so it carries an empty object.
func UnassignAutopilotUserRequest(reqID, id string) (BatchRequest, error) {
	if !guid.Valid(id) {
		return BatchRequest{}, invalidID("The Autopilot device id", id)
	}
	return BatchRequest{ID: reqID, Method: http.MethodPost, URL: autopilotPath + "/" + id + "/unassignUserFromDevice", Body: json.RawMessage(`{}`)}, nil
}

// DeleteAutopilotDeviceRequest is DeleteAutopilotDevice as a batch request; like it, it is never
// sent again after a timeout or a 500/502/504.
func DeleteAutopilotDeviceRequest(reqID, id string) (BatchRequest, error) {
	if !guid.Valid(id) {
		return BatchRequest{}, invalidID("The Autopilot device id", id)
	}
	return BatchRequest{ID: reqID, Method: http.MethodDelete, URL: autopilotPath + "/" + id}, nil
}

// AutopilotDeviceRead is what ReadAutopilotDevices found for one id.
type AutopilotDeviceRead = Read[AutopilotDevice]

// ReadAutopilotDevices reads registered devices by id, 20 to a JSON batch (see readByID).
func (c *Client) ReadAutopilotDevices(ctx context.Context, ts oauth2.TokenSource, ids []string) ([]AutopilotDeviceRead, []*Exchange, error) {
	return readByID(ctx, c, ts, ids, GetAutopilotDeviceRequest, DecodeAutopilotDevice)
}
