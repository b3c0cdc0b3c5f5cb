package handlers

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"autopilotdesk/web"
)

// A form interrupted by an ended session travels through the sign-in flow record and comes back
// into the new session once, so nothing the user typed is lost.
const pendingFormKey = "pending-upload-form"

type pendingForm struct {
	CreatedDateTimeUtc string `json:"createdDateTimeUtc"`
	Status             string `json:"status"`
	ID                 string `json:"id"`
}

func encodePendingForm(f uploadForm) []byte {
	b, _ := json.Marshal(pendingForm{CreatedDateTimeUtc: f.CreatedDateTimeUtc, Status: f.Status, ID: f.ID})
	return b
}

func keepPendingForm(c echo.Context, data []byte) error {
	sess := web.Session(c)
	sess.Values[pendingFormKey] = string(data)
	return sess.Save(c.Request(), c.Response())
}

func takePendingForm(c echo.Context) (uploadForm, bool) {
	sess := web.Session(c)
	raw, ok := sess.Values[pendingFormKey].(string)
	if !ok {
		return uploadForm{}, false
	}
	delete(sess.Values, pendingFormKey)
	_ = sess.Save(c.Request(), c.Response())
	var p pendingForm
	if json.Unmarshal([]byte(raw), &p) != nil {
		return uploadForm{}, false
	}
	return uploadForm{CreatedDateTimeUtc: p.CreatedDateTimeUtc, Status: p.Status, ID: p.ID}, true
}
