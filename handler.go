package relay

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// ServeHTTP serves the hub's routes, relative to where it is mounted (use
// http.StripPrefix to mount it under a path of your own):
//
//	/{stream}/publish    WebSocket: a publisher
//	                     PUT or POST: a publisher whose WebM or fragmented MP4 is the request body (serveIngest)
//	/{stream}/subscribe  WebSocket: a subscriber
//	/{stream}/live.webm  GET: a WebM stream as one endless WebM response (serveLive); HEAD: is it live
//	/{stream}/live.mp4   GET: an MP4 stream as one endless fragmented MP4 response; HEAD: is it live
//	                     (each answers 406 for a stream of the other container)
//	/relay.js            the browser client, its entry point; it imports the
//	                     modules beside it: /relay-connection.js, /relay-mime.js,
//	                     /relay-publisher.js, /relay-player.js, /relay-webm.js
//	/relay.d.ts          its TypeScript types
//
// A client that asks for the subprotocol "segrelay.v1" speaks protocol v1;
// one that asks for none speaks the legacy framing. Errors before the
// upgrade are an HTTP status with a one-line text body: 400 bad stream name
// or request, 401/403 from the Authorize hook or the origin check, 404
// unknown route, 405 a method live.webm or live.mp4 does not take, 409 the stream already has a publisher, 429 over a
// configured limit, 503 shutting down or over the memory budget. A client
// that offers RefusalSubprotocol gets these refusals (all but the 400s of a
// request that is not a protocol v1 upgrade) as close code 4000 + status
// instead (see answerRefusal).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, rf := h.admit(r)
	switch {
	case rf == nil && req.file != nil:
		serveClientFile(w, r, req.file) // the browser client and its types, embedded (relayjs.go)
		return
	case rf == nil:
		rf = h.dispatch(w, r, req)
	}
	if rf != nil { // the one place a request is refused
		if rf.allow != "" {
			w.Header().Set("Allow", rf.allow)
		}
		h.refuse(w, r, rf.stream, rf.role, rf.status, rf.err)
	}
}

// request is what admit made of a request it let through.
type request struct {
	file     *clientFile // a file of the browser client; nothing else is set
	name     string      // the stream
	role     Role
	action   string // "publish", "subscribe", "live.webm" or "live.mp4"
	overHTTP bool   // a PUT or POST ingest, or live.webm or live.mp4: no WebSocket
	legacy   bool   // a WebSocket that did not ask for segrelay.v1
}

// refusal is how a request is refused: the stream and role it asked for,
// as far as they are known, the status and the error.
type refusal struct {
	stream string
	role   Role
	status int
	err    error
	allow  string // the Allow header of a 405
}

// admit checks a request in order (host, route, stream name, method and
// protocol, origin, the Authorize hook) and says what it asks for, or why
// it is refused.
func (h *Hub) admit(r *http.Request) (request, *refusal) {
	if err := checkHost(r, h.cfg.hostPatterns); err != nil {
		return request{}, &refusal{status: http.StatusForbidden, err: err}
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if f, ok := clientFiles[p]; ok {
		return request{file: f}, nil
	}
	name, action, _ := strings.Cut(p, "/")
	req := request{name: name, action: action}
	switch action {
	case "publish":
		req.role = RolePublish
	case "subscribe", "live.webm", "live.mp4":
		req.role = RoleSubscribe
	default:
		return req, &refusal{status: http.StatusNotFound, err: fmt.Errorf("relay: no route %q: want /{stream}/publish, /{stream}/subscribe, /{stream}/live.webm or /{stream}/live.mp4", "/"+p)}
	}
	if !validStreamName(name) {
		return req, &refusal{role: req.role, status: http.StatusBadRequest, err: fmt.Errorf("relay: bad stream name %q: want 1-128 of [A-Za-z0-9_.-], not starting with a dot", name)}
	}
	deny := func(status int, err error) (request, *refusal) {
		return req, &refusal{stream: name, role: req.role, status: status, err: err}
	}
	live := liveContainer(action) != ContainerUnknown
	req.overHTTP = live || (req.role == RolePublish && (r.Method == http.MethodPut || r.Method == http.MethodPost))
	switch {
	case live && r.Method != http.MethodGet && r.Method != http.MethodHead:
		_, rf := deny(http.StatusMethodNotAllowed, fmt.Errorf("relay: %s takes GET or HEAD, not %s", "/"+p, r.Method))
		rf.allow = "GET, HEAD"
		return req, rf
	case req.overHTTP:
	case !isUpgrade(r):
		want := "a WebSocket upgrade (GET with Upgrade: websocket)"
		if req.role == RolePublish {
			want += ", or PUT or POST with a WebM or MP4 body"
		}
		return deny(http.StatusBadRequest, fmt.Errorf("relay: %s needs %s", "/"+p, want))
	default:
		var err error
		if req.legacy, err = chooseProtocol(r); err != nil {
			return deny(http.StatusBadRequest, err)
		}
	}
	if err := checkOrigin(r, h.cfg.originPatterns); err != nil {
		return deny(http.StatusForbidden, err)
	}
	if f := h.cfg.authorize; f != nil {
		if err := f(r, name, req.role); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, ErrUnauthorized) {
				status = http.StatusUnauthorized
			}
			return deny(status, err)
		}
	}
	return req, nil
}

