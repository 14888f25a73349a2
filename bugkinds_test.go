package relay

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the kinds of bug of issue 24 (item 5): a resource not given
// back at the end of a path, a time inside a timeout.

// A subscriber whose upgrade fails after the hub took its slot (here a
// Sec-WebSocket-Version the hub does not speak) gives the slot back.
func TestFailedUpgradeGivesBackItsSubscriberSlot(t *testing.T) {
	e := newEnv(t, WithMaxSubscribers(1))
	for range 3 {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.srv.URL+"/live/room/subscribe", nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "12")
		req.Header.Set("Sec-WebSocket-Protocol", Subprotocol)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode)
		require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "the slot of a failed upgrade was kept")
	}
	http.DefaultClient.CloseIdleConnections()
	s := e.subscribe("room") // the one slot is free
	s.Close()
	assert.Equal(t, 0, e.hub.Stats().Subscribers)
}

// closingBridge is a fakeBridge whose Claim shuts the hub down, as a
// Shutdown that comes while a claim is on its way to the cluster.
type closingBridge struct {
	fakeBridge
	hub *Hub
}

func (c *closingBridge) Claim(stream string) error {
	if err := c.fakeBridge.Claim(stream); err != nil {
		return err
	}
	return c.hub.Shutdown(context.Background())
}

// A publisher the hub refuses after its Bridge claimed the stream (the hub
// closed meanwhile) gives the claim back.
func TestBridgeClaimReleasedWhenTheHubIsClosed(t *testing.T) {
	hub := NewHub()
	c := &closingBridge{hub: hub}
	require.NoError(t, hub.SetBridge(c))
	_, err := hub.Publish(testCtx(t), "room", "video/webm")
	require.ErrorIs(t, err, ErrHubClosed)
	claims, releases, _, _ := c.snapshot()
	require.Equal(t, []string{"room"}, claims, "the claim was made")
	assert.Equal(t, claims, releases, "every claim released")
}

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) last(t *testing.T) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotEmpty(t, c.deadlines, "no write deadline set")
	return c.deadlines[len(c.deadlines)-1]
}

// loopbackCork returns a corkConn over one end of a loopback TCP
// connection whose other end discards what it reads.
func loopbackCork(t *testing.T, timeout time.Duration) (*corkConn, *deadlineConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server := <-accepted
	ln.Close()
	require.NotNil(t, server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, err := server.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { client.Close(); server.Close(); <-done })
	dc := &deadlineConn{Conn: client}
	return &corkConn{Conn: dc, timeout: timeout}, dc
}

// A write never starts with less than 7/8 of the write timeout ahead of
// it: a deadline set long ago (here: one with half the timeout left) is
// moved on. The times are set, not waited for.
func TestCorkWriteStartsWithMostOfItsTimeout(t *testing.T) {
	const timeout = time.Hour
	cc, dc := loopbackCork(t, timeout)
	cc.mu.Lock()
	cc.deadline = time.Now().Add(timeout / 2) // as if set half an hour ago
	cc.mu.Unlock()
	before := time.Now()
	_, err := cc.Write([]byte("x"))
	require.NoError(t, err)
	assert.False(t, dc.last(t).Before(before.Add(timeout-timeout/8)),
		"the write started with %v of its timeout left", dc.last(t).Sub(before))

	// A deadline set a moment ago is kept (no timer re-armed per write).
	n := len(dc.deadlines)
	_, err = cc.Write([]byte("y"))
	require.NoError(t, err)
	assert.Len(t, dc.deadlines, n, "a fresh deadline was set again")
}

// Once the close handshake set its deadline, no write outlasts it, however
// long the write timeout.
func TestCorkWriteEndsByTheCloseDeadline(t *testing.T) {
	const timeout = time.Hour
	cc, dc := loopbackCork(t, timeout)
	_, err := cc.Write([]byte("x"))
	require.NoError(t, err)
	limit := time.Now().Add(time.Minute)
	require.NoError(t, cc.SetDeadline(limit))
	_, err = cc.Write([]byte("y"))
	require.NoError(t, err)
	assert.False(t, dc.last(t).After(limit), "a write may run %v past the close's deadline", dc.last(t).Sub(limit))

	cc.cork()
	_, err = cc.Write([]byte("z"))
	require.NoError(t, err)
	require.NoError(t, cc.uncork())
	assert.False(t, dc.last(t).After(limit), "a batch may run %v past the close's deadline", dc.last(t).Sub(limit))
}
