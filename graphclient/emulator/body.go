package emulator

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
)

var (
	errBodyEncoding = errors.New("emulator: unsupported content encoding")
	errBodyCorrupt  = errors.New("emulator: corrupt gzip body")
	errBodyCut      = errors.New("emulator: the body did not arrive whole")
)

// readBody reads at most limit bytes of a request body, decompressed when it came with
// Content-Encoding: gzip: Graph reads those, and Microsoft's Graph SDKs compress request bodies
// by default. The limit applies to the decompressed bytes, so a small compressed body cannot
// grow without bound.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	var src io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(io.LimitReader(r.Body, limit))
		if err != nil {
			return nil, errBodyCorrupt
		}
		defer zr.Close()
		src = zr
	default:
		return nil, errBodyEncoding
	}
	body, err := io.ReadAll(io.LimitReader(src, limit))
	switch {
	case err != nil && src != r.Body:
		return nil, errBodyCorrupt
	case err != nil:
		// The client gave up while sending it: Graph acts on no part of such a request.
		return body, errBodyCut
	}
	return body, nil
}

// unreadableBody answers a body the emulator could not decode: 415 for an encoding Graph does
// not take (the SDKs then send the body uncompressed), 400 for a corrupt gzip stream.
func unreadableBody(a answer, err error) {
	if errors.Is(err, errBodyEncoding) {
		a.fail(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The Content-Encoding of the request body is not supported; send it uncompressed or with gzip.")
		return
	}
	if errors.Is(err, errBodyCut) {
		a.fail(http.StatusBadRequest, "BadRequest", "The request body did not arrive whole.")
		return
	}
	a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. The request body is not valid gzip.")
}
