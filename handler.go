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
//	                     PUT or POST: a publisher whose WebM is the request body (serveIngest)
//	/{stream}/subscribe  WebSocket: a subscriber
//	/{stream}/live.webm  GET: the stream as one endless WebM response (serveLive); HEAD: is it live
//	/relay.js            the browser client
//	/relay.d.ts          its TypeScript types
//
// A client that asks for the subprotocol "segrelay.v1" speaks protocol v1;
// one that asks for none speaks the legacy framing. Errors before the
// upgrade are an HTTP status with a one-line text body: 400 bad stream name
// or request, 401/403 from the Authorize hook or the origin check, 404
// unknown route, 405 a method live.webm does not take, 409 the stream already has a publisher, 429 over a
// configured limit, 503 shutting down or over the memory budget. A client
// that offers RefusalSubprotocol gets these refusals (all but the 400s of a
// request that is not a protocol v1 upgrade) as close code 4000 + status
// instead (see answerRefusal).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := checkHost(r, h.cfg.hostPatterns); err != nil {
		h.refuse(w, r, "", 0, http.StatusForbidden, err)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if f, ok := clientFiles[p]; ok {
		serveClientFile(w, r, f) // the browser client and its types, embedded (relayjs.go)
		return
	}
	name, action, _ := strings.Cut(p, "/")
	var role Role
	switch action {
	case "publish":
		role = RolePublish
	case "subscribe", "live.webm":
		role = RoleSubscribe
	default:
		h.refuse(w, r, "", 0, http.StatusNotFound, fmt.Errorf("relay: no route %q: want /{stream}/publish, /{stream}/subscribe or /{stream}/live.webm", "/"+p))
		return
	}
	if !validStreamName(name) {
		h.refuse(w, r, "", role, http.StatusBadRequest, fmt.Errorf("relay: bad stream name %q: want 1-128 of [A-Za-z0-9_.-], not starting with a dot", name))
		return
	}
	overHTTP := action == "live.webm" || (role == RolePublish && (r.Method == http.MethodPut || r.Method == http.MethodPost))
	legacy := false
	switch {
	case action == "live.webm" && r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		h.refuse(w, r, name, role, http.StatusMethodNotAllowed, fmt.Errorf("relay: %s takes GET or HEAD, not %s", "/"+p, r.Method))
		return
	case overHTTP:
	case !isUpgrade(r):
		want := "a WebSocket upgrade (GET with Upgrade: websocket)"
		if role == RolePublish {
			want += ", or PUT or POST with a WebM body"
		}
		h.refuse(w, r, name, role, http.StatusBadRequest, fmt.Errorf("relay: %s needs %s", "/"+p, want))
		return
	default:
		var err error
		if legacy, err = chooseProtocol(r); err != nil {
			h.refuse(w, r, name, role, http.StatusBadRequest, err)
			return
		}
	}
	if err := checkOrigin(r, h.cfg.originPatterns); err != nil {
		h.refuse(w, r, name, role, http.StatusForbidden, err)
		return
	}
	if f := h.cfg.authorize; f != nil {
		if err := f(r, name, role); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, ErrUnauthorized) {
				status = http.StatusUnauthorized
			}
			h.refuse(w, r, name, role, status, err)
			return
		}
	}

	switch {
	case action == "live.webm" && r.Method == http.MethodHead:
		h.serveLiveHead(w, r, name)
		return
	case action == "live.webm":
		h.serveLive(w, r, name)
		return
	}
	if role == RolePublish {
		pub, err := h.claim(name)
		if err != nil {
			h.refuse(w, r, name, role, statusOf(err), err)
			return
		}
		if overHTTP {
			h.serveIngest(w, r, pub)
		} else {
			h.servePublisher(w, r, pub, legacy)
		}
		return
	}
	sub, err := h.subscribe(name)
	if err != nil {
		h.refuse(w, r, name, role, statusOf(err), err)
		return
	}
	h.serveSubscriber(w, r, sub, legacy)
}

// refuse answers a request with status and err's text on one line (or a
// close code: see answerRefusal), counts it, and reports it (EventRefused,
// and the log).
func (h *Hub) refuse(w http.ResponseWriter, r *http.Request, stream string, role Role, status int, err error) {
	h.answerRefusal(w, r, status, err.Error())
	h.refused(r, stream, role, status, err)
}

// refused counts and reports a refusal; the answer was written already.
func (h *Hub) refused(r *http.Request, stream string, role Role, status int, err error) {
	h.countRefused(status)
	h.emit(Event{Kind: EventRefused, Stream: stream, Role: role, Request: r, Status: status, Err: err})
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

// httpError answers with status and msg on one line.
func httpError(w http.ResponseWriter, status int, msg string) {
	http.Error(w, oneLine(msg), status)
}

// oneLine puts msg on one line, for an HTTP error body or a close reason.
func oneLine(msg string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
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
