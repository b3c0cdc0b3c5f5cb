package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// SerialFinder looks serial numbers up among the tenant's registered Autopilot devices, 20 to a
// JSON batch (graphclient's LookUpSerials).
type SerialFinder interface {
	LookUpSerials(ctx context.Context, ts oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error)
}

// serialsFormLimit bounds the form that chooses devices by serial number: a device CSV of a
// bulk change's devices with their hardware hashes (about 4 KB a row) is 4 MB; four times that
// leaves room for a file of the import that holds more devices than one change takes, which
// is then answered with the devices' limit rather than the file's size.
const serialsFormLimit = 16 << 20

// SerialsForm is GET /devices/bulk/serials: the form that chooses a bulk change's devices by
// serial number (with what was typed before a sign-in interrupted it).
func (h *BulkChanges) SerialsForm(c echo.Context) error {
	f := views.BulkSerialsForm{Action: bulk.ActionGroupTag}
	if pending, ok := web.TakePendingForm(c); ok {
		f.Text, f.HashesLeft = shownSerials(pending.Get("serials"))
		f.Action, f.GroupTag = cmp.Or(pending.Get("action"), bulk.ActionGroupTag), pending.Get("groupTag")
		web.NotPutBack(c, "the file you chose, which a browser does not keep", "choose the file again")
	}
	return h.renderSerials(c, http.StatusOK, f)
}

func (h *BulkChanges) renderSerials(c echo.Context, status int, f views.BulkSerialsForm) error {
	f.Access, f.Max = accessOf(c), maxBulkDevices
	if h.Budget != nil {
		f.Budget = h.Budget.Describe()
	}
	return web.Render(c, status, views.BulkSerialsPage(web.PageFor(c, "Choose devices by serial number", "devices"), f))
}

// shownSerials is the text typed as the form shows it again: as typed, unless it is a device CSV
// with hardware hashes, which are never shown back; then its serial numbers alone, one a line
// (left reports it).
func shownSerials(typed string) (text string, left bool) {
	l := devicecsv.ReadSerials(typed)
	if !l.Hashes {
		return typed, false
	}
	serials := make([]string, 0, len(l.Serials))
	for _, s := range l.Serials {
		if s.Value != "" {
			serials = append(serials, s.Value)
		}
	}
	return strings.Join(serials, "\n"), true
}

// serialEntries are the serial numbers a form gave, each where it was, after reading them.
type serialEntries struct {
	serials []string          // each serial number that can be looked up, once, in the order given
	choice  bulk.SerialChoice // what else the list held: repeated, invalid and blank entries
}

// readSerialEntries reads the typed list and the file's serial numbers; the problems are the
// form's, by field ("" file name when no file was chosen).
func readSerialEntries(c echo.Context, typed string) (serialEntries, string, map[string]string) {
	problems := map[string]string{}
	var out serialEntries
	first := map[string]string{} // where each serial number came first, by its upper case
	add := func(l devicecsv.SerialList, where func(line int) string) {
		for _, line := range l.Blank {
			out.choice.Blank = append(out.choice.Blank, where(line))
		}
		for _, s := range l.Serials {
			at := where(s.Line)
			if s.Value == "" {
				out.choice.LeftOut = append(out.choice.LeftOut, bulk.SerialEntry{Where: at, Why: "this row has no serial number."})
				continue
			}
			if why := devicecsv.SerialProblem("Serial number", s.Value); why != "" {
				out.choice.LeftOut = append(out.choice.LeftOut, bulk.SerialEntry{Where: at, Why: why})
				continue
			}
			key := strings.ToUpper(s.Value)
			if was, seen := first[key]; seen {
				out.choice.LeftOut = append(out.choice.LeftOut, bulk.SerialEntry{Where: at, Serial: s.Value, Why: "repeats " + was + "; it was looked up once."})
				continue
			}
			first[key] = at
			out.serials = append(out.serials, s.Value)
		}
	}
	fileName := ""
	var file devicecsv.SerialList
	if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
		fileName = importer.CleanFileName(fh.Filename)
		data, err := readSerialFile(fh)
		switch {
		case err != nil:
			problems["file"] = err.Error()
		default:
			if file = devicecsv.ReadSerialFile(data); file.Fatal != "" {
				problems["file"] = fileName + ": " + file.Fatal
			}
		}
	}
	add(devicecsv.ReadSerials(typed), func(line int) string { return fmt.Sprintf("line %d", line) })
	if problems["file"] == "" {
		add(file, func(line int) string { return fmt.Sprintf("line %d of %s", line, fileName) })
	}
	switch {
	case len(problems) > 0:
	case len(out.serials) == 0 && len(out.choice.LeftOut) == 0:
		problems["serials"] = "Paste or type the serial numbers, or choose a file that lists them: none was given."
	case len(out.serials) == 0:
		e := out.choice.LeftOut[0]
		problems["serials"] = "None of the entries is a serial number the desk can look up. " + explain.Sentence(e.Where) + ": " + e.Why
	case len(out.serials) > maxBulkDevices:
		problems["serials"] = fmt.Sprintf("A bulk change takes at most %s devices, and these are %s different serial numbers. Split them into parts of at most %s and make one change for each part.",
			explain.Number(maxBulkDevices), explain.Number(len(out.serials)), explain.Number(maxBulkDevices))
	}
	out.choice.Given = len(out.serials)
	return out, fileName, problems
}

