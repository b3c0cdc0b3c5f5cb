// Package explain is where the desk's words for a person about what happened live: every
// failure (what Graph answered, and what went wrong on the desk's side), Intune's per-device
// import errors, an import row's verdict, a wait Graph asked for. graphclient returns facts and
// the import worker and the state database keep facts; pages and the outcome report turn them
// into words here, when they are rendered. It is a package of its own beside the handlers, not
// part of views, because the CSV report and the activity records need the same words without
// HTML; views only lay out the Explanation it returns. It imports facts only (graphclient,
// store), so views, handlers and the import worker may all use it.
package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"autopilotdesk/graphclient"
)

// Cause names a failure on the desk's side, where Graph's answer is not what failed.
type Cause string

const (
	SessionEnded          Cause = "session-ended"           // the sign-in service no longer renews the person's access
	TokenUnavailable      Cause = "token-unavailable"       // the person's access token could not be renewed just now
	OwnerTokenUnavailable Cause = "owner-token-unavailable" // the same, for an import's owner, in the background
	AnswerNotStored       Cause = "answer-not-stored"       // a batch was recorded as sent; the desk stopped before storing Graph's answer
	NothingChosen         Cause = "nothing-chosen"          // an import was submitted with no valid row left in
	FormUsed              Cause = "form-used"               // a create form's one-time key had expired or was spent
	Unreachable           Cause = "unreachable"             // the state database or Graph could not be reached for a moment
	SerialsUnchecked      Cause = "serials-unchecked"       // a check of serials could look only some up (Graph says why for the first)
	CheckSignedOut        Cause = "check-signed-out"        // a check of serials stopped when its owner's sign-in ended (Unchecked of Of not looked up)
)

// Failure is what is known about a failed step, as facts: what Graph answered (Graph), or what
// went wrong on the desk's side (Cause); neither means something failed before Graph answered.
// Activities and import jobs store it; Explain puts it into words when a page is rendered.
type Failure struct {
	Cause Cause              `json:"cause,omitempty"`
	Graph *graphclient.Error `json:"graph,omitempty"`
	At    time.Time          `json:"at,omitzero"`     // when it happened: Graph's Retry-After counts from here
	Batch int                `json:"batch,omitempty"` // the import batch it concerns
	While string             `json:"while,omitempty"` // what the import worker was doing: Sending or Following
	// A check of serials: how many could not be looked up, of how many.
	Unchecked int `json:"unchecked,omitempty"`
	Of        int `json:"of,omitempty"`

	said *Explanation // stored in the earlier format, which kept words: shown as they were
}

// What the import worker was doing when trouble held a job up.
const (
	Sending   = "sending"
	Following = "following"
)

// Of is the facts of err: the *graphclient.Error in its chain, if any. A caller whose own errors
// mean a Cause (web.ErrSessionEnded, web.ErrTokenUnavailable) sets it itself: this package
// imports no web code, so that views can use it.
func Of(err error, at time.Time) Failure {
	f := Failure{At: at}
	if ge, ok := graphclient.AsError(err); ok {
		f.Graph = ge
	}
	return f
}

// MarshalJSON stores the facts; a failure read from the earlier format keeps its words in that
// format, so saving a job again loses nothing.
func (f Failure) MarshalJSON() ([]byte, error) {
	if f.said != nil {
		return json.Marshal(*f.said)
	}
	type facts Failure
	return json.Marshal(facts(f))
}

// UnmarshalJSON reads the stored facts, and the earlier formats that stored words: an
// explanation object ({"Title": ...}) or a line of text.
func (f *Failure) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var line string
		if err := json.Unmarshal(b, &line); err != nil {
			return err
		}
		*f = Failure{said: &Explanation{Title: line}}
		return nil
	}
	var probe struct {
		Title *string
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if probe.Title != nil {
		var said Explanation
		if err := json.Unmarshal(b, &said); err != nil {
			return err
		}
		*f = Failure{said: &said}
		return nil
	}
	type facts Failure
	var v facts
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Failure(v)
	return nil
}

// Action is the one thing a page offers after a failure.
type Action int

const (
	ActionNone Action = iota
	ActionSignInAgain
	ActionFreshSignIn
	ActionTryLater
	ActionUseDeviceImport
	ActionCheckInput
)

