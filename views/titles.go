package views

import "autopilotdesk/handlers/explain"

// A page's title says what the page is and which object it shows, so tabs, history and a screen
// reader's list of windows tell pages apart (WCAG 2.4.2). The layout adds " · Autopilot Desk".

// ListTitle is a list's page title; a page after the first says so, so its tab and the history
// tell it from the first.
func ListTitle(list string, later bool) string {
	if later {
		return list + " · a later page"
	}
	return list
}

// ImportJobTitle is an import's page title: where it is, and which import (its file,
// and when it was uploaded).
func ImportJobTitle(j ImportJob) string {
	var what string
	switch {
	case j.State == "checking" || j.Checking != nil:
		what = "Checking serial numbers"
	case j.State == "draft":
		what = "Check before importing"
	case j.Finished():
		what = "Import finished"
	default:
		what = "Importing devices"
	}
	if j.FileName != "" {
		return what + " · " + j.FileName + " · " + When(j.Created)
	}
	return what + " · Import of " + When(j.Created)
}

// BulkJobTitle is a bulk change's page title: the question before it is confirmed, then how far
// it has come and the change itself.
func BulkJobTitle(j BulkJob) string {
	if j.State == "draft" {
		return bulkHeading(j)
	}
	return bulkHeading(j) + " · " + explain.Sentence(j.What) + " · " + When(j.Created)
}

// ResultTitle is an action's result page title: what happened, to which object, and when.
func ResultTitle(r Result) string {
	t := resultHeading(r)
	if r.Target != "" {
		t += " · " + r.Target
	}
	return t + " · " + When(r.At)
}
