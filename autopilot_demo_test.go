package main

import (
	"context"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// adminToken signs the admin in through the desk and takes the access token the demo identity
// provider issued for it, so a test can call the demo Graph with the desk's own client.
func (d *desk) adminToken() oauth2.TokenSource {
	d.t.Helper()
	d.signIn(d.browser(), demoidp.AdminKey, "/")
	for _, tok := range d.app.demo.IdP.IssuedTokens() {
		if info, err := d.app.demo.IdP.VerifyAccessToken(tok); err == nil && info.ObjectID == demoidp.AdminObjectID {
			return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})
		}
	}
	d.t.Fatal("the admin got no access token")
	return nil
}

// The demo tenant has registered devices to show, and a device imported in the demo becomes one
// of them once its import completes, so the demo connects from import to device.
func TestDemoImportBecomesARegisteredDevice(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	ts := d.adminToken()
	ctx := context.Background()
	seeded := emulator.DemoAutopilotDevices(time.Now())
	page, _, err := d.app.graph.ListAutopilotDevices(ctx, ts, graphclient.AutopilotDeviceQuery{})
	if err != nil || len(page.Devices) != len(seeded) {
		t.Fatalf("demo tenant lists %d registered devices, want %d: %v", len(page.Devices), len(seeded), err)
	}
	imported, _, err := d.app.graph.ImportDeviceIdentities(ctx, ts, []graphclient.DeviceIdentity{
		{SerialNumber: "DEMO-NEW-0001", HardwareIdentifier: make([]byte, 3000), GroupTag: "Sales"},
		{SerialNumber: seeded[0].SerialNumber, HardwareIdentifier: append(make([]byte, 2999), 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	found, _, err := d.app.graph.LookUpSerials(ctx, ts, []string{"DEMO-NEW-0001", seeded[0].SerialNumber}, graphclient.InRegistered|graphclient.InImported)
	if err != nil {
		t.Fatal(err)
	}
	newDevice, known := found[0], found[1]
	if len(newDevice.Registered) != 1 || newDevice.Registered[0].GroupTag != "Sales" || len(newDevice.Imported) != 1 ||
		newDevice.Registered[0].ID != newDevice.Imported[0].State.DeviceRegistrationID {
		t.Errorf("the imported device: %+v", newDevice)
	}
	if len(known.Registered) != 1 || len(known.Imported) != 1 || known.Imported[0].State.DeviceErrorCode != 806 {
		t.Errorf("a seeded serial imported again: %+v (import answered %+v)", known, imported[1].State)
	}
}
