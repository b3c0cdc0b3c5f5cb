package views

import "autopilotdesk/graphclient"

// ImportStart is the device import's first page.
type ImportStart struct {
	Error  string
	Paste  string
	Single SingleDevice
}

// SingleDevice is the one-device form.
type SingleDevice struct{ Serial, Hash, GroupTag, User string }

// ImportRow is one pre-flight row; Hash is truncated.
type ImportRow struct {
	Line                         int
	Serial, Hash, GroupTag, User string
	Notes, Errors                []string
	AlreadyImported              bool
}

// Verdict is the row's pre-flight result.
func (r ImportRow) Verdict() string {
	switch {
	case len(r.Errors) > 0:
		return "error"
	case r.AlreadyImported:
		return "already imported"
	case len(r.Notes) > 0:
		return "fixed"
	}
	return "ok"
}

// ImportedDevice is one device of a submitted import.
type ImportedDevice struct {
	Serial, Status, RegistrationID, ErrorName string
	ErrorCode, Batch                          int
}

// ImportJob is an import's page: its pre-flight while a draft, its progress once submitted.
type ImportJob struct {
	ID, State             string
	FileNotes, FileErrors []string
	Rows                  []ImportRow
	Valid, Invalid        int
	Checked               bool
	Failure               *graphclient.Explanation
	Devices               []ImportedDevice
	Final, Batches        int
	RefreshSeconds        int
}

// Done reports whether every device reached its final state.
func (j ImportJob) Done() bool { return j.State == "done" }

// DeviceError is what a per-device import error means and what to do.
type DeviceError struct{ What, Next string }

// DeviceErrorMeaning explains Intune's per-device import errors (graph-facts §2).
func DeviceErrorMeaning(code int, name string) DeviceError {
	switch {
	case code == 801 || name == "InvalidZtdRequestBody":
		return DeviceError{"The import request for this device was malformed.", "Check the row's values and import it again."}
	case code == 802 || name == "InvalidZtdHardwareHash":
		return DeviceError{"The hardware hash is invalid, or the manufacturer or serial number inside it is missing.", "Capture the hash again on the device (Get-WindowsAutopilotInfo) and re-import."}
	case code == 803 || name == "MissingZtdSerialNumberAndProductKey":
		return DeviceError{"The serial number and the product ID are both empty or invalid.", "Add the device's serial number and import it again."}
	case code == 806 || name == "ZtdDeviceAlreadyAssigned":
		return DeviceError{"The device is already registered in this tenant.", "Nothing to do; or delete the existing record and import again to change its group tag or user."}
	case code == 808 || name == "ZtdDeviceAssignedToOtherTenant" || name == "ZtdDeviceAssignedToAnotherTenant":
		return DeviceError{"The device is registered in another organisation's tenant.", "Ask the previous owner or the seller to deregister it, then import it again."}
	case code == 640 || name == "StorageError":
		return DeviceError{"A passing Intune service error.", "Import the device again later."}
	case name == "ZtdDeviceDuplicated":
		return DeviceError{"The same hardware hash appeared twice in one import; only one copy was processed.", "Nothing to do if the other copy completed."}
	case code == 0 && name == "":
		return DeviceError{}
	}
	return DeviceError{"Intune reported an error for this device.", "Check the device in the Intune admin center (Devices › Windows › Enrollment › Devices)."}
}