// Explanation is a failure in plain words for an Intune administrator.
type Explanation struct {
	Title    string
	What     string
	NextStep string
	Action   Action
	Details  string // Graph's own words and names, for whoever wants them; never the first thing read
}

// Err explains err as it happened now: Explain(Of(err, time.Now())).
func Err(err error) Explanation { return Explain(Of(err, time.Now())) }

// Title is the one line that names a failure, for lists and the team history.
func Title(f Failure) string { return Explain(f).Title }

const intuneRole = "an Intune role that may manage Autopilot devices (Intune Administrator, or a custom role with Enrollment programs permissions)"

// Explain says what happened and what to do next. It is the one place this mapping lives.
func Explain(f Failure) Explanation {
	if f.said != nil {
		return *f.said
	}
	switch f.Cause {
	case SessionEnded:
		return Explanation{Title: "Your sign-in ended",
			What:     "The sign-in service no longer renews your access, so the desk stopped before sending anything more to Microsoft Graph.",
			NextStep: "Sign in again, then repeat what you were doing.", Action: ActionSignInAgain}
	case TokenUnavailable:
		return Explanation{Title: "Your access could not be renewed just now",
			What:     "Your access token expired and the desk could not reach the sign-in service to renew it. You are still signed in; nothing was sent to Microsoft Graph.",
			NextStep: "Try again in a moment. If it keeps happening, the desk may have lost its network connection to Microsoft Entra.",
			Action:   ActionTryLater}
	case OwnerTokenUnavailable:
		return Explanation{Title: "The owner's access could not be renewed just now",
			What:     "The access token expired and the desk could not reach the sign-in service to renew it; nothing was sent.",
			NextStep: "Nothing to do: the desk tries again by itself.", Action: ActionTryLater}
	case AnswerNotStored:
		return Explanation{Title: "The answer to this batch was not stored",
			What:     fmt.Sprintf("Batch %d was recorded as sent, but the desk stopped (a restart, crash or deploy) before Microsoft Graph's answer was stored, so it is not known whether Graph received it.", f.Batch),
			NextStep: "Nothing to do: the desk looks the devices up in Microsoft Graph and never sends them again on its own."}
	case NothingChosen:
		return Explanation{Title: "Nothing to import", What: "No valid row was chosen, so nothing was sent to Microsoft Graph.",
			NextStep: "Untick “Leave out” for the devices to import, or fix the file and upload it again."}
	case FormUsed:
		return Explanation{Title: "This form was already used",
			What:     "The form you submitted has expired or was used before, so nothing was sent to Microsoft Graph.",
			NextStep: "Check the values below and submit the form again."}
	case Unreachable:
		return Explanation{Title: "The desk could not reach its state database or Microsoft Graph for a moment",
			What: "The import was held up for a moment.", NextStep: "Nothing to do: the desk tries again by itself.", Action: ActionTryLater}
	case CheckSignedOut:
		return Explanation{Title: "The check stopped when your sign-in ended",
			What: fmt.Sprintf("It looks serial numbers up in Microsoft Graph with your sign-in, which ended after %s of %s. Rows found in your tenant by then are ticked to be left out.",
				Number(f.Of-f.Unchecked), Count(f.Of, "serial number", "serial numbers")),
			NextStep: "Check the serials again to look them all up."}
	case SerialsUnchecked:
		why := Explain(Failure{Graph: f.Graph, At: f.At})
		return Explanation{Title: fmt.Sprintf("%d of %d serial numbers could not be checked", f.Unchecked, f.Of),
			What:     why.Title + ". " + why.What + " The others were checked; rows found in your tenant are left out.",
			NextStep: "Check the serials again in a moment; nothing was sent to Graph but the look-ups.", Action: ActionTryLater}
	}
	if f.Graph == nil {
		return Explanation{Title: "The request could not be completed", What: "Something went wrong before Microsoft Graph answered.",
			NextStep: "Try again in a moment.", Action: ActionTryLater}
	}
	return graphAnswer(f.Graph)
}

// graphAnswer explains a failed Graph call by its kind.
// roleRefusalDetails says why a 403 is blamed on the person's Intune role: Intune words it as an
// application missing a scope, but the desk's sign-in was granted the scope.
func roleRefusalDetails(ge *graphclient.Error) string {
	granted := "The desk's sign-in was granted DeviceManagementServiceConfig.ReadWrite.All, so your role is what refused."
	if strings.Contains(ge.Message, "scope") {
		return "Intune words this refusal as an application missing a scope, but the desk's sign-in was granted DeviceManagementServiceConfig.ReadWrite.All, so your role is what refused."
	}
	return granted
}

