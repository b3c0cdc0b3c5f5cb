package importer

import (
	"encoding/base64"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// Plan cuts the rows to send into batches in file order: at most graphclient.MaxImportDevices
// devices and at most graphclient.MaxImportRequestBytes of request body each, measured as the
// import action encodes them. It returns the lines of each batch.
func Plan(rows []store.ImportRow) [][]int {
	var batches [][]int
	var cur []int
	size := graphclient.ImportRequestOverhead
	for _, r := range rows {
		n := graphclient.ImportEntryBytesWithHash(graphclient.DeviceIdentity{SerialNumber: r.Serial, ProductKey: r.ProductKey,
			GroupTag: r.GroupTag, AssignedUserPrincipalName: r.User}, base64.StdEncoding.DecodedLen(r.HashLen))
		if len(cur) > 0 && (len(cur) == graphclient.MaxImportDevices || size+n > graphclient.MaxImportRequestBytes) {
			batches, cur, size = append(batches, cur), nil, graphclient.ImportRequestOverhead
		}
		cur = append(cur, r.Line)
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}
