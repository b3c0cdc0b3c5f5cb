// Package views holds the desk's templ components. Components are pure: data in, HTML out.
package views

import (
	"fmt"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// Page is what the layout needs on every page.
type Page struct {
	Title string
	Nonce string // CSP nonce of this response
	CSRF  string // the session's CSRF token; empty when anonymous
	User  *User  // nil when nobody is signed in
	Demo  bool   // demo mode banner
	// DemoGraph is the host of the Microsoft Graph a demo desk calls instead of its embedded
	// emulator ("" when it calls the emulator).
	DemoGraph string
	Theme     string // "", "light" or "dark" (empty follows the system)
	Assets    Assets
	Nav       string         // key of the current section, for aria-current
	Path      string         // the request path, used as the theme toggle's return target
	Counts    map[string]int // waiting work beside navigation entries, by Nav key
	Wide      bool           // a page of wide tables: the main column takes the window's width
	// FormRestored: the page's form was sent and stopped by a sign-in, and is back unsent (or, for
	// another account's form, is not); nil for a page shown as it is.
	FormRestored *RestoredForm
	// SignedInAgain: the browser opened again a sign-in answer that had signed it in already; the
	// page says the person is signed in and that nothing else happened.
	SignedInAgain bool
}

// RestoredForm says why a page's form came back unsent, and what of it did not.
type RestoredForm struct {
	// Why: RestoredSignedIn, RestoredStale, RestoredForeign, RestoredTooLarge or RestoredPressed.
	Why string
	// NotKept is what the page could not put back, each with how to give it again.
	NotKept []NotKept
}

// Why a form came back unsent.
const (
	// RestoredSignedIn: the session had ended, and the desk signed the person in again.
	RestoredSignedIn = "signed-in"
	// RestoredStale: the page was opened before the person signed in again (in another tab).
	RestoredStale = "stale"
	// RestoredForeign: the form was filled in while another account was signed in: nothing is put back.
	RestoredForeign = "foreign"
	// RestoredTooLarge: the form was too large to keep through the sign-in: nothing is put back.
	RestoredTooLarge = "too-large"
	// RestoredPressed: the form had nothing to fill in (a button): there is nothing to put back.
	RestoredPressed = "pressed"
)

// NotKept is a part of a form the desk does not put back: What it is, and Again, what to do.
type NotKept struct{ What, Again string }

// Sentence is the notice's words after "Nothing was sent."
func (r RestoredForm) Sentence() string {
	var s string
	switch r.Why {
	case RestoredForeign:
		return "The form was filled in while another account was signed in to the desk in this browser, so it belonged to another sign-in: " +
			"the desk did not send it and did not put back what was typed in it. Fill it in again if you need it."
	case RestoredTooLarge:
		return "Your session had ended, so the desk signed you in again, but what you had chosen was too much to keep through the sign-in. Choose it again, then send it."
	case RestoredPressed:
		return "Your session had ended, so the desk signed you in again without carrying out the button you pressed on this page. Press it again if you still need it."
	case RestoredStale:
		s = "This page was opened before you signed in again (in another tab, perhaps), so the desk did not accept the form as it was and put back what you had filled in"
	default:
		s = "Your session had ended, so the desk signed you in again and put back what you had filled in"
	}
	for i, n := range r.NotKept {
		if i == 0 {
			s += ", except " + n.What + ": " + n.Again
		} else {
			s += "; and " + n.What + ": " + n.Again
		}
	}
	return s + ". Check it, then send it again."
}

// Assets are the content-hashed URLs of the static files.
type Assets struct{ CSS, JS, Icon string }

// User is the signed-in person as pages show them.
type User struct {
	Name, UPN string
	Tenant    string // the tenant id, or for a sign-in service without tenants its host
}

// UploadStatuses are the choices of the status select: Graph's upload statuses, in Graph's order,
// with their words.
var UploadStatuses = func() []StatusOption {
	var options []StatusOption
	for _, s := range graphclient.UploadStatuses {
		options = append(options, StatusOption{s, explain.UploadStatus(s).Label})
	}
	return options
}()

// StatusOption is one choice of a select: the value sent, and its words.
type StatusOption struct{ Value, Label string }

// UploadForm is the create form with the user's values and any field messages.
type UploadForm struct {
	CreatedDateTimeUtc string
	Status             string
	ID                 string
	FormKey            string
	Sends              string            // the DateTimeOffset sent for what is typed; "" when it cannot be read
	AssumedUTC         bool              // no offset was typed, so the time is taken as UTC
	Errors             map[string]string // field name -> message
	Failure            *Failure          // Graph refused the last attempt
	NotSaved           bool              // that attempt is not in the team history yet
	UploadsMissing     *UploadsMissing   // the tenant's Graph was seen not to offer uploads
	Access             Access            // read-only: no form, only what was typed
	NotSent            bool              // refused by the desk before anything was sent
}

// HasErrors reports whether any field has a message.
func (f UploadForm) HasErrors() bool { return len(f.Errors) > 0 }

// Failure is a Graph failure explained for the person who caused it.
type Failure struct {
	Explanation explain.Explanation
	Support     graphclient.SupportDetails
	Exchange    *graphclient.Exchange
	Retry       string // the id of the form a passing failure's "Try again" sends again
	Reload      string // the page a passing failure's "Reload" shows again
	RetryURL    string // the page a passing failure's "Try again" opens (a confirmation to send again)
}

// Result is the result page of one recorded action.
type Result struct {
	ActivityID string
	At         time.Time
	ActorName  string
	ActorUPN   string
	Action     string
	Outcome    string
	Summary    string
	Target     string    // the object acted on: an upload's, a device's or a job's id
	CheckedAt  time.Time // when the desk last looked again for a create whose outcome was unknown
	// CanSendAgain: the values a create sent are known, so its form can be shown again with them.
	CanSendAgain bool
	Access       Access // read-only: nothing offered that would change anything
	Upload       *graphclient.Upload
	Failure      *Failure
	Support      graphclient.SupportDetails
	Exchange     *graphclient.Exchange
	NotSaved     bool // the desk could not record it yet: shown from what it kept
	// DeskStep: a step the desk took alone (a registration code made, hashes received): nothing
	// was sent to Microsoft Graph, so there is no answer from Graph and no support ids.
	DeskStep bool
	// Settled: Graph's answer was lost and the desk then looked: Outcome is what it found, and
	// Failure is the lost answer, kept as a detail of the exchange.
	Settled bool
	// Own: the person viewing the record is the one who acted; another's record names them.
	Own bool
	// AskedStatus is the status a change of an upload's status asked for, so it can be sent again.
	AskedStatus string
}

// Home is the signed-in start page.
type Home struct {
	User           User
	Uploads        []graphclient.Upload
	More           bool // Graph listed as many as home asks for: there may be more
	Failure        *Failure
	Access         Access
	UploadsMissing *UploadsMissing // the tenant's Graph was seen not to offer uploads
}

// ErrorPage is any page that explains why a request could not be served, written for the person
// who sees it. A handler returns it as its error and the desk's error handler shows it.
type ErrorPage struct {
	Status     int
	Title      string
	Message    string
	NextStep   string
	ActionURL  string
	ActionText string
	RequestID  string                     // the request's id, which the error handler fills in
	Support    graphclient.SupportDetails // the failed Graph call's ids, when one failed
	Internal   error                      // what went wrong inside, logged and never shown
}

func (e *ErrorPage) Error() string {
	if e.Internal != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Title, e.Internal)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Title)
}

func (e *ErrorPage) Unwrap() error { return e.Internal }

// SignIn is the page that starts sign-in.
type SignIn struct {
	ReturnTo string
	Demo     bool
	Message  string
}
