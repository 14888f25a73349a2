package relay

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// relayJS is the browser client, relay.js: one ES module with publish()
// (MediaRecorder → protocol v1) and play() (protocol v1 → Media Source
// Extensions). The Hub serves it at /relay.js relative to its mount point.
//
//go:embed relay.js
var relayJS []byte

// relayJSETag identifies this build's relay.js, so browsers revalidate
// cheaply and never run a stale client against a newer hub.
var relayJSETag = func() string {
	sum := sha256.Sum256(relayJS)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// serveRelayJS answers GET and HEAD for /relay.js: the embedded module as
// text/javascript, with an ETag (If-None-Match gives 304) and Range support
// from http.ServeContent. Any origin may load it (it is public code; the
// WebSocket routes check origins on their own).
func serveRelayJS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "segrelay: /relay.js: want GET or HEAD")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache") // revalidate with the ETag each time
	h.Set("ETag", relayJSETag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "relay.js", time.Time{}, bytes.NewReader(relayJS))
}
