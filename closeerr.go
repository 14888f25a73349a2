package relay

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// CloseError is how a remote hub ended a PublishClient's or a
// SubscribeClient's connection: the WebSocket close code and the reason it
// sent. errors.Is matches the package's error for the code, so a caller
// needs no WebSocket package to tell why:
//
//	1000  ErrClosed (the session ended normally)
//	1001  ErrHubClosed
//	1002  ErrProtocol
//	1007  ErrBadWebM or ErrBadMP4 when the reason is a WebM or MP4 error, else ErrBadData
//	1008  ErrIdle
//	1009  ErrOverBudget when the reason is the budget's, else ErrSegmentTooBig
//	1013  ErrTooSlow
//
// Other codes (1011: the hub failed) match none. The hub's reasons start
// with the text of the error they come from, which is how 1007 and 1009
// are told apart. errors.As also finds the websocket.CloseError of
// github.com/coder/websocket it was made from.
type CloseError struct {
	Code   int
	Reason string
	known  error // the package's error for Code and Reason; nil for other codes
	ws     websocket.CloseError
}

func (e *CloseError) Error() string {
	if e.Reason == "" && e.known != nil {
		return fmt.Sprintf("relay: the hub closed the connection with %d (%v)", e.Code, e.known)
	}
	return fmt.Sprintf("relay: the hub closed the connection with %d: %s", e.Code, e.Reason)
}

// Unwrap returns the package's error for the code, if any, and the
// websocket.CloseError.
func (e *CloseError) Unwrap() []error {
	if e.known == nil {
		return []error{e.ws}
	}
	return []error{e.known, e.ws}
}

// fromHub turns an error of a connection to a hub into a *CloseError when
// the hub closed the connection with a close frame; other errors (the
// connection dropped, a context expired) are returned as they are.
func fromHub(err error) error {
	var ws websocket.CloseError
	if !errors.As(err, &ws) {
		return err
	}
	return &CloseError{Code: int(ws.Code), Reason: ws.Reason, known: errorOfClose(ws.Code, ws.Reason), ws: ws}
}

// errorOfClose is closeFor and the hub's other close codes read backwards.
func errorOfClose(code websocket.StatusCode, reason string) error {
	switch code {
	case websocket.StatusNormalClosure:
		return ErrClosed
	case websocket.StatusGoingAway:
		return ErrHubClosed
	case websocket.StatusProtocolError:
		return ErrProtocol
	case websocket.StatusInvalidFramePayloadData:
		if strings.HasPrefix(reason, ErrBadWebM.Error()) {
			return ErrBadWebM
		}
		if strings.HasPrefix(reason, ErrBadMP4.Error()) {
			return ErrBadMP4
		}
		return ErrBadData
	case websocket.StatusPolicyViolation:
		return ErrIdle
	case websocket.StatusMessageTooBig:
		if strings.HasPrefix(reason, ErrOverBudget.Error()) {
			return ErrOverBudget
		}
		return ErrSegmentTooBig
	case websocket.StatusTryAgainLater:
		return ErrTooSlow
	case statusClosedByApp:
		return ErrClosedByApp
	}
	return nil
}

// errorOfStatus is statusOf read backwards: the package's error behind a
// refused handshake, told apart by the body where a status has several
// (the hub's body is then the error's text). Nil when none fits.
func errorOfStatus(status int, body string) error {
	var candidates []error
	switch status {
	case http.StatusUnauthorized:
		return ErrUnauthorized // whatever the Authorize hook's text
	case http.StatusConflict:
		return ErrStreamBusy
	case http.StatusTooManyRequests:
		candidates = []error{ErrTooManyStreams, ErrTooManySubscribers}
	case http.StatusServiceUnavailable:
		candidates = []error{ErrHubClosed, ErrOverBudget}
	}
	for _, err := range candidates {
		if strings.HasPrefix(body, err.Error()) {
			return err
		}
	}
	return nil
}
