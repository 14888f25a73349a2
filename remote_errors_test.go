package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wantClose checks an error of a Go client after the hub closed its
// connection: the package's error, the code and a reason, without
// coder/websocket.
func wantClose(t *testing.T, err error, want error, code int, reason string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, want)
	var ce *CloseError
	require.ErrorAs(t, err, &ce, "%v", err)
	assert.Equal(t, code, ce.Code, "%v", err)
	assert.Contains(t, ce.Reason, reason)
	assert.Equal(t, websocket.StatusCode(code), websocket.CloseStatus(err), "the websocket.CloseError stays reachable")
	for _, other := range []error{ErrClosed, ErrHubClosed, ErrProtocol, ErrBadWebM, ErrBadMP4, ErrBadData, ErrIdle, ErrOverBudget, ErrSegmentTooBig, ErrTooSlow} {
		if other != want {
			assert.NotErrorIs(t, err, other, "%v", err)
		}
	}
}

// Every close code of the README's error table reaches a Go client as the
// package's error, across a real WebSocket.
func TestRemoteCloseErrors(t *testing.T) {
	segments := PublishStart{MIME: "video/webm;codecs=vp8", Mode: ModeSegments}
	t.Run("1000 end", func(t *testing.T) {
		e := newEnv(t)
		p := e.publish("s", segments)
		require.NoError(t, p.Close(), "a clean end is no error")
		<-p.Done()
		wantClose(t, p.Err(), ErrClosed, 1000, "end")
	})
	t.Run("1001 shutdown", func(t *testing.T) {
		e := newEnv(t)
		p := e.publish("s", segments)
		s := e.subscribe("s")
		ctx := testCtx(t)
		require.NoError(t, e.hub.Shutdown(ctx))
		var err error
		for err == nil {
			_, err = s.Next(ctx)
		}
		wantClose(t, err, ErrHubClosed, 1001, "shutting down")
		wantClose(t, p.Err(), ErrHubClosed, 1001, "shutting down")
	})
	t.Run("1002 media before init", func(t *testing.T) {
		e := newEnv(t)
		p := e.publish("s", segments)
		p.SendSegment(testCtx(t), Segment{Kind: KindMedia, Keyframe: true, Data: []byte("m")})
		wantClose(t, p.Err(), ErrProtocol, 1002, "before init")
	})
	t.Run("1007 bad WebM", func(t *testing.T) {
		e := newEnv(t)
		p := e.publish("s", PublishStart{MIME: "video/webm"})
		p.Send(testCtx(t), []byte("this is not WebM at all"))
		wantClose(t, p.Err(), ErrBadWebM, 1007, "bad WebM")
	})
	t.Run("1007 bad mime", func(t *testing.T) {
		e := newEnv(t)
		p := e.publish("s", PublishStart{MIME: "video/webm\x00", Mode: ModeSegments})
		wantClose(t, p.Err(), ErrBadData, 1007, "bad mime")
	})
	t.Run("1008 idle", func(t *testing.T) {
		e := newEnv(t, WithPublisherIdleTimeout(100*time.Millisecond))
		p := e.publish("s", segments)
		wantClose(t, p.Err(), ErrIdle, 1008, "idle")
	})
	t.Run("1009 segment too big", func(t *testing.T) {
		e := newEnv(t, WithMaxSegmentBytes(5000))
		p := e.publish("s", segments)
		p.SendSegment(testCtx(t), Segment{Kind: KindInit, Data: make([]byte, 5001)})
		wantClose(t, p.Err(), ErrSegmentTooBig, 1009, "limit is")
	})
	t.Run("1009 over budget", func(t *testing.T) {
		e := newEnv(t, WithMemoryBudget(300<<10))
		p := e.publish("s", segments)
		p.SendSegment(testCtx(t), Segment{Kind: KindInit, Data: make([]byte, 400<<10)})
		wantClose(t, p.Err(), ErrOverBudget, 1009, "budget")
	})
	t.Run("1013 too slow", func(t *testing.T) {
		e := newEnv(t, WithSubscriberQueueBytes(256<<10))
		s := e.subscribe("s") // reads nothing until the hub gave up on it
		ctx := testCtx(t)
		defer floodUntilSlowClosed(t, e).Close()
		var err error
		for err == nil {
			_, err = s.Next(ctx)
		}
		wantClose(t, err, ErrTooSlow, 1013, "too slow")
		<-s.Done()
		assert.Equal(t, err, s.Err())
	})
}

