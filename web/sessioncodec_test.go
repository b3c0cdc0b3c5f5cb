package web

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSessionCodecRoundTrip(t *testing.T) {
	values := map[any]any{
		valUser:               SessionUser{TenantID: "t", ObjectID: "o", Name: "Megan Bowen", UPN: "megan@contoso.example", Groups: []string{"g1", "g2"}},
		valTokens:             SessionTokens{AccessToken: "at", RefreshToken: "rt", IDToken: "idt", TokenType: "Bearer", Expiry: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)},
		valCSRF:               "csrf-token",
		"pending-upload-form": `{"status":"pending"}`,
	}
	data, err := SessionCodec{}.Encode(values)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SessionCodec{}.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, values) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, values)
	}
	empty, err := SessionCodec{}.Decode([]byte(`{}`))
	if err != nil || len(empty) != 0 {
		t.Errorf("empty record: %v %v", empty, err)
	}
}

func TestSessionCodecRefusesWhatItCannotKeep(t *testing.T) {
	for name, values := range map[string]map[any]any{
		"non-string key":           {42: "v"},
		"unknown type":             {"count": 3},
		"user under another key":   {"someone": SessionUser{}},
		"tokens under another key": {"t": SessionTokens{}},
		"string as the user":       {valUser: "megan"},
	} {
		if _, err := (SessionCodec{}).Encode(values); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	for _, data := range []string{"", "not json", `{"user":"megan"}`, "\x0d\xff\x81"} {
		if _, err := (SessionCodec{}).Decode([]byte(data)); err == nil || !strings.Contains(err.Error(), "session record") {
			t.Errorf("decoded %q: %v", data, err)
		}
	}
}
