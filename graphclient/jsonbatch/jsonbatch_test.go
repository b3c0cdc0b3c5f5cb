package jsonbatch

import (
	"encoding/json"
	"testing"
)

// The names are Graph's (https://learn.microsoft.com/graph/json-batching): a request without
// headers, body or dependencies carries none of them.
func TestWireNamesAreGraphs(t *testing.T) {
	b, err := json.Marshal(Batch{Requests: []Request{
		{ID: "1", Method: "GET", URL: "/users"},
		{ID: "2", Method: "POST", URL: "/groups", Headers: map[string]string{"Content-Type": "application/json"}, Body: json.RawMessage(`{}`), DependsOn: []string{"1"}},
	}})
	want := `{"requests":[{"id":"1","method":"GET","url":"/users"},` +
		`{"id":"2","method":"POST","url":"/groups","headers":{"Content-Type":"application/json"},"body":{},"dependsOn":["1"]}]}`
	if err != nil || string(b) != want {
		t.Fatalf("batch = %s (%v), want %s", b, err, want)
	}
	var a Answer
	err = json.Unmarshal([]byte(`{"responses":[{"id":"2","status":424},{"id":"1","status":200,"headers":{"Content-Type":"application/json"},"body":{"value":[]}}]}`), &a)
	if err != nil || len(a.Responses) != 2 || a.Responses[0].Status != 424 || a.Responses[1].Headers["Content-Type"] != "application/json" || string(a.Responses[1].Body) != `{"value":[]}` {
		t.Fatalf("answer = %+v (%v)", a, err)
	}
}
