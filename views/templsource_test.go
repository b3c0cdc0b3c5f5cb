package views

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// templ drops the line break between a component call and the words on the line before or after
// it, so "UTC" and a component that writes an address read "UTC127.0.0.1". A component that
// stands beside words therefore gets its space from an expression or an element, never from a
// line break; this test finds the line breaks that would have had to give it.
func TestNoComponentLeansOnALineBreakForItsSpace(t *testing.T) {
	files, err := filepath.Glob("*.templ")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templ files: %v", err)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range wordsBesideComponents(string(src)) {
			t.Errorf("%s:%d: words and a component meet at a line break, which templ drops", name, at)
		}
	}
}

// The hazard itself, on a made-up source, so the test above cannot pass by finding nothing.
func TestWordsBesideComponentsAreFound(t *testing.T) {
	src := "templ a() {\n\t<p>\n\t\tModel ·\n\t\t@badge()\n\t\t@badge()\n\t\tthen words\n\t</p>\n\t<p>\n\t\t@badge()\n\t\t<span>x</span>\n\t\tif ok {\n\t\t\t@badge()\n\t\t}\n\t\t{ x }\n\t\t@badge()\n\t\t{ \" \" }\n\t</p>\n}\n"
	if got := wordsBesideComponents(src); !slices.Equal(got, []int{4, 6, 15}) {
		t.Errorf("found at lines %v, want 4, 6 and 15", got)
	}
}

var (
	componentCall = regexp.MustCompile(`^@[\w.]+\(.*\)$`)
	// Lines that are templ or Go statements, or end with markup, rather than words.
	// An expression that starts with a space gives its own, as `{ " " }` does.
	explicitSpace = regexp.MustCompile(`^\{ "\s`)
	statementLine = regexp.MustCompile(`^(\}|if |else|for |switch |case |default:|//|templ |func |@)|[>{]$`)
)

// wordsBesideComponents gives the lines (from 1) where a component call meets words on the line
// before or after it.
func wordsBesideComponents(src string) []int {
	lines := strings.Split(src, "\n")
	var at []int
	for i := 1; i < len(lines); i++ {
		prev, cur := strings.TrimSpace(lines[i-1]), strings.TrimSpace(lines[i])
		if prev == "" || cur == "" {
			continue
		}
		switch {
		case componentCall.MatchString(cur) && !statementLine.MatchString(prev):
			at = append(at, i+1)
		case componentCall.MatchString(prev) && !statementLine.MatchString(cur) && !strings.HasPrefix(cur, "<") && !explicitSpace.MatchString(cur):
			at = append(at, i+1)
		}
	}
	return at
}
