package explain

import (
	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/unseen"
)

// ProfileAssignment says a registered device's deploymentProfileAssignmentStatus as the Intune
// admin center's "Profile status" column does.
func ProfileAssignment(s graphclient.ProfileAssignmentStatus) State {
	const prop = "deploymentProfileAssignmentStatus"
	switch s {
	case graphclient.ProfileAssignedInSync:
		return graphState(prop, string(s), "Assigned", Done)
	case graphclient.ProfileAssignedOutOfSync:
		return graphState(prop, string(s), "Assigned, not synced yet", Moving)
	case graphclient.ProfileAssignedUnknownSync:
		return graphState(prop, string(s), "Assigned, sync not known", Attention)
	case graphclient.ProfileNotAssigned:
		return graphState(prop, string(s), "Not assigned", Attention)
	case graphclient.ProfilePending:
		return graphState(prop, string(s), "Assigning", Moving)
	case graphclient.ProfileFailed:
		return graphState(prop, string(s), "Assignment failed", Failed)
	case graphclient.ProfileUnknown, "":
		return graphState(prop, string(graphclient.ProfileUnknown), "Unknown", Quiet)
	}
	return graphState(prop, unseen.Drop(string(s)), other(string(s)), Attention)
}

// ProfileMeaning says what a device's profile assignment means for its next Windows setup, and
// what to do about it; detailed is deploymentProfileAssignmentDetailedStatus.
func ProfileMeaning(s graphclient.ProfileAssignmentStatus, detailed string) string {
	switch s {
	case graphclient.ProfileAssignedInSync:
		return "The Windows Autopilot service has the profile: the device gets it the next time it runs Windows setup."
	case graphclient.ProfileAssignedOutOfSync:
		return "Intune assigned the profile but has not yet passed it to the Windows Autopilot service. A device set up now may start without it: wait until the status reads Assigned."
	case graphclient.ProfileAssignedUnknownSync:
		return "Intune assigned the profile, but does not know whether the Windows Autopilot service has it yet. Wait until the status reads Assigned before setting the device up."
	case graphclient.ProfileNotAssigned:
		return "No deployment profile is assigned: at setup the device shows the ordinary Windows setup, not your organisation's. Add the device to a group a profile is assigned to (in Intune, Devices › Windows › Enrollment › Deployment profiles; dynamic groups often pick devices by group tag), then wait for the assignment."
	case graphclient.ProfilePending:
		return "Intune is assigning the profile. Do not set the device up until the status reads Assigned: it would start without the profile."
	case graphclient.ProfileFailed:
		if why := profileDetail(detailed); why != "" {
			return "Intune could not assign the profile: " + why
		}
		return "Intune could not assign the profile. Check the profile's assignments in Intune (Devices › Windows › Enrollment › Deployment profiles), then wait for Intune to try again."
	}
	return "Intune reports no profile assignment status Autopilot Desk knows. The Intune admin center's Windows Autopilot devices page shows the same device."
}

// profileDetail says deploymentProfileAssignmentDetailedStatus in words, or "" for none.
func profileDetail(detailed string) string {
	switch detailed {
	case "hardwareRequirementsNotMet":
		return "the device does not meet the profile's hardware requirements (self-deploying and pre-provisioned setups need a TPM 2.0 that supports attestation). Assign it a user-driven profile instead, or use a device that meets them."
	case "surfaceHubProfileNotSupported", "surfaceHub2SProfileNotSupported":
		return "the profile is for Surface Hub, and this device is not one. Assign it a profile for Windows PCs."
	case "holoLensProfileNotSupported":
		return "the profile is for HoloLens, and this device is not one. Assign it a profile for Windows PCs."
	case "windowsPcProfileNotSupported":
		return "the profile is for Windows PCs, and this device is not one. Assign it a profile for its kind of device."
	}
	return ""
}

// SyncStatus says the tenant's windowsAutopilotSettings syncStatus.
func SyncStatus(s graphclient.SyncStatus) State {
	const prop = "syncStatus"
	switch s {
	case graphclient.SyncCompleted:
		return graphState(prop, string(s), "Synced", Done)
	case graphclient.SyncInProgress:
		return graphState(prop, string(s), "Syncing", Moving)
	case graphclient.SyncFailed:
		return graphState(prop, string(s), "Sync failed", Failed)
	case graphclient.SyncUnknown, "":
		return graphState(prop, string(graphclient.SyncUnknown), "Not known", Quiet)
	}
	return graphState(prop, unseen.Drop(string(s)), other(string(s)), Attention)
}