// dispatch hands an admitted request to its route's handler. It returns a
// refusal when the hub cannot take the publisher or subscriber (limits,
// a busy stream, shutdown); past that, the handlers answer on their own.
func (h *Hub) dispatch(w http.ResponseWriter, r *http.Request, req request) *refusal {
	switch {
	case liveContainer(req.action) != ContainerUnknown && r.Method == http.MethodHead:
		h.serveLiveHead(w, r, req.name, liveContainer(req.action))
	case req.role == RolePublish:
		pub, err := h.claim(req.name)
		if err != nil {
			return &refusal{stream: req.name, role: req.role, status: statusOf(err), err: err}
		}
		if req.overHTTP {
			h.serveIngest(w, r, pub)
		} else {
			h.servePublisher(w, r, pub, req.legacy)
		}
	default:
		sub, err := h.subscribe(req.name, true)
		if err != nil {
			return &refusal{stream: req.name, role: req.role, status: statusOf(err), err: err}
		}
		if c := liveContainer(req.action); c != ContainerUnknown {
			h.serveLive(w, r, sub, c)
		} else {
			h.serveSubscriber(w, r, sub, req.legacy)
		}
	}
	return nil
}

// chooseProtocol reads the requested subprotocols: segrelay.v1, or none for
// the legacy framing. Anything else is refused rather than guessed.
func chooseProtocol(r *http.Request) (legacy bool, err error) {
	var asked []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				asked = append(asked, p)
			}
		}
	}
	if len(asked) == 0 {
		return true, nil
	}
	for _, p := range asked {
		if p == Subprotocol {
			return false, nil
		}
	}
	return false, fmt.Errorf("relay: unsupported subprotocol %q: want %q, or none for the legacy framing", strings.Join(asked, ", "), Subprotocol)
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkOrigin allows requests without an Origin (not from a browser), from
// the same host, or from an origin matching one of patterns, the way
// github.com/coder/websocket's Accept does. It runs before the stream is
// claimed so a refused page cannot hold a stream even for a moment.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("relay: bad Origin header %q", origin)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, pattern := range patterns {
		target := u.Host
		if strings.Contains(pattern, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("relay: bad origin pattern %q: %v", pattern, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("relay: origin %q is not allowed (see WithOriginPatterns)", origin)
}

// checkHost allows a request whose Host matches one of patterns (all when
// there are none): the defence against DNS rebinding (see WithHosts).
func checkHost(r *http.Request, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	host := strings.ToLower(r.Host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
		if strings.Contains(h, ":") {
			name = "[" + h + "]" // IPv6, written as in a Host header
		}
	}
	for _, pattern := range patterns {
		target := name
		if strings.Contains(strings.TrimPrefix(pattern, "["), "]:") || (!strings.HasPrefix(pattern, "[") && strings.Contains(pattern, ":")) {
			target = host // the pattern names a port
		}
		ok, err := path.Match(strings.ToLower(pattern), target)
		if err != nil {
			return fmt.Errorf("relay: bad host pattern %q: %v", pattern, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("relay: host %q is not allowed (see WithHosts)", r.Host)
}
