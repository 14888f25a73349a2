package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamNames(t *testing.T) {
	for _, ok := range []string{"a", "room1", "Room_1-a.b", "a..b", string(make128('x'))} {
		assert.True(t, validStreamName(ok), ok)
	}
	for _, bad := range []string{"", ".", "..", ".a", "a/b", "a b", "é", "a\x00", string(make128('x')) + "x"} {
		assert.False(t, validStreamName(bad), bad)
	}
}

func make128(c byte) []byte {
	b := make([]byte, 128)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestHooksAndStats(t *testing.T) {
	var mu sync.Mutex
	var events []string
	hook := func(what string) func(string) {
		return func(stream string) {
			mu.Lock()
			events = append(events, what+" "+stream)
			mu.Unlock()
		}
	}
	e := newEnv(t, OnPublish(hook("publish")), OnUnpublish(hook("unpublish")), OnSubscribe(hook("subscribe")), OnUnsubscribe(hook("unsubscribe")))
	sub := e.subscribe("room")
	pub := e.publish("room", PublishStart{MIME: "x", Mode: ModeSegments})
	ctx := testCtx(t)
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("12345")}))
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindMedia, Keyframe: true, Data: []byte("123")}))
	for range 3 {
		_, err := sub.Next(ctx)
		require.NoError(t, err)
	}
	st := e.hub.Stats()
	assert.Equal(t, Stats{Streams: 1, Publishers: 1, Subscribers: 1, BytesIn: 8, BytesOut: 8, Segments: 2}, st)
	assert.Equal(t, []StreamInfo{{Name: "room", Live: true, MIME: "x", Subscribers: 1}}, e.hub.Streams())

	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
	waitFor(t, "the hooks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 4
	})
	assert.Equal(t, 0, e.hub.Stats().Streams)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"subscribe room", "publish room", "unpublish room", "unsubscribe room"}, events)
}

// Contexts bound in-process publishers and subscribers.
func TestContextEndsPublisherAndSubscriber(t *testing.T) {
	hub := NewHub()
	defer hub.Shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	sub, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	cancel()
	_, err = sub.Next(context.Background())
	for err == nil {
		_, err = sub.Next(context.Background())
	}
	assert.ErrorIs(t, err, context.Canceled)
	// context.AfterFunc runs on a goroutine of its own: wait for it.
	waitFor(t, "both to leave", func() bool { return hub.Stats() == Stats{} })
	assert.ErrorIs(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")}), context.Canceled)
}

func TestPublisherModesDoNotMix(t *testing.T) {
	hub := NewHub()
	defer hub.Shutdown(context.Background())
	pub, err := hub.Publish(context.Background(), "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")}))
	_, err = pub.Write([]byte{0x1A})
	assert.ErrorContains(t, err, "not both")
	assert.ErrorContains(t, pub.WriteSegment(Segment{Kind: KindStart}), "want init or media")
	assert.ErrorIs(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: make([]byte, defaultMaxSegmentBytes+1)}), ErrSegmentTooBig)
}

// An idle subscriber is pinged; one that does not answer is dropped, one
// that reads stays. Timing assumption: the reading client answers a ping
// within the 1 s write timeout (it is idle but for that).
func TestIdleSubscriberPing(t *testing.T) {
	e := newEnv(t, WithPingInterval(50*time.Millisecond), WithWriteTimeout(time.Second))
	deaf := e.dialRaw("s/subscribe", Subprotocol) // never reads: never answers a ping
	_ = deaf
	alive := e.subscribe("s")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := alive.Next(ctx) // reading answers pings
		done <- err
	}()
	waitFor(t, "the deaf subscriber to be dropped", func() bool { return e.hub.Stats().Subscribers == 1 })
	time.Sleep(1500 * time.Millisecond) // many ping intervals, longer than the write timeout
	assert.Equal(t, 1, e.hub.Stats().Subscribers, "a subscriber that answers pings stays")
	cancel()
	<-done
}
