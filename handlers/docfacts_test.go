package handlers

import (
	"os"
	"strings"
	"testing"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// The documentation's caps of the devices list and of a bulk change are the handlers'.
func TestDocumentedDeviceCapsAreTheHandlers(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(string(b)), " ")
	}
	readme, walkthrough := read("../README.md"), read("../docs/walkthrough.md")
	for _, c := range []struct{ doc, name, says string }{
		{readme, "README.md", "up to " + explain.Number(maxListDevices) + " devices"},
		{walkthrough, "docs/walkthrough.md", "at most " + explain.Number(maxListPages) + " of Graph's pages, " + explain.Number(maxListDevices) + " devices"},
		{walkthrough, "docs/walkthrough.md", "One change takes at most " + explain.Number(maxBulkDevices) + " devices"},
		{walkthrough, "docs/walkthrough.md", "a list of more than " + explain.Number(maxBulkDevices) + " different serial numbers is refused"},
		{walkthrough, "docs/walkthrough.md", "20 to a Microsoft Graph request (500 serial numbers take " + explain.Number(500/graphclient.BatchLimit) + " requests"},
	} {
		if !strings.Contains(c.doc, c.says) {
			t.Errorf("%s does not say %q", c.name, c.says)
		}
	}
}
