package relay

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm"
)

// Errors returned by the Hub, Publisher and Subscriber. The WebSocket
// handler maps them to HTTP statuses before the upgrade (statusOf) and to
// close codes after it (closeFor); the README's error table lists both. The
// Go client maps them back: a *HandshakeError (an HTTP status) and a
// *CloseError (a close code) match them with errors.Is.
var (
	// ErrBadStreamName: a stream name is 1 to 128 characters of
	// [A-Za-z0-9_.-] and does not start with a dot. (HTTP 400)
	ErrBadStreamName = errors.New("relay: bad stream name")
	// ErrStreamBusy: the stream already has a publisher. (HTTP 409)
	ErrStreamBusy = errors.New("relay: stream already has a publisher")
	// ErrTooManyStreams: the hub has WithMaxStreams live streams. (HTTP 429)
	ErrTooManyStreams = errors.New("relay: too many streams")
	// ErrTooManySubscribers: the hub has WithMaxSubscribers subscribers, or
	// the stream WithMaxSubscribersPerStream. (HTTP 429)
	ErrTooManySubscribers = errors.New("relay: too many subscribers")
	// ErrOverBudget: the bytes the hub holds for publishers reached
	// WithMemoryBudget. (HTTP 503 for a new publisher, close code 1009)
	ErrOverBudget = errors.New("relay: hub memory budget exceeded")
	// ErrHubClosed: the hub is shutting down. (HTTP 503, close code 1001)
	ErrHubClosed = errors.New("relay: hub shutting down")
	// ErrTooSlow: the subscriber kept falling behind and was closed. (close code 1013)
	ErrTooSlow = errors.New("relay: subscriber too slow")
	// ErrClosed: the Publisher or Subscriber was closed by its owner. A
	// remote client's session that ended normally (close code 1000: the
	// publisher sent end, or the hub closed the subscriber) matches it too.
	ErrClosed = errors.New("relay: closed")
	// ErrBadWebM: a publisher's WebM stream does not parse. (close code 1007)
	// ErrBadMP4 (container.go) is its MP4 counterpart.
	ErrBadWebM = webm.ErrInvalid
	// ErrSegmentTooBig: a segment, or the part of a WebM stream that must
	// be held whole, is over WithMaxSegmentBytes. (close code 1009) A remote
	// client also gets it for a message over WithMaxMessageBytes and an init
	// segment over WithMaxInitBytes: every 1009 that is not ErrOverBudget.
	ErrSegmentTooBig = webm.ErrTooBig
	// ErrClosedByApp: the application ended the session with
	// Hub.CloseStream or Hub.CloseSubscriber; the error wraps its reason.
	// (close code 4403: a client should not reconnect)
	ErrClosedByApp = errors.New("relay: closed by the application")
	// ErrProtocol: a peer broke protocol v1 (close code 1002): an unknown
	// or out-of-order control message, media before init, a segment's bytes
	// not matching its declaration, a binary message from a subscriber. A
	// SubscribeClient also returns it when the hub breaks the protocol.
	ErrProtocol = errors.New("relay: protocol violation")
	// ErrBadData: a control message that is not a JSON object with a type,
	// a negative size, or a bad mime; or a stream-mode publisher's bytes
	// that are neither WebM nor MP4, or not the container its start's mime
	// names (close code 1007 with a reason other than a WebM or MP4 error,
	// which are ErrBadWebM and ErrBadMP4; HTTP 400 for a PUT).
	ErrBadData = errors.New("relay: bad data")
	// ErrIdle: a publisher sent no start within WithStartTimeout, or
	// published less than WithPublisherMinBytes within
	// WithPublisherIdleTimeout, so the hub freed the stream's name. (close
	// code 1008)
	ErrIdle = errors.New("relay: publisher idle")
	// ErrUnauthorized can be returned by an Authorize hook to answer 401
	// instead of 403.
	ErrUnauthorized = errors.New("relay: unauthorized")
)

// errNoInit: a media segment came before the session's first init (close
// code 1002, HTTP 400).
var errNoInit = errors.New("relay: media segment before init segment")

// errBug: a panic on a publisher's path ended it (Publisher.contain; close
// code 1011, HTTP 500). What panicked is in the hub's log, not in the text
// a client gets.
var errBug = errors.New("relay: internal error on the publisher's path (logged)")

// statusOf maps the hub's errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadStreamName):
		return http.StatusBadRequest
	case errors.Is(err, ErrStreamBusy):
		return http.StatusConflict
	case errors.Is(err, ErrTooManyStreams), errors.Is(err, ErrTooManySubscribers):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrHubClosed), errors.Is(err, ErrOverBudget):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// closeErr is how a connection ends: a close code and a reason.
type closeErr struct {
	code   websocket.StatusCode
	reason string
}

func closeWith(code websocket.StatusCode, format string, args ...any) *closeErr {
	return &closeErr{code: code, reason: fmt.Sprintf(format, args...)}
}

// statusClosedByApp is the close code of ErrClosedByApp: 4000 plus the HTTP
// status that would refuse the same client (403), so that clients treat it
// as a refusal they cannot fix, not as a reason to reconnect.
const statusClosedByApp websocket.StatusCode = 4403

// closeFor maps an error from a Publisher to a close code.
func closeFor(err error) *closeErr {
	switch {
	case errors.Is(err, ErrBadWebM), errors.Is(err, ErrBadMP4), errors.Is(err, ErrBadData):
		return closeWith(websocket.StatusInvalidFramePayloadData, "%v", err)
	case errors.Is(err, ErrSegmentTooBig), errors.Is(err, ErrOverBudget):
		return closeWith(websocket.StatusMessageTooBig, "%v", err)
	case errors.Is(err, errNoInit):
		return closeWith(websocket.StatusProtocolError, "%v", err)
	case errors.Is(err, ErrHubClosed):
		return closeWith(websocket.StatusGoingAway, "hub shutting down")
	case errors.Is(err, ErrTooSlow):
		return closeWith(websocket.StatusTryAgainLater, "too slow")
	case errors.Is(err, ErrClosedByApp):
		return closeWith(statusClosedByApp, "%v", err)
	}
	return closeWith(websocket.StatusInternalError, "%v", err)
}

// clip shortens a close reason to what fits a close frame (123 bytes).
func clip(s string) string {
	const limit = 123
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
