package relay

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stream of many tiny segments overflows a subscriber's queue by count,
// not by bytes: the queue never holds more than 4,096 entries, and the
// subscriber skips to the next keyframe like after a byte overflow.
func TestQueueEntryBound(t *testing.T) {
	const bound = 4096 // the documented bound, not the package's constant
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()

	queued := func() int {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.queue.n
	}
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")})) // seq 1
	const tiny = 5000                                                                // 1 key + 4999 others: 5000 bytes, far below the byte limit
	most := 0
	for i := range tiny {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: i == 0, Data: []byte{byte(i)}}))
		most = max(most, queued())
	}
	assert.LessOrEqual(t, most, bound, "entries queued at most")
	assert.Greater(t, most, bound-10, "the bound is not hit earlier")
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("key")})) // seq tiny+2

	got := nextN(t, sub, 3)
	assert.Equal(t, []Segment{
		{Kind: KindStart, MIME: "x"},
		{Kind: KindInit, Seq: 1},
		{Kind: KindMedia, Seq: tiny + 2, Keyframe: true, Discontinuity: true},
	}, got, "resumes at the next keyframe")
	assert.Equal(t, uint64(tiny), hub.Stats().Drops, "every tiny segment was dropped or skipped")
	assert.Zero(t, queued())
}

// Below the bound nothing is lost: 4,000 tiny segments (with start and
// init, 4,002 entries) all arrive, in order.
func TestQueueBelowEntryBoundKeepsAll(t *testing.T) {
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")}))
	const n = 4000
	for i := range n {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: i%100 == 0, Data: []byte{byte(i)}}))
	}
	got := nextN(t, sub, n+2)
	for i, seg := range got[2:] {
		require.Equal(t, uint64(i+2), seg.Seq)
		require.False(t, seg.Discontinuity)
	}
	assert.Zero(t, hub.Stats().Drops)
}

// A byte overflow on a keyframe resumes at that very keyframe, with
// Discontinuity, and drops the stale media queued before it.
func TestByteOverflowOnKeyframeResumesThere(t *testing.T) {
	hub := NewHub(WithSubscriberQueueBytes(100))
	ctx := context.Background()
	defer hub.Shutdown(ctx)
	sub, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer sub.Close()
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")})) // 1
	for _, key := range []bool{true, false, false, true, false} {                    // seq 2..6: 5 overflows (4*30 > 100)
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: key, Data: make([]byte, 30)}))
	}
	assert.Equal(t, []Segment{
		{Kind: KindStart, MIME: "x"},
		{Kind: KindInit, Seq: 1},
		{Kind: KindMedia, Seq: 5, Keyframe: true, Discontinuity: true},
		{Kind: KindMedia, Seq: 6},
	}, nextN(t, sub, 4))
	assert.Equal(t, uint64(3), hub.Stats().Drops, "2, 3, 4 dropped from the queue")
}