func graphAnswer(ge *graphclient.Error) Explanation {
	graphSays := ""
	if ge.Message != "" {
		graphSays = " Graph said: “" + ge.Message + "”"
	}
	switch ge.Kind {
	case graphclient.KindInvalidInput:
		return Explanation{Title: "The request was not sent", What: ge.Message, NextStep: "Correct the value and try again.", Action: ActionCheckInput}
	case graphclient.KindValidation:
		return Explanation{Title: "Graph refused the values sent", What: "Microsoft Graph found a problem with the request." + graphSays,
			NextStep: "Correct the value Graph names and send the form again.", Action: ActionCheckInput}
	case graphclient.KindSegmentNotFound:
		if !UploadsMissing(ge) {
			return Explanation{Title: "Microsoft Graph does not offer this in your tenant",
				What: "Microsoft Graph answered that it does not know what the desk asked for, so nothing was changed.", NextStep: "Check the support details below; this request cannot succeed as it stands.",
				Details: "Graph answered " + fmt.Sprint(ge.StatusCode) + ": “" + ge.Message + "”"}
		}
		return Explanation{Title: "Your tenant's Microsoft Graph does not offer uploads",
			What:     "Microsoft has retired uploads from Microsoft Graph, and your tenant answered that it no longer has them: nothing was created or changed.",
			NextStep: "Import the devices instead: the desk checks your CSV file first and sends the devices the way Intune accepts today.",
			Action:   ActionUseDeviceImport,
			Details: "Graph answered " + fmt.Sprint(ge.StatusCode) + ": “" + ge.Message + "” The importedWindowsAutopilotDeviceIdentityUploads collection was removed from Graph's metadata although its documentation page still describes it; " +
				"device import uses importedWindowsAutopilotDeviceIdentities/import, which today's tenants accept."}
	case graphclient.KindNoMethodMatch:
		return Explanation{Title: "Graph does not support this operation here",
			What: "Microsoft Graph has no such operation for this kind of object." + graphSays, NextStep: "Use another operation; this one cannot succeed."}
	case graphclient.KindUnauthorized:
		return Explanation{Title: "Your sign-in has expired", What: "Microsoft Graph did not accept your access token (it expired or was revoked)." + graphSays,
			NextStep: "Sign in again, then repeat what you were doing.", Action: ActionSignInAgain}
	case graphclient.KindConditionalAccess:
		return Explanation{Title: "Your organisation requires a fresh sign-in",
			What:     "A Conditional Access policy asks for stronger or more recent authentication before this change is allowed.",
			NextStep: "Sign in again (you may be asked for multi-factor authentication), then repeat the request.", Action: ActionFreshSignIn}
	case graphclient.KindForbiddenPermission:
		return Explanation{Title: "Autopilot Desk was not granted the permission for this",
			What:     "Your organisation has not granted the desk permission to change Autopilot devices for your sign-in, so Microsoft Graph refused before Intune looked at your role. Nothing was changed.",
			NextStep: "Ask a Global Administrator or Privileged Role Administrator to grant admin consent (Entra admin center › Enterprise applications › Autopilot Desk › Permissions › Grant admin consent), then sign out and sign in again.",
			Details:  "The token answer's granted scopes lack DeviceManagementServiceConfig.ReadWrite.All." + graphSays}
	case graphclient.KindForbiddenRole:
		return Explanation{Title: "Your Intune role does not allow this",
			What:     "The desk has the permission it needs, but Intune refused this for your account: your Intune role does not allow it. Nothing was changed.",
			NextStep: "Ask an Intune administrator to give you " + intuneRole + ", in the Intune admin center under Tenant administration › Roles; then sign out and sign in again.",
			Details:  roleRefusalDetails(ge) + graphSays}
	case graphclient.KindForbiddenLicense:
		return Explanation{Title: "Your tenant has no active Intune licence",
			What:     "Microsoft Graph refuses Intune requests in a tenant without an active Microsoft Intune licence, so nothing was read or changed.",
			NextStep: "Ask whoever manages your Microsoft 365 licences to check the tenant's Intune subscription (Microsoft 365 admin center › Billing › Your products), then try again.",
			Details:  strings.TrimSpace(graphSays)}
	case graphclient.KindNotFound:
		return Explanation{Title: "Graph did not find it",
			What: "Microsoft Graph has no such object (it may have been deleted; right after a create it can take a moment to appear)." + graphSays, NextStep: "Refresh the list and check the id."}
	case graphclient.KindConflict:
		return Explanation{Title: "That conflicts with what already exists",
			What: "Microsoft Graph refused because of the object's current state (for example an id already in use)." + graphSays, NextStep: "Check the current state, then change the request."}
	case graphclient.KindThrottled:
		ex := Explanation{Title: "Microsoft Graph is throttling requests", What: "Your tenant or this app sent more requests than Intune allows in a short window; nothing was changed.",
			NextStep: "Wait a minute and send it again.", Action: ActionTryLater}
		if ge.RetryAfter > 0 {
			ex.NextStep = fmt.Sprintf("Wait %s, then send it again.", Duration(ge.RetryAfter))
		}
		return ex
	case graphclient.KindTooLarge:
		return Explanation{Title: "The request was larger than Microsoft Graph accepts",
			What:     "Microsoft Graph refused the request because of its size, before carrying it out; nothing was changed." + graphSays,
			NextStep: "Send fewer items at once.", Action: ActionCheckInput}
	case graphclient.KindOutcomeUnknown:
		if ge.StatusCode/100 == 2 {
			return Explanation{Title: "Graph did it, but its answer could not be read",
				What:     strings.TrimSpace(ge.Message + " The desk did not send it again."),
				NextStep: "Do not send it again: check the result below.", Action: ActionNone}
		}
		return Explanation{Title: "Graph did not say whether it worked",
			What:     "The request reached Microsoft Graph but no clear answer came back (it timed out or Graph reported a server error), so it may or may not have been carried out. The desk did not send it again.",
			NextStep: "Check the result below before sending anything again.", Action: ActionNone}
	case graphclient.KindServer:
		return Explanation{Title: "Microsoft Graph had a problem", What: "Graph reported a server error; this is not caused by what you sent." + graphSays,
			NextStep: "Try again in a few minutes. If it persists, check the Microsoft 365 service health page and give support the details below.", Action: ActionTryLater}
	case graphclient.KindTimeout:
		return Explanation{Title: "Microsoft Graph did not answer in time", What: "No answer came back before the desk's deadline.",
			NextStep: "Try again in a moment.", Action: ActionTryLater}
	case graphclient.KindNetwork:
		return Explanation{Title: "The desk could not reach Microsoft Graph", What: ge.Message,
			NextStep: "Check the desk's network connection and proxy settings, then try again.", Action: ActionTryLater}
	case graphclient.KindBadResponse:
		return Explanation{Title: "Graph's answer could not be read", What: ge.Message,
			NextStep: "Try again. If it keeps happening, something between the desk and Graph (a proxy) may be rewriting answers.", Action: ActionTryLater}
	}
	return Explanation{Title: "Microsoft Graph refused the request", What: "Graph answered with an error." + graphSays, NextStep: "Check the support details below."}
}