// readSerialFile reads a chosen file, bounded by the form's own limit.
func readSerialFile(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, errors.New("The file could not be read. Choose it again.")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, serialsFormLimit))
	if err != nil {
		return nil, errors.New("The file could not be read. Choose it again.")
	}
	return data, nil
}

// FromSerials is POST /devices/bulk/serials: the serial numbers typed or in a file, and the
// change to make. They are looked up among the registered devices (20 to a JSON batch), and the
// devices found become a draft like one chosen on the list: nothing changes until its owner
// confirms it. Every problem shows the form again with what was typed.
func (h *BulkChanges) FromSerials(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/devices/bulk/serials", "Back to the form")
	}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	typed := form.Get("serials")
	choice, problems := readBulkAction(form, "devices found")
	f := views.BulkSerialsForm{Action: cmp.Or(choice.action, c.FormValue("action")), GroupTag: c.FormValue("groupTag")}
	f.Text, f.HashesLeft = shownSerials(typed)
	entries, fileName, listProblems := readSerialEntries(c, typed)
	f.FileName = fileName
	for k, v := range listProblems {
		problems[k] = v
	}
	if len(problems) > 0 {
		f.Problems = problems
		return h.renderSerials(c, http.StatusUnprocessableEntity, f)
	}
	if held := h.held(c); held != nil {
		f.Failure = &views.Failure{Explanation: *held}
		return h.renderSerials(c, http.StatusTooManyRequests, f)
	}
	holdOnThrottling(c, h.Holds, h.Now)
	ctx := c.Request().Context()
	found, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) ([]graphclient.SerialLookup, *graphclient.Exchange, error) {
		found, exs, err := h.Serials.LookUpSerials(ctx, ts, entries.serials, graphclient.InRegistered)
		return found, lastExchange(exs), err
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	p := bulk.Payload{Serials: &entries.choice}
	unread := 0
	var devices []store.BulkDevice
	seen := map[string]bool{}
	for _, l := range found {
		switch {
		case l.Err != nil && !unsearchableSerial(l.Err):
			unread++
			err = cmp.Or(err, l.Err)
		case l.Err != nil:
			ge, _ := graphclient.AsError(l.Err)
			p.Serials.LeftOut = append(p.Serials.LeftOut, bulk.SerialEntry{Where: "serial number " + l.Serial, Why: ge.Message})
		case len(l.Registered) == 0:
			p.Serials.NotFound = append(p.Serials.NotFound, l.Serial)
		}
		for i := range l.Registered {
			d := &l.Registered[i]
			if seen[strings.ToLower(d.ID)] {
				continue
			}
			seen[strings.ToLower(d.ID)] = true
			devices = takeDevice(devices, &p, choice.action, d)
		}
	}
	if err != nil {
		e := explain.Explain(failureFacts(err, h.Now()))
		e.Title = "The serial numbers could not be looked up: " + e.Title
		if unread > 0 && unread < len(entries.serials) {
			e.Title = fmt.Sprintf("%d of the %d serial numbers could not be looked up: %s", unread, len(entries.serials), strings.TrimPrefix(e.Title, "The serial numbers could not be looked up: "))
		}
		e.What = explain.NothingChanged(e.What)
		e.NextStep = cmp.Or(e.NextStep, "Choose “Find the devices…” again.")
		f.Failure = &views.Failure{Explanation: e, Support: graphclient.SupportFor(ex, err), Exchange: ex}
		return h.renderSerials(c, failureStatus(err), f)
	}
	switch {
	case len(devices) == 0 && len(p.NoUser) > 0:
		f.Problems = map[string]string{"serials": "None of the devices found has a user assigned, so there is no user to unassign."}
	case len(devices) == 0:
		f.Problems = map[string]string{"serials": "None of these serial numbers is registered in Autopilot in your tenant. Check them, or import the devices first."}
		f.NotFound = p.Serials.NotFound
	case len(devices) > maxBulkDevices:
		f.Problems = map[string]string{"serials": fmt.Sprintf("These serial numbers are those of %s registered devices, and a bulk change takes at most %s. Split them into parts and make one change for each part.",
			explain.Number(len(devices)), explain.Number(maxBulkDevices))}
	}
	if f.Problems != nil {
		return h.renderSerials(c, http.StatusUnprocessableEntity, f)
	}
	return h.saveDraft(c, choice.action, choice.tag, p, devices)
}

// unsearchableSerial reports whether a serial number could not be looked up for what it is
// (more devices contain it than the desk reads), rather than because Graph had trouble.
func unsearchableSerial(err error) bool {
	ge, ok := graphclient.AsError(err)
	return ok && ge.Kind == graphclient.KindInvalidInput
}

// takeDevice adds d, as Graph has it now, to the devices of a change that does action; a device
// with no user to unassign is named in p instead.
func takeDevice(devices []store.BulkDevice, p *bulk.Payload, action string, d *graphclient.AutopilotDevice) []store.BulkDevice {
	if action == bulk.ActionUnassign && d.UserPrincipalName == "" {
		p.NoUser = append(p.NoUser, cmp.Or(d.SerialNumber, d.ID))
		return devices
	}
	return append(devices, store.BulkDevice{DeviceID: d.ID, Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Model: d.Model,
		GroupTag: d.GroupTag, UserPrincipalName: d.UserPrincipalName, EnrollmentState: string(d.EnrollmentState),
		BulkOutcome: store.BulkOutcome{State: bulk.DeviceQueued}})
}