// A SubscribeClient's Done and Err: closed by its owner, and by the hub.
func TestSubscribeClientDone(t *testing.T) {
	e := newEnv(t)
	s := e.subscribe("s")
	select {
	case <-s.Done():
		t.Fatal("Done closed before the connection ended")
	default:
	}
	require.NoError(t, s.Close())
	<-s.Done()
	assert.ErrorIs(t, s.Err(), ErrClosed)
	_, err := s.Next(testCtx(t))
	assert.ErrorIs(t, err, ErrClosed, "Next after Close")

	s = e.subscribe("s")
	ctx := testCtx(t)
	done := make(chan error)
	go func() {
		<-s.Done()
		done <- s.Err()
	}()
	require.NoError(t, e.hub.Shutdown(ctx))
	_, err = s.Next(ctx)
	wantClose(t, err, ErrHubClosed, 1001, "shutting down")
	wantClose(t, <-done, ErrHubClosed, 1001, "shutting down")
}

// A refused handshake keeps the hub's status and body, and errors.Is finds
// the package's error behind it.
func TestHandshakeErrorBody(t *testing.T) {
	e := refusingEnv(t)
	ctx := testCtx(t)
	cases := []struct {
		route  string
		status int
		body   string
		is     error
	}{
		{"busy/publish", http.StatusConflict, ErrStreamBusy.Error(), ErrStreamBusy},
		{"full/subscribe", http.StatusTooManyRequests, ErrTooManySubscribers.Error(), ErrTooManySubscribers},
		{"private/subscribe", http.StatusUnauthorized, ErrUnauthorized.Error(), ErrUnauthorized},
		{"banned/publish", http.StatusForbidden, "banned: ask the admin", nil},
		{"x/dance", http.StatusNotFound, `no route "/x/dance"`, nil},
	}
	for _, c := range cases {
		var err error
		if strings.HasSuffix(c.route, "/publish") {
			_, err = DialPublish(ctx, e.url(c.route), PublishStart{MIME: "video/webm"}, nil)
		} else {
			_, err = DialSubscribe(ctx, e.url(c.route), nil)
		}
		var he *HandshakeError
		require.ErrorAs(t, err, &he, "%s: %v", c.route, err)
		assert.Equal(t, c.status, he.Status, c.route)
		assert.Contains(t, he.Body, c.body, c.route)
		assert.NotContains(t, he.Body, "\n")
		assert.Contains(t, err.Error(), he.Body, "the message says why")
		assert.Contains(t, err.Error(), fmt.Sprint(c.status))
		if c.is != nil {
			assert.ErrorIs(t, err, c.is, c.route)
		}
	}

	// The message names the route, not the credentials in its query.
	_, err := DialSubscribe(ctx, e.url("private/subscribe?token=s3cret"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), e.url("private/subscribe")+":")
	assert.NotContains(t, err.Error(), "s3cret")

	require.NoError(t, e.hub.Shutdown(ctx))
	_, err = DialSubscribe(ctx, e.url("s/subscribe"), nil)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.Status)
	assert.ErrorIs(t, err, ErrHubClosed)
	assert.NotErrorIs(t, err, ErrOverBudget)
}