// UploadsMissing reports whether Graph answered that it does not know the uploads collection, as
// today's service does.
func UploadsMissing(ge *graphclient.Error) bool {
	return ge != nil && ge.Kind == graphclient.KindSegmentNotFound && strings.Contains(ge.Message, "importedWindowsAutopilotDeviceIdentityUploads")
}

// ForAction explains a failure of a recorded action: an Autopilot sync Intune refused because one
// ran or is running, a delete of a registration Graph refused and a device change whose answer
// was lost have words of their own.
func ForAction(action string, f Failure) Explanation {
	if f.said == nil && strings.HasPrefix(action, "device-") {
		if ex, ok := deviceChange(action, f); ok {
			return ex
		}
	}
	if action != "sync" || f.said != nil || f.Graph == nil {
		return Explain(f)
	}
	ge := f.Graph
	if ge.Kind == graphclient.KindOutcomeUnknown {
		return Explanation{Title: "No answer came back from the sync",
			What:     "Intune was asked to sync Autopilot devices, but no clear answer came back (it timed out or Graph reported a server error), so the sync may have run or not. The desk did not ask again.",
			NextStep: "Nothing is lost: Intune shows the imported devices after its next sync at the latest. To see them sooner, sync Autopilot devices again in a few minutes.", Action: ActionNone}
	}
	switch ge.StatusCode {
	case 409:
		return Explanation{Title: "A sync is already running",
			What:     "Intune is still running the previous Autopilot sync, so it refused another one. Nothing is lost: the running sync picks up the imported devices.",
			NextStep: syncNext(f), Action: ActionTryLater}
	case 429:
		return Explanation{Title: "Intune allows one sync every 10 minutes",
			What:     "An Autopilot sync ran less than 10 minutes ago. Intune refuses another one until the 10 minutes have passed.",
			NextStep: syncNext(f), Action: ActionTryLater}
	}
	return Explain(f)
}

