package views

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"autopilotdesk/graphclient"
)

var benchPage = Page{Title: "Create upload", Nonce: "bench-nonce", CSRF: "bench-csrf-token-0123456789abcdefghijklmnopq",
	User: &User{Name: "Adele Vance", UPN: "AdeleV@contoso.example", Tenant: "00000000-0000-0000-0000-000000000001"},
	Demo: true, Assets: Assets{CSS: "/static/app.0123abcd.css", JS: "/static/app.0123abcd.js", Icon: "/static/favicon.0123abcd.svg"},
	Nav: "create", Path: "/uploads/new"}

func BenchmarkUploadFormPage(b *testing.B) {
	form := UploadForm{CreatedDateTimeUtc: "2026-11-28T12:00:00Z", Status: "pending", FormKey: "bench-form-key-0123456789abcdefghijklmnopqr"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := UploadFormPage(benchPage, form).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultPage renders a created upload with its exchange, as the desk shows it after a create.
func BenchmarkResultPage(b *testing.B) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const id = "8d639524-9524-8d63-2495-638d2495638d"
	body := []byte(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/$entity",` +
		`"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","id":"` + id + `","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`)
	ex := &graphclient.Exchange{Attempts: []graphclient.Attempt{{
		Method: "POST", URL: "https://graph.microsoft.com/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads",
		RequestHeader: http.Header{"Authorization": {"Bearer <redacted>"}, "Accept": {"application/json"}, "Content-Type": {"application/json"},
			"Client-Request-Id": {"5f1c3e2a-1b2c-4d5e-8f90-123456789abc"}, "User-Agent": {"AutopilotDesk/1.0"}},
		RequestBody: []byte(`{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`),
		Proto:       "HTTP/1.1", StatusCode: 201, Status: "201 Created",
		ResponseHeader: http.Header{"Content-Type": {"application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"},
			"Request-Id": {"0b8e2c1a-4d3f-4e5a-9b6c-7d8e9f0a1b2c"}, "Client-Request-Id": {"5f1c3e2a-1b2c-4d5e-8f90-123456789abc"},
			"Date": {"Sat, 28 Nov 2026 12:00:00 GMT"}, "X-Ms-Ags-Diagnostic": {`{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"001","RoleInstance":"AM2PEPF0000ABCD"}}`},
			"Strict-Transport-Security": {"max-age=31536000"}, "Cache-Control": {"no-cache"}},
		ResponseBody: body, Start: at, Duration: 212 * time.Millisecond,
	}}}
	r := Result{ActivityID: "a1b2c3", At: at, ActorName: "Adele Vance", ActorUPN: "AdeleV@contoso.example", Action: "create",
		Outcome: "success", Summary: "Created upload " + id + " with status pending.",
		Upload: &graphclient.Upload{ID: id, CreatedDateTimeUtc: "2016-12-31T23:59:45.8788427-08:00", Status: "pending"},
		Support: graphclient.SupportDetails{Status: 201, RequestID: "0b8e2c1a-4d3f-4e5a-9b6c-7d8e9f0a1b2c", ClientRequestID: "5f1c3e2a-1b2c-4d5e-8f90-123456789abc",
			Date: "Sat, 28 Nov 2026 12:00:00 GMT", Version: "v1.0"},
		Exchange: ex}
	p := benchPage
	p.Title, p.Nav, p.Path = "Upload created", "", "/activity/a1b2c3"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := ResultPage(p, r).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
