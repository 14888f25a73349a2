package relay

import (
	"context"
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
	waitFor(t, "both to leave", func() bool { s := hub.Stats(); return s.Streams == 0 && s.Subscribers == 0 && s.Publishers == 0 })
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
