package sdkcheck

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/devicemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

const redirectURI = "http://127.0.0.1/sdkcheck/callback"

// graph is the emulator and the demo identity provider on one loopback server, as the
// `autopilotdesk emulator` command serves them.
type graph struct {
	srv *httptest.Server
	idp *demoidp.Provider
	emu *emulator.Emulator
}

func startGraph(t *testing.T) *graph {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	pair, err := demo.New(base, demo.Options{ClientID: "sdkcheck", ClientSecret: "sdkcheck-secret", RedirectURIs: []string{redirectURI},
		Emulator: emulator.Options{PageSize: 5, ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = pair.Handler
	srv.Start()
	t.Cleanup(srv.Close)
	return &graph{srv: srv, idp: pair.IdP, emu: pair.Emulator}
}

// signIn gets the admin's access token the way a confidential web client does: authorization
// code with PKCE, the account picked by login_hint, the code redeemed at the token endpoint.
func (g *graph) signIn(t *testing.T, identityKey string) string {
	t.Helper()
	ctx := context.Background()
	conf := oauth2.Config{ClientID: "sdkcheck", ClientSecret: "sdkcheck-secret", RedirectURL: redirectURI,
		Scopes: []string{"openid", "profile", "offline_access", "https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All"},
		Endpoint: oauth2.Endpoint{
			AuthURL:  g.srv.URL + "/" + demoidp.DemoTenantID + "/oauth2/v2.0/authorize",
			TokenURL: g.srv.URL + "/" + demoidp.DemoTenantID + "/oauth2/v2.0/token",
		}}
	verifier := oauth2.GenerateVerifier()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	authURL := conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", base64.RawURLEncoding.EncodeToString(nonce)), oauth2.SetAuthURLParam("login_hint", identityKey))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// staticToken hands the SDK one access token for the emulator's host only.
type staticToken struct {
	token string
	hosts *authentication.AllowedHostsValidator
}

func (s staticToken) GetAuthorizationToken(_ context.Context, u *url.URL, _ map[string]any) (string, error) {
	if !s.hosts.IsUrlHostValid(u) {
		return "", nil
	}
	return s.token, nil
}

func (s staticToken) GetAllowedHostsValidator() *authentication.AllowedHostsValidator { return s.hosts }

// sdkClient is the SDK as an application builds it, with its default middleware (retry,
// redirect, request body compression, …), pointed at the emulator over plain loopback HTTP.
func (g *graph) sdkClient(t *testing.T, token string) (*msgraphsdk.GraphServiceClient, *msgraphsdk.GraphRequestAdapter) {
	t.Helper()
	u, _ := url.Parse(g.srv.URL)
	hosts, err := authentication.NewAllowedHostsValidatorErrorCheck([]string{u.Hostname()})
	if err != nil {
		t.Fatal(err)
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapter(authentication.NewBaseBearerTokenAuthenticationProvider(staticToken{token, hosts}))
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(g.srv.URL + "/v1.0")
	return msgraphsdk.NewGraphServiceClient(adapter), adapter
}

func hash(seed string) []byte {
	var b []byte
	sum := sha256.Sum256([]byte(seed))
	for len(b) < 3000 {
		b = append(b, sum[:]...)
		sum = sha256.Sum256(sum[:])
	}
	return b
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// graphStatus is the HTTP status of an SDK error, or 0.
func graphStatus(err error) int {
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		return oe.ResponseStatusCode
	}
	return 0
}

func TestOfficialSDKDrivesTheEmulator(t *testing.T) {
	g := startGraph(t)
	client, adapter := g.sdkClient(t, g.signIn(t, demoidp.AdminKey))
	ctx := context.Background()
	dm := client.DeviceManagement()

	t.Run("imported identities: create, import, list, get, count, delete", func(t *testing.T) {
		one := models.NewImportedWindowsAutopilotDeviceIdentity()
		one.SetSerialNumber(ptr("SDK-CREATE-1"))
		one.SetHardwareIdentifier(hash("create"))
		one.SetGroupTag(ptr("Sales"))
		created, err := dm.ImportedWindowsAutopilotDeviceIdentities().Post(ctx, one, nil)
		if err != nil {
			t.Fatal(err)
		}
		if str(created.GetId()) == "" || str(created.GetSerialNumber()) != "SDK-CREATE-1" || created.GetState() == nil {
			t.Fatalf("created %+v", created)
		}

		body := devicemanagement.NewImportedWindowsAutopilotDeviceIdentitiesImportPostRequestBody()
		var batch []models.ImportedWindowsAutopilotDeviceIdentityable
		for _, serial := range []string{"SDK-IMPORT-1", "SDK-IMPORT-2"} {
			d := models.NewImportedWindowsAutopilotDeviceIdentity()
			d.SetSerialNumber(ptr(serial))
			d.SetHardwareIdentifier(hash(serial))
			d.SetAssignedUserPrincipalName(ptr("AdeleV@contoso.example"))
			batch = append(batch, d)
		}
		body.SetImportedWindowsAutopilotDeviceIdentities(batch)
		imported, err := dm.ImportedWindowsAutopilotDeviceIdentities().ImportEscaped().PostAsImportPostResponse(ctx, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(imported.GetValue()) != 2 {
			t.Fatalf("import answered %d devices", len(imported.GetValue()))
		}
		time.Sleep(10 * time.Millisecond) // the emulator's import finishes

		list, err := dm.ImportedWindowsAutopilotDeviceIdentities().Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var serials []string
		for _, d := range list.GetValue() {
			serials = append(serials, str(d.GetSerialNumber()))
			if st := d.GetState(); st == nil || st.GetDeviceImportStatus() == nil || *st.GetDeviceImportStatus() != models.COMPLETE_IMPORTEDWINDOWSAUTOPILOTDEVICEIDENTITYIMPORTSTATUS {
				t.Errorf("%s: state %+v", str(d.GetSerialNumber()), st)
			}
		}
		slices.Sort(serials)
		if !slices.Equal(serials, []string{"SDK-CREATE-1", "SDK-IMPORT-1", "SDK-IMPORT-2"}) {
			t.Errorf("listed %v", serials)
		}
		id := str(imported.GetValue()[0].GetId())
		got, err := dm.ImportedWindowsAutopilotDeviceIdentities().ByImportedWindowsAutopilotDeviceIdentityId(id).Get(ctx, nil)
		if err != nil || str(got.GetSerialNumber()) != "SDK-IMPORT-1" || string(got.GetHardwareIdentifier()) != string(hash("SDK-IMPORT-1")) {
			t.Errorf("get %v: %v", got, err)
		}
		n, err := dm.ImportedWindowsAutopilotDeviceIdentities().Count().Get(ctx, nil)
		if err != nil || n == nil || *n != 3 {
			t.Errorf("count %v %v", n, err)
		}
		if err := dm.ImportedWindowsAutopilotDeviceIdentities().ByImportedWindowsAutopilotDeviceIdentityId(id).Delete(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, err = dm.ImportedWindowsAutopilotDeviceIdentities().ByImportedWindowsAutopilotDeviceIdentityId(id).Get(ctx, nil)
		if graphStatus(err) != http.StatusNotFound {
			t.Errorf("after delete: %v", err)
		}
	})

	t.Run("uploads: the v1.0 SDK has no request builder, so the seed request goes through its adapter", func(t *testing.T) {
		up := models.NewImportedWindowsAutopilotDeviceIdentityUpload()
		created := time.Date(2016, 12, 31, 23, 59, 45, 878842700, time.FixedZone("", -8*3600))
		up.SetCreatedDateTimeUtc(&created)
		status := models.PENDING_IMPORTEDWINDOWSAUTOPILOTDEVICEIDENTITYUPLOADSTATUS
		up.SetStatus(&status)
		ri := abstractions.NewRequestInformationWithMethodAndUrlTemplateAndPathParameters(abstractions.POST,
			"{+baseurl}/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads", map[string]string{"baseurl": adapter.GetBaseUrl()})
		ri.Headers.TryAdd("Accept", "application/json")
		if err := ri.SetContentFromParsable(ctx, adapter, "application/json", up); err != nil {
			t.Fatal(err)
		}
		// The SDK writes DateTimeOffset values to the second (RFC 3339 without a fraction).
		res, err := adapter.Send(ctx, ri, models.CreateImportedWindowsAutopilotDeviceIdentityUploadFromDiscriminatorValue,
			abstractions.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue})
		if err != nil {
			t.Fatal(err)
		}
		u := res.(models.ImportedWindowsAutopilotDeviceIdentityUploadable)
		if str(u.GetId()) == "" || u.GetStatus() == nil || *u.GetStatus() != status || u.GetCreatedDateTimeUtc() == nil || !u.GetCreatedDateTimeUtc().Equal(created.Truncate(time.Second)) {
			t.Errorf("upload %v %v %v", str(u.GetId()), u.GetStatus(), u.GetCreatedDateTimeUtc())
		}
	})

	var target models.WindowsAutopilotDeviceIdentityable
	t.Run("registered devices: every page, filter, count, get", func(t *testing.T) {
		first, err := dm.WindowsAutopilotDeviceIdentities().Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		it, err := msgraphcore.NewPageIterator[models.WindowsAutopilotDeviceIdentityable](first, adapter, models.CreateWindowsAutopilotDeviceIdentityCollectionResponseFromDiscriminatorValue)
		if err != nil {
			t.Fatal(err)
		}
		var all []models.WindowsAutopilotDeviceIdentityable
		if err := it.Iterate(ctx, func(d models.WindowsAutopilotDeviceIdentityable) bool { all = append(all, d); return true }); err != nil {
			t.Fatal(err)
		}
		// The seeded tenant plus the three devices created and imported above, registered once their
		// import completed.
		if want := len(emulator.DemoAutopilotDevices(time.Now())) + 3; len(all) != want {
			t.Errorf("paged through %d devices, want %d", len(all), want)
		}
		states := map[models.EnrollmentState]bool{}
		for _, d := range all {
			if d.GetEnrollmentState() == nil || str(d.GetManufacturer()) == "" || d.GetLastContactedDateTime() == nil {
				t.Errorf("%s: state %v, manufacturer %q, last contacted %v", str(d.GetSerialNumber()), d.GetEnrollmentState(), str(d.GetManufacturer()), d.GetLastContactedDateTime())
				continue
			}
			states[*d.GetEnrollmentState()] = true
			if *d.GetEnrollmentState() == models.NOTCONTACTED_ENROLLMENTSTATE && target == nil {
				target = d
			}
		}
		if len(states) != 5 {
			t.Errorf("enrollment states seen: %v", states)
		}
		filter := "contains(serialNumber,'SDK-IMPORT')"
		found, err := dm.WindowsAutopilotDeviceIdentities().Get(ctx, &devicemanagement.WindowsAutopilotDeviceIdentitiesRequestBuilderGetRequestConfiguration{
			QueryParameters: &devicemanagement.WindowsAutopilotDeviceIdentitiesRequestBuilderGetQueryParameters{Filter: &filter, Count: ptr(true)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(found.GetValue()) != 2 || found.GetOdataCount() == nil || *found.GetOdataCount() != 2 {
			t.Errorf("filtered %d devices, @odata.count %v", len(found.GetValue()), found.GetOdataCount())
		}
		n, err := dm.WindowsAutopilotDeviceIdentities().Count().Get(ctx, nil)
		if err != nil || n == nil || int(*n) != len(all) {
			t.Errorf("count %v %v", n, err)
		}
		d, err := dm.WindowsAutopilotDeviceIdentities().ByWindowsAutopilotDeviceIdentityId(str(target.GetId())).Get(ctx, nil)
		if err != nil || str(d.GetSerialNumber()) != str(target.GetSerialNumber()) {
			t.Fatalf("get %v %v", d, err)
		}
	})

	t.Run("registered devices: update properties, assign and unassign a user, delete", func(t *testing.T) {
		if target == nil {
			t.Skip("no device to change")
		}
		item := dm.WindowsAutopilotDeviceIdentities().ByWindowsAutopilotDeviceIdentityId(str(target.GetId()))
		body := devicemanagement.NewWindowsAutopilotDeviceIdentitiesItemUpdateDevicePropertiesPostRequestBody()
		body.SetGroupTag(ptr("SDK-Tag"))
		body.SetDisplayName(ptr("SDK-%SERIAL%"))
		if err := item.UpdateDeviceProperties().Post(ctx, body, nil); err != nil {
			t.Fatal(err)
		}
		assign := devicemanagement.NewWindowsAutopilotDeviceIdentitiesItemAssignUserToDevicePostRequestBody()
		assign.SetUserPrincipalName(ptr("MeganB@contoso.example"))
		assign.SetAddressableUserName(ptr("Megan Bowen"))
		if err := item.AssignUserToDevice().Post(ctx, assign, nil); err != nil {
			t.Fatal(err)
		}
		d, err := item.Get(ctx, nil)
		if err != nil || str(d.GetGroupTag()) != "SDK-Tag" || str(d.GetDisplayName()) != "SDK-%SERIAL%" || str(d.GetUserPrincipalName()) != "MeganB@contoso.example" {
			t.Errorf("after the changes: %v %v", d, err)
		}
		if err := item.UnassignUserFromDevice().Post(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if d, err := item.Get(ctx, nil); err != nil || str(d.GetUserPrincipalName()) != "" {
			t.Errorf("after unassign: %v %v", d, err)
		}
		bad := devicemanagement.NewWindowsAutopilotDeviceIdentitiesItemUpdateDevicePropertiesPostRequestBody()
		bad.SetDisplayName(ptr("NOT_A_VALID_NAME_AT_ALL"))
		if err := item.UpdateDeviceProperties().Post(ctx, bad, nil); graphStatus(err) != http.StatusBadRequest {
			t.Errorf("a bad device name: %v", err)
		}
		if err := item.Delete(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := item.Get(ctx, nil); graphStatus(err) != http.StatusNotFound {
			t.Errorf("after delete: %v", err)
		}
	})

	t.Run("a JSON batch through the SDK's batch support", func(t *testing.T) {
		batch := msgraphcore.NewBatchRequest(adapter)
		list, _ := dm.WindowsAutopilotDeviceIdentities().ToGetRequestInformation(ctx, nil)
		count, _ := dm.ImportedWindowsAutopilotDeviceIdentities().ToGetRequestInformation(ctx, nil)
		listStep, err := batch.AddBatchRequestStep(*list)
		if err != nil {
			t.Fatal(err)
		}
		importedStep, err := batch.AddBatchRequestStep(*count)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := batch.Send(ctx, adapter)
		if err != nil {
			t.Fatal(err)
		}
		devices, err := msgraphcore.GetBatchResponseById[models.WindowsAutopilotDeviceIdentityCollectionResponseable](resp, *listStep.GetId(), models.CreateWindowsAutopilotDeviceIdentityCollectionResponseFromDiscriminatorValue)
		if err != nil || len(devices.GetValue()) == 0 {
			t.Errorf("batched list: %v", err)
		}
		identities, err := msgraphcore.GetBatchResponseById[models.ImportedWindowsAutopilotDeviceIdentityCollectionResponseable](resp, *importedStep.GetId(), models.CreateImportedWindowsAutopilotDeviceIdentityCollectionResponseFromDiscriminatorValue)
		if err != nil || len(identities.GetValue()) != 2 {
			t.Errorf("batched imported identities: %v", err)
		}
	})

	t.Run("the SDK compressed its request bodies and the emulator read them", func(t *testing.T) {
		var gzipped, writes int
		for _, r := range g.emu.Received() {
			if r.Method != http.MethodPost || len(r.Body) == 0 {
				continue
			}
			writes++
			if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
				gzipped++
			}
		}
		if writes == 0 || gzipped != writes {
			t.Errorf("%d of %d request bodies arrived gzip-compressed", gzipped, writes)
		}
	})
}

// A reader may list but not change: the SDK surfaces the emulator's 403 as an OData error.
func TestOfficialSDKSeesTheReadersRefusal(t *testing.T) {
	g := startGraph(t)
	client, _ := g.sdkClient(t, g.signIn(t, demoidp.ReaderKey))
	ctx := context.Background()
	list, err := client.DeviceManagement().WindowsAutopilotDeviceIdentities().Get(ctx, nil)
	if err != nil || len(list.GetValue()) == 0 {
		t.Fatalf("reader list: %v", err)
	}
	err = client.DeviceManagement().WindowsAutopilotDeviceIdentities().ByWindowsAutopilotDeviceIdentityId(str(list.GetValue()[0].GetId())).UnassignUserFromDevice().Post(ctx, nil)
	var oe *odataerrors.ODataError
	if !errors.As(err, &oe) || oe.ResponseStatusCode != http.StatusForbidden || oe.GetErrorEscaped() == nil || str(oe.GetErrorEscaped().GetCode()) != "Forbidden" {
		t.Errorf("reader's write: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
