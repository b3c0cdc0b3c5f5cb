package handlers

import "testing"

// Every cell of the report is formula-safe (OWASP's CSV injection guidance).
func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\t=1": "'\t=1", "\r=1": "' =1", "  =1": "'  =1",
		"＝1": "'＝1", "a=1": "a=1", "": "", "SN-1": "SN-1", "line\n=2": "line =2",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
