package emulator

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// graphKeys is the order in which Graph writes the keys it shares across answers (Microsoft's
// docs print them so): the OData annotations first, then an error's parts, then an entity's id
// before its properties, and a collection's values last. Other keys follow, in the order of the
// entity's metadata where it is listed here, else alphabetically.
var graphKeys = []string{
	"@odata.context", "@odata.type", "@odata.count", "@odata.nextLink",
	"error", "code", "message", "innerError", "date", "request-id", "client-request-id",
	"id", "createdDateTimeUtc", "status", "headers", "body", // an upload's (the seed's order); a batch answer's
	// importedWindowsAutopilotDeviceIdentity and its state
	"groupTag", "serialNumber", "productKey", "importId", "hardwareIdentifier", "state",
	"deviceImportStatus", "deviceRegistrationId", "deviceErrorCode", "deviceErrorName", "assignedUserPrincipalName",
	"value",
}

func keyRank(k string) int {
	if i := slices.Index(graphKeys, k); i >= 0 {
		return i
	}
	return len(graphKeys)
}

// ordered is a JSON object written with its keys in the order given.
type ordered struct {
	keys []string
	vals []any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// inGraphOrder returns v with every object in it ordered as Graph writes it.
func inGraphOrder(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sortKeys(keys)
		o := ordered{keys: keys, vals: make([]any, len(keys))}
		for i, k := range keys {
			o.vals[i] = inGraphOrder(t[k])
		}
		return o
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, s := range t {
			m[k] = s
		}
		return inGraphOrder(m)
	case []map[string]any:
		out := make([]any, len(t))
		for i, m := range t {
			out[i] = inGraphOrder(m)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = inGraphOrder(e)
		}
		return out
	}
	return v
}

func sortKeys(keys []string) {
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := keyRank(a), keyRank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
}
