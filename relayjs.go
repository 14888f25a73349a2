package relay

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// relayJS is the browser client, relay.js: the ES module with publish()
// (MediaRecorder → protocol v1) and play() (protocol v1 → Media Source
// Extensions), the entry point, which re-exports the modules it imports:
// relay-connection.js (the WebSocket, refusals, backoff), relay-mime.js
// (MIME types), relay-publisher.js, relay-player.js, and relay-webm.js (the
// WebM it reads and writes). relayDTS is their TypeScript types. The Hub
// serves them, embedded, relative to its mount point, so they always match
// the hub.
var (
	//go:embed relay.js
	relayJS []byte
	//go:embed relay-connection.js
	relayConnection []byte
	//go:embed relay-mime.js
	relayMIME []byte
	//go:embed relay-publisher.js
	relayPublisher []byte
	//go:embed relay-player.js
	relayPlayer []byte
	//go:embed relay-webm.js
	relayWebM []byte
	//go:embed relay.d.ts
	relayDTS []byte
)

// clientFile is one embedded file of the browser client.
type clientFile struct {
	name        string
	contentType string
	data        []byte
	// etag identifies this build's file, so browsers revalidate cheaply and
	// never run a stale client against a newer hub.
	etag string
}

func newClientFile(name, contentType string, data []byte) *clientFile {
	sum := sha256.Sum256(data)
	return &clientFile{name: name, contentType: contentType, data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// clientFiles are the client's files by route. TypeScript declarations
// have no registered media type; application/typescript is what Deno and
// most servers use.
var clientFiles = map[string]*clientFile{
	"relay.js":            newClientFile("relay.js", "text/javascript; charset=utf-8", relayJS),
	"relay-connection.js": newClientFile("relay-connection.js", "text/javascript; charset=utf-8", relayConnection),
	"relay-mime.js":       newClientFile("relay-mime.js", "text/javascript; charset=utf-8", relayMIME),
	"relay-publisher.js":  newClientFile("relay-publisher.js", "text/javascript; charset=utf-8", relayPublisher),
	"relay-player.js":     newClientFile("relay-player.js", "text/javascript; charset=utf-8", relayPlayer),
	"relay-webm.js":       newClientFile("relay-webm.js", "text/javascript; charset=utf-8", relayWebM),
	"relay.d.ts":          newClientFile("relay.d.ts", "application/typescript; charset=utf-8", relayDTS),
}

// serveClientFile answers GET and HEAD for a client file: its content type,
// an ETag (If-None-Match gives 304) and Range support from
// http.ServeContent. Any origin may load it (it is public code; the
// WebSocket routes check origins on their own).
func serveClientFile(w http.ResponseWriter, r *http.Request, f *clientFile) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "relay: /"+f.name+": want GET or HEAD")
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache") // revalidate with the ETag each time
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}
