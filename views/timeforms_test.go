package views

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Pages give a moment in one form (When's: "2 Jan 2006 15:04:05 UTC"), or a day alone; a moment
// written another way ("30 November 14:31", no year) reads as another kind of time. The words
// for a technician's console (handlers/registration/text.go) have their own.
func TestPagesWriteTimesInOneForm(t *testing.T) {
	allowed := map[string]bool{"2 Jan 2006 15:04:05": true, "2 Jan 2006 15:04:05 UTC": true, "2 Jan 2006": true}
	layout := regexp.MustCompile(`\.Format\("([^"]*)"\)`)
	found := 0
	for _, root := range []string{".", "../handlers"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") ||
				!(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".templ")) || filepath.ToSlash(path) == "../handlers/registration/text.go" {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range layout.FindAllStringSubmatch(string(src), -1) {
				if !strings.Contains(m[1], "Jan") {
					continue // not a date a person reads (an id, an ISO time for a machine)
				}
				found++
				if !allowed[m[1]] {
					t.Errorf("%s writes a time as %q, not in the pages' one form", path, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found == 0 {
		t.Fatal("no time layouts found: the test reads the wrong folders")
	}
}
