package relay

import (
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// RefusalSubprotocol is the WebSocket subprotocol a protocol v1 client
// offers alongside Subprotocol ("segrelay.v1") to learn why a handshake was
// refused. A browser's WebSocket hides a refused handshake's HTTP status
// (the page sees close code 1006, as for a network failure), so a page
// cannot tell "wrong stream name" or "not logged in" from "server
// restarting". For such a client the hub accepts the upgrade and closes at
// once with 4000 + the status (4400, 4401, 4403, 4404, 4409, 4429, 4503)
// and the one-line text it would have sent as the body. It selects this
// token, not "segrelay.v1", for such a connection, so the client knows from
// the handshake that a close follows and sends nothing. A hub that does not
// know the token ignores it and answers with the HTTP status. relay.js
// offers it; the Go client does not (it reads the status: see
// HandshakeError).
const RefusalSubprotocol = "segrelay.refusal-close"

// answerRefusal answers a request the hub refuses with status and msg: as
// an HTTP error, or, for a client that offered RefusalSubprotocol, with a
// close code. The refused connection is not the hub's: it claims no stream, fires
// no hook, counts against no limit and is not tracked by Shutdown; it ends
// within closeGrace on this goroutine, with no other left behind.
func (h *Hub) answerRefusal(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if !wantsRefusalClose(r) {
		httpError(w, status, msg)
		return
	}
	hw := &hijackRecorder{ResponseWriter: w}
	conn, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		// Selecting the refusal token, not segrelay.v1, tells the client at
		// once that this connection only carries the refusal.
		Subprotocols: []string{RefusalSubprotocol},
		// The origin was checked already, or its refusal is what is being
		// sent: a close frame tells a foreign page nothing a 403 does not.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // not a valid upgrade after all: Accept answered with an HTTP error
	}
	// A peer that never answers the close (or keeps sending) must not hold
	// this goroutine: the deadline bounds the close handshake.
	hw.conn.SetDeadline(time.Now().Add(closeGrace))
	conn.Close(websocket.StatusCode(4000+status), clip(oneLine(msg)))
}

// wantsRefusalClose reports whether r is a WebSocket upgrade offering both
// Subprotocol and RefusalSubprotocol.
func wantsRefusalClose(r *http.Request) bool {
	return isUpgrade(r) && headerHasToken(r.Header, "Sec-WebSocket-Protocol", Subprotocol) &&
		headerHasToken(r.Header, "Sec-WebSocket-Protocol", RefusalSubprotocol)
}

// refuse answers a request with status and err's text on one line (or a
// close code: see answerRefusal), counts it, and reports it (EventRefused,
// and the log).
func (h *Hub) refuse(w http.ResponseWriter, r *http.Request, stream string, role Role, status int, err error) {
	leaveBody(w, r)
	h.answerRefusal(w, r, status, err.Error())
	h.refused(r, stream, role, status, err)
}

// refused counts and reports a refusal; the answer was written already.
func (h *Hub) refused(r *http.Request, stream string, role Role, status int, err error) {
	h.countRefused(status)
	h.emit(Event{Kind: EventRefused, Stream: stream, Role: role, Request: r, Status: status, Err: err})
}

// httpError answers with status and msg on one line.
func httpError(w http.ResponseWriter, status int, msg string) {
	http.Error(w, oneLine(msg), status)
}

// oneLine puts msg on one line, for an HTTP error body or a close reason.
func oneLine(msg string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// leaveBody ends the reading of a request body the hub will not read on
// (a refused or failed HTTP publisher): before it sends an answer, net/http
// reads up to 256 KiB of a body the handler left unread, for as long as the
// client takes to send it. A read deadline in the past ends that read at
// once; the connection then closes after the answer, since what is left of
// the body must not be read as the next request.
func leaveBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 { // -1: chunked
		http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	}
}