func syncNext(f Failure) string {
	if wait := f.Graph.RetryAfter; wait > 0 {
		return fmt.Sprintf("Try again after %s UTC (in %s).", f.At.Add(wait).UTC().Format("15:04:05"), Duration(wait))
	}
	return "Wait a few minutes, then sync again."
}

// Trouble is the one line a job page shows while a passing problem holds an import up.
func Trouble(f Failure) string {
	switch {
	case f.said != nil:
		return f.said.Title
	case f.Cause == Unreachable:
		return "The desk could not reach its state database or Microsoft Graph for a moment; it tries again by itself."
	case f.While == Following:
		return Title(f) + "; the desk reads the devices again by itself."
	}
	return Title(f) + "; the desk tries again by itself."
}

// StallAfter is how long a job may go without recording anything, held by a desk, before its
// page says that desk may have stopped. A desk at work records something at least every Graph
// call, which Graph answers within AUTOPILOTDESK_GRAPH_TIMEOUT (30 s by default).
const StallAfter = 45 * time.Second

// Stalled is the line a job page shows while a desk holds the job (what: "import", "bulk
// change") and has recorded nothing since since: if that desk stopped, another takes the job over
// when its hold runs out, at until.
func Stalled(what string, since, until time.Time) string {
	return "Nothing has moved since " + since.UTC().Format("15:04:05") + " UTC. If the desk server working on this " + what +
		" has stopped, another continues it by itself at " + clockUp(until) + " UTC, and sends nothing twice."
}

// AfterImportEnded is e for a batch of an import Graph refused: the import keeps no hardware
// hashes once it has ended, so the way to try again is to upload the file again, not to retry.
func AfterImportEnded(e Explanation) Explanation {
	const again = "upload the file again and import it (an import that has ended keeps no hardware hashes to send)."
	for _, retry := range []string{"; then sign out and sign in again.", ", then sign out and sign in again."} {
		if strings.HasSuffix(e.NextStep, retry) {
			e.NextStep = strings.TrimSuffix(e.NextStep, retry) + "; then sign out, sign in again, and " + again
			return e
		}
	}
	for _, retry := range []string{", then try again.", ", then repeat the request.", ", then repeat what you were doing."} {
		if strings.HasSuffix(e.NextStep, retry) {
			e.NextStep = strings.TrimSuffix(e.NextStep, retry) + "; once that is done, " + again
			return e
		}
	}
	if e.NextStep != "" {
		e.NextStep += " Then " + again
	}
	return e
}

// AfterApproval is e for a batch Graph refused of an import made by approving devices sent from
// the device: nobody has a file to correct or upload again. waitAgain: Graph refused the
// approver's account (RefusedAccount), so the devices wait again under Registration, hashes kept.
func AfterApproval(e Explanation, waitAgain bool) Explanation {
	if waitAgain {
		e.NextStep = "Nothing was imported, and the devices wait again under Registration with their hashes: someone whose Intune role allows importing Autopilot devices approves them there."
		return e
	}
	e.NextStep = "The desk keeps no hardware hashes once an import has ended, so nothing can be sent again from here: " +
		"give the technician a registration code (with the group tag or assigned user corrected, if Graph names one) " +
		"to send the hash again from the device, then approve it under Registration."
	return e
}

// RefusedAccount reports whether Graph refused a step for the account that asked (a 403): an
// approval so refused leaves the devices waiting for someone else to approve them.
func RefusedAccount(f Failure) bool {
	return f.Graph != nil && f.Graph.StatusCode == 403
}

// Wait names why Graph made an import wait.
func Wait(throttled bool) string {
	if throttled {
		return "Microsoft Graph is throttling this tenant"
	}
	return "Microsoft Graph was unavailable"
}
