package demoidp

import "slices"

// Fixed ids keep demo pages and screenshots the same from run to run.
const (
	// DemoTenantID is the demo organisation's tenant (Contoso).
	DemoTenantID = "5b7a1c2e-3f4d-4e6a-9b8c-0d1e2f3a4b5c"
	// PersonalAccountsTenantID is the tenant Microsoft gives every personal Microsoft account.
	PersonalAccountsTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"
	// HelpDeskGroupID is a group both demo work accounts belong to.
	HelpDeskGroupID = "3c1f7a92-6d4b-4e8a-b0c5-7f2e9d1a4b6c"
)

// Keys of the demo identities, as login_hint accepts them.
const (
	AdminKey      = "admin"
	ReaderKey     = "reader"
	ReadGrantKey  = "read-grant"
	PersonalKey   = "personal"
	ManyGroupsKey = "many-groups"
)

// Object ids of the demo identities.
const (
	AdminObjectID      = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
	ReaderObjectID     = "b2e4d3c5-6a7f-4081-9ba2-c3d4e5f60712"
	ReadGrantObjectID  = "e5b7a6f8-9da2-43b4-8ed5-f6071829a3b4"
	PersonalObjectID   = "c3f5e4d6-7b80-4192-acb3-d4e5f6071823"
	ManyGroupsObjectID = "d4a6f5e7-8c91-42a3-bdc4-e5f607182934"
)

// Identity is one account the sign-in picker offers.
type Identity struct {
	Key, Name, UPN, TenantID, ObjectID string
	Scopes                             []string // Graph permissions granted to the account's access tokens
	Groups                             []string
	// IntuneReadOnly: the account's Intune role may read Autopilot devices but not change them,
	// although the desk's permission to change them was granted (Intune answers 403 itself).
	IntuneReadOnly bool
	// GroupsOverage: the account is in more groups than an ID token carries (200 in Entra), so
	// its ID token says where to look them up instead of listing them.
	GroupsOverage bool
	Description   string // what signing in as this account demonstrates
}

func demoIdentities() []Identity {
	return []Identity{
		{Key: AdminKey, Name: "Adele Vance", UPN: "AdeleV@contoso.example", TenantID: DemoTenantID, ObjectID: AdminObjectID,
			Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All", "User.Read"}, Groups: []string{HelpDeskGroupID},
			Description: "Intune administrator: may create and change Autopilot uploads."},
		{Key: ReaderKey, Name: "Megan Bowen", UPN: "MeganB@contoso.example", TenantID: DemoTenantID, ObjectID: ReaderObjectID,
			Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All", "User.Read"}, Groups: []string{HelpDeskGroupID}, IntuneReadOnly: true,
			Description: "Help-desk reader: the desk's permission is granted, but her Intune role may only read, so a change fails with Microsoft Graph's 403."},
		{Key: ReadGrantKey, Name: "Pradeep Gupta", UPN: "PradeepG@contoso.example", TenantID: DemoTenantID, ObjectID: ReadGrantObjectID,
			Scopes: []string{"DeviceManagementServiceConfig.Read.All", "User.Read"}, Groups: []string{HelpDeskGroupID},
			Description: "Read permission only: the organisation granted the desk only the permission to read, so pages show no change controls."},
		{Key: ManyGroupsKey, Name: "Isaiah Langer", UPN: "IsaiahL@contoso.example", TenantID: DemoTenantID, ObjectID: ManyGroupsObjectID,
			Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All", "User.Read"}, Groups: []string{HelpDeskGroupID},
			GroupsOverage: true,
			Description:   "Intune administrator in more groups than a sign-in token can list: when the desk is limited to groups, it asks Microsoft Graph whether the account is in one. A second administrator, to approve devices registered with another's code."},
		{Key: PersonalKey, Name: "Sam Taylor", UPN: "sam.taylor@outlook.example", TenantID: PersonalAccountsTenantID, ObjectID: PersonalObjectID,
			Description: "Personal Microsoft account: refused at sign-in, because the Intune APIs accept only work or school accounts."},
	}
}

func cloneIdentity(id Identity) Identity {
	id.Scopes, id.Groups = slices.Clone(id.Scopes), slices.Clone(id.Groups)
	return id
}

// signInProblem is an error the picker can answer instead of a code, as Entra does.
type signInProblem struct {
	Key, Name, Description string
	Code, ErrorDescription string
}

const cancelKey = "cancel"

var signInProblems = []signInProblem{
	{Key: "no-consent", Name: "Consent not granted",
		Description: "The organisation has not granted the desk its Microsoft Graph permission (AADSTS65001).",
		Code:        "invalid_client",
		ErrorDescription: "AADSTS65001: The user or administrator has not consented to use the application with ID 'autopilotdesk-demo' named 'Autopilot Desk'. " +
			"Send an interactive authorization request for this user and resource."},
	{Key: "not-assigned", Name: "User not assigned",
		Description: "The account is not assigned to the desk's enterprise application (AADSTS50105).",
		Code:        "access_denied",
		ErrorDescription: "AADSTS50105: Your administrator has configured the application Autopilot Desk ('autopilotdesk-demo') to block users " +
			"unless they are specifically granted ('assigned') access to the application."},
}

var cancelled = signInProblem{Key: cancelKey, Code: "access_denied",
	ErrorDescription: "AADSTS65004: User declined to consent to access the app."}

func problemByKey(key string) (signInProblem, bool) {
	if key == cancelKey {
		return cancelled, true
	}
	i := slices.IndexFunc(signInProblems, func(s signInProblem) bool { return s.Key == key })
	if i < 0 {
		return signInProblem{}, false
	}
	return signInProblems[i], true
}
