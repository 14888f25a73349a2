package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A subscriber that does not keep up skips to the next keyframe, and the
// segment it resumes with carries Discontinuity; one that keeps
// overflowing is closed. The publisher never waits.
func TestSlowSubscriberSkipsThenCloses(t *testing.T) {
	hub := NewHub(WithSubscriberQueueBytes(100))
	ctx := context.Background()
	defer hub.Shutdown(ctx)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	slow, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	media := func(key bool) {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: key, Data: make([]byte, 30)}))
	}
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")})) // seq 1
	media(true)                                                                      // 2
	media(false)                                                                     // 3
	media(false)                                                                     // 4: 90 bytes queued
	media(false)                                                                     // 5: overflow, skip
	media(false)                                                                     // 6: skipped
	media(true)                                                                      // 7: resume here

	var got []Segment
	for range 3 {
		seg, err := slow.Next(ctx)
		require.NoError(t, err)
		got = append(got, seg)
	}
	assert.Equal(t, KindStart, got[0].Kind)
	assert.Equal(t, KindInit, got[1].Kind)
	assert.Equal(t, uint64(7), got[2].Seq, "resumes at the next keyframe")
	assert.True(t, got[2].Keyframe)
	assert.True(t, got[2].Discontinuity)
	assert.Equal(t, uint64(5), hub.Stats().Drops, "2, 3, 4 dropped from the queue, 5 and 6 skipped")

	// Two more overflows within the window: closed as too slow.
	for i := 0; i < 20; i++ {
		media(i%4 == 0)
	}
	var err2 error
	for err2 == nil {
		_, err2 = slow.Next(ctx)
	}
	assert.ErrorIs(t, err2, ErrTooSlow)
	st := hub.Stats()
	assert.Equal(t, uint64(1), st.SlowClosed)
	assert.Equal(t, 0, st.Subscribers)
}

// Over WebSockets: a subscriber that never reads fills its socket, then its
// queue; it is dropped (as too slow, or by the write timeout, whichever
// comes first) while two others get every segment, in order, with no
// discontinuity.
func TestNeverReadingSubscriberDoesNotHurtOthers(t *testing.T) {
	e := newEnv(t, WithSubscriberQueueBytes(1<<20), WithWriteTimeout(5*time.Second))
	stuck := e.dialStuck("s/subscribe")
	defer stuck.CloseNow() // never read
	good := []*SubscribeClient{e.subscribe("s"), e.subscribe("s")}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pub, err := e.hub.Publish(ctx, "s", "x")
	require.NoError(t, err)

	results := make([][]Segment, len(good))
	var wg sync.WaitGroup
	for i, s := range good {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seg, err := s.Next(ctx)
				if err != nil {
					return
				}
				seg.Data = nil
				results[i] = append(results[i], seg)
				if seg.Kind == KindEnd {
					return
				}
			}
		}()
	}

	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	chunk := make([]byte, 4<<10)
	sent := 0
	for n := 0; n < 10000; n++ {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: n%8 == 0, Data: chunk}))
		sent++
		if e.hub.Stats().Subscribers == 2 && sent%8 == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond) // at most 2 MB/s: easy for a reader, not for a stuck one
	}
	require.Equal(t, 2, e.hub.Stats().Subscribers, "the stuck subscriber was dropped")
	for range 16 {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: sent%8 == 0, Data: chunk}))
		sent++
	}
	pub.Close()
	wg.Wait()

	for i, segs := range results {
		require.Len(t, segs, sent+3, "subscriber %d: start, init, every media segment, end", i)
		for j, seg := range segs[2 : len(segs)-1] {
			assert.Equal(t, uint64(j+2), seg.Seq)
			assert.False(t, seg.Discontinuity)
		}
	}
	waitFor(t, "the stuck connection to be dropped", func() bool {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		return len(e.hub.conns) == 2
	})
}

// A subscriber closed as too slow learns why when it reads again: 1013.
func TestTooSlowCloseCode(t *testing.T) {
	e := newEnv(t, WithSubscriberQueueBytes(256<<10))
	c := e.dialRaw("s/subscribe", Subprotocol)
	ctx := testCtx(t)
	defer floodUntilSlowClosed(t, e).Close()
	var err error
	for {
		_, _, err = c.Read(ctx)
		if err != nil {
			break
		}
	}
	var ce websocket.CloseError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, websocket.StatusTryAgainLater, ce.Code)
	assert.Equal(t, "too slow", ce.Reason)
}

// floodUntilSlowClosed publishes 64 KB segments to stream "s" of e until
// the hub closed its one subscriber, which reads nothing, as too slow (2,000
// segments at most); the caller closes the publisher it returns.
func floodUntilSlowClosed(t *testing.T, e *testEnv) *Publisher {
	t.Helper()
	pub, err := e.hub.Publish(testCtx(t), "s", "x")
	require.NoError(t, err)
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	chunk := make([]byte, 64<<10)
	for n := 0; n < 2000 && e.hub.Stats().SlowClosed == 0; n++ {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: n%4 == 0, Data: chunk}))
	}
	require.Equal(t, uint64(1), e.hub.Stats().SlowClosed)
	return pub
}

// A subscriber cut off as too slow keeps its slot of WithMaxSubscribers
// until its connection is gone (its writer stays blocked on the full socket
// until the write timeout), so never-reading clients that come back cannot
// hold more connections than the limit.
func TestCutOffSubscriberHoldsItsSlotUntilItsConnectionIsGone(t *testing.T) {
	e := newEnv(t, WithMaxSubscribers(1), WithSubscriberQueueBytes(256<<10), WithWriteTimeout(5*time.Second))
	stuck := e.dialStuck("s/subscribe")
	defer stuck.CloseNow() // never read
	pub, err := e.hub.Publish(testCtx(t), "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	chunk := make([]byte, 64<<10)
	for n := 0; e.hub.Stats().SlowClosed == 0; n++ {
		require.Less(t, n, 1000, "never cut off")
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: n%8 == 0, Data: chunk}))
	}
	assert.Equal(t, 0, e.hub.Stats().Subscribers, "it left the stream")
	_, err = e.hub.Subscribe(testCtx(t), "s")
	require.ErrorIs(t, err, ErrTooManySubscribers, "its connection still holds the slot")
	waitFor(t, "the slot, once the connection is gone", func() bool {
		s, err := e.hub.Subscribe(testCtx(t), "s")
		if err != nil {
			return false
		}
		s.Close()
		return true
	})
}

// dialStuck opens a protocol v1 WebSocket to route with a tiny receive
// buffer, so that a socket its caller never reads fills at once.
func (e *testEnv) dialStuck(route string) *websocket.Conn {
	e.t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, _, err := websocket.Dial(testCtx(e.t), e.url(route), &websocket.DialOptions{
		Subprotocols: []string{Subprotocol},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	require.NoError(e.t, err)
	return c
}
