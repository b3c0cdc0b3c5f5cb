package importer

import (
	"strings"
	"unicode"
)

// Where an import's rows came from when they did not come from a file.
const (
	SourcePasted    = "Pasted text"
	SourceOneDevice = "One device"
)

// maxFileName bounds, in characters, the file name an import keeps and shows.
const maxFileName = 120

// CleanFileName is a file name as a browser sent it, made safe to show and to name a download
// by: no folder, no control or invisible formatting characters (a right-to-left override can
// disguise ".csv"), none of the characters Windows refuses in a file name (quotes among them),
// whitespace runs as one space, at most maxFileName characters with its end (the extension)
// kept. It is "" when nothing usable is left.
func CleanFileName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), strings.ContainsRune(`"*:<>?|`, r):
			return -1
		}
		return r
	}, name)
	name = strings.Trim(strings.Join(strings.Fields(name), " "), ". ")
	if r := []rune(name); len(r) > maxFileName {
		name = string(r[:maxFileName-16]) + "…" + string(r[len(r)-15:])
	}
	return name
}

// FileName is the name of the file the rows came from, cleaned; "" when they were pasted, typed
// or approved from registration codes, or the file had no usable name.
func (p Payload) FileName() string {
	if !p.fromFile() {
		return ""
	}
	return CleanFileName(p.Source)
}

// Shown is what the rows came from, as a list names it: the file's name, or how they came; ""
// when nothing tells.
func (p Payload) Shown() string {
	if !p.fromFile() {
		return p.Source
	}
	return CleanFileName(p.Source)
}

func (p Payload) fromFile() bool {
	return p.Source != SourcePasted && p.Source != SourceOneDevice && p.ApprovedFrom == ""
}

// fromFile names the file an import's rows came from in a sentence: ` from “batch-a.csv”`, or
// nothing when they were not a file's.
func fromFile(name string) string {
	if name == "" {
		return ""
	}
	return " from" + named(name)
}

// named is a file's name quoted in a sentence, after a space; nothing when there is none.
func named(name string) string {
	if name == "" {
		return ""
	}
	return " “" + name + "”"
}