// A client that offers RefusalSubprotocol learns why it was refused from a
// close code, 4000 + the HTTP status, and the one-line reason. The refused
// connection holds nothing: no stream, no slot, no connection of the hub.
func TestRefusalByClose(t *testing.T) {
	e := refusingEnv(t)
	ctx := testCtx(t)
	before := e.hub.Stats()
	cases := []struct {
		route  string
		code   int
		reason string
	}{
		{"busy/publish", 4409, ErrStreamBusy.Error()},
		{"full/subscribe", 4429, ErrTooManySubscribers.Error()},
		{"private/publish", 4401, ErrUnauthorized.Error()},
		{"banned/subscribe", 4403, "banned: ask the admin"},
		{"x/dance", 4404, "no route"},
		{".x/subscribe", 4400, "bad stream name"},
	}
	for _, c := range cases {
		conn, resp, err := websocket.Dial(ctx, e.url(c.route), &websocket.DialOptions{Subprotocols: []string{Subprotocol, RefusalSubprotocol}})
		require.NoError(t, err, c.route)
		assert.Equal(t, RefusalSubprotocol, conn.Subprotocol(), "%s: the handshake says a refusal follows (%v)", c.route, resp.Header)
		_, _, err = conn.Read(ctx)
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce, "%s: %v", c.route, err)
		assert.Equal(t, websocket.StatusCode(c.code), ce.Code, c.route)
		assert.Contains(t, ce.Reason, c.reason, c.route)
		conn.CloseNow()
	}
	after := e.hub.Stats()
	assert.Equal(t, before.Streams, after.Streams, "no stream claimed or created")
	assert.Equal(t, before.Publishers, after.Publishers)
	assert.Equal(t, before.Subscribers, after.Subscribers, "no subscriber slot taken")
	e.hub.mu.Lock()
	assert.Len(t, e.hub.conns, 2, "only the publisher and the subscriber are the hub's connections")
	e.hub.mu.Unlock()

	// Without the token (the Go client, old pages), the HTTP status as before.
	_, err := DialPublish(ctx, e.url("busy/publish"), PublishStart{MIME: "video/webm"}, nil)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusConflict, he.Status)
	// A request that is not a v1 upgrade cannot be answered with a close frame.
	_, resp, err := websocket.Dial(ctx, e.url("s/subscribe"), &websocket.DialOptions{Subprotocols: []string{RefusalSubprotocol}})
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a subprotocol without segrelay.v1")

	// Shutting down: 4503.
	require.NoError(t, e.hub.Shutdown(ctx))
	conn, _, err := websocket.Dial(ctx, e.url("s/subscribe"), &websocket.DialOptions{Subprotocols: []string{Subprotocol, RefusalSubprotocol}})
	require.NoError(t, err)
	defer conn.CloseNow()
	_, _, err = conn.Read(ctx)
	assert.Equal(t, websocket.StatusCode(4503), websocket.CloseStatus(err), "%v", err)
}

// A refused client that never answers the close frame is let go after
// closeGrace: a refusal holds the hub's handler no longer than that.
func TestRefusalByCloseSilentPeer(t *testing.T) {
	e := newEnv(t, WithAuthorize(func(*http.Request, string, Role) error { return ErrUnauthorized }))
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /live/s/subscribe HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s, %s\r\n\r\n",
		e.srv.Listener.Addr(), Subprotocol, RefusalSubprotocol)
	require.NoError(t, err)
	// Read everything the hub sends, answering nothing, until it closes the
	// connection (the deadline only stops a broken hub from hanging the test).
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	got, err := io.ReadAll(conn)
	require.NoError(t, err, "the hub closes the connection itself")
	assert.True(t, strings.HasPrefix(string(got), "HTTP/1.1 101 "), "%q", got)
	frame := []byte{0x88, byte(2 + len(ErrUnauthorized.Error())), 4401 >> 8, 4401 & 0xff}
	assert.Contains(t, string(got), string(frame)+ErrUnauthorized.Error(), "a close frame with 4401 and the reason")
}

// refusingEnv is a hub that refuses in every way: stream "private" needs a
// login (401), "banned" is forbidden (403), "busy" has a publisher (409),
// and its one subscriber slot is taken (429).
func refusingEnv(t *testing.T) *testEnv {
	e := newEnv(t, WithMaxSubscribers(1), WithAuthorize(func(r *http.Request, stream string, role Role) error {
		switch stream {
		case "private":
			return ErrUnauthorized
		case "banned":
			return errors.New("banned: ask the admin")
		}
		return nil
	}))
	e.publish("busy", PublishStart{MIME: "video/webm"})
	e.subscribe("full")
	return e
}
