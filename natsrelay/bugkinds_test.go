package natsrelay

import (
	"testing"

	relay "github.com/segrelay/relay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the kinds of bug of issue 24 (item 5): a NATS subscription not
// given back, a figure whose tests only saw it equal to another, a
// boundary and the state after a skip in the send queue.

// The subscriptions a relayed stream takes on NATS (B's segment
// subscription and catch-up inbox, A's catch-up responder) are all given
// back when the viewer leaves and the publisher ends; B counts the bytes
// it received, not the messages.
func TestSubscriptionsGivenBackAndBytesCounted(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)

	// A first session on A makes what stays for good (the JetStream
	// requests' response subscription).
	warm, err := a.hub.Publish(ctx, "warm", "video/webm")
	require.NoError(t, err)
	require.NoError(t, warm.Close())
	waitFor(t, "the warm-up's Start and End sent", func() bool { return a.bridge.Stats().MsgsOut >= 2 })
	require.NoError(t, a.nc.Flush())
	baseA, baseB := a.nc.NumSubscriptions(), b.nc.NumSubscriptions()

	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	m := newMedia("a", 100, 4)
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: m.init}))
	for range 2 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	sub, err := b.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	v := newViewer(t, sub)
	waitInterest(t, b)
	v.until(ctx, 1) // from the catch-up

	before := b.bridge.Stats()
	for range 3 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	v.until(ctx, 4)
	after := b.bridge.Stats()
	assert.Equal(t, uint64(3), after.MsgsIn-before.MsgsIn, "messages in")
	assert.Equal(t, uint64(3*100), after.BytesIn-before.BytesIn, "bytes in: 3 segments of 100 bytes")

	require.NoError(t, sub.Close())
	waitFor(t, "B's subscriptions given back", func() bool { return b.nc.NumSubscriptions() == baseB })
	require.NoError(t, pub.Close())
	waitFor(t, "A's subscriptions given back", func() bool { return a.nc.NumSubscriptions() == baseA })
}

// The send queue takes a segment of exactly its size; after a skip it
// resumes at the next keyframe and sends everything after it.
func TestSendQueueBoundaryAndResumeAfterASkip(t *testing.T) {
	ns := startNATS(t, 0)
	a := newNode(t, ns, "a", Options{SendQueueBytes: 1000})
	ctx := testCtx(t)
	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: []byte("init")}))
	// Once Start and the init went, the queue is empty: the next segment
	// has the whole of it.
	waitFor(t, "Start and the init sent", func() bool { return a.bridge.Stats().MsgsOut == 2 })
	write := func(key bool, size int) {
		t.Helper()
		require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindMedia, Keyframe: key, Data: make([]byte, size)}))
	}
	write(true, 1000) // exactly the queue's size: sent
	waitFor(t, "the keyframe of the queue's size sent or dropped", func() bool {
		s := a.bridge.Stats()
		return s.MsgsOut+s.Dropped == 3
	})
	require.Zero(t, a.bridge.Stats().Dropped, "a segment of exactly the queue's size was dropped")
	write(false, 2000) // over the queue: dropped, skip to the next keyframe
	write(false, 10)   // skipped
	write(true, 10)    // resumes
	for range 3 {
		write(false, 10) // all sent
	}
	waitFor(t, "every segment sent or dropped", func() bool {
		s := a.bridge.Stats()
		return s.MsgsOut+s.Dropped == 3+6
	})
	s := a.bridge.Stats()
	assert.Equal(t, uint64(2), s.Dropped, "dropped: the one over the queue and the delta after it")
	assert.Equal(t, uint64(3+4), s.MsgsOut, "sent: Start, init, the big keyframe, then the keyframe and the 3 deltas after the skip")
}
