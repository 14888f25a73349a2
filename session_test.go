package relay

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nextN reads n segments of an in-process subscriber, without their data.
func nextN(t *testing.T, s *Subscriber, n int) []Segment {
	t.Helper()
	ctx := testCtx(t)
	var segs []Segment
	for range n {
		seg, err := s.Next(ctx)
		require.NoError(t, err)
		seg.Data = nil
		segs = append(segs, seg)
	}
	return segs
}

// sendInitAndMedia publishes an init, then media with the given keyframe
// flags (K = keyframe, m = not).
func sendInitAndMedia(t *testing.T, p *Publisher, pattern string) {
	t.Helper()
	require.NoError(t, p.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	for i, c := range pattern {
		require.NoError(t, p.WriteSegment(Segment{Kind: KindMedia, Keyframe: c == 'K', Data: []byte{byte(i), byte(c)}}))
	}
}

// Seq numbers over two sessions: init and media count up across sessions;
// Start carries the seq before the session, End the session's last seq.
func TestStartAndEndSeq(t *testing.T) {
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)

	// The subscriber reads each session before the next starts: a new
	// session's Start drops what is left queued of the last one
	// (TestStartDropsLeftovers).
	var got []Segment
	for range 2 {
		pub, err := hub.Publish(ctx, "s", "x")
		require.NoError(t, err)
		sendInitAndMedia(t, pub, "KmmKm") // init + 5 media
		require.NoError(t, pub.Close())
		got = append(got, nextN(t, sub, 8)...)
	}
	want := []Segment{
		{Kind: KindStart, MIME: "x", Seq: 0},
		{Kind: KindInit, Seq: 1},
		{Kind: KindMedia, Seq: 2, Keyframe: true},
		{Kind: KindMedia, Seq: 3},
		{Kind: KindMedia, Seq: 4},
		{Kind: KindMedia, Seq: 5, Keyframe: true},
		{Kind: KindMedia, Seq: 6},
		{Kind: KindEnd, Seq: 6},
		{Kind: KindStart, MIME: "x", Seq: 6},
		{Kind: KindInit, Seq: 7},
		{Kind: KindMedia, Seq: 8, Keyframe: true, Discontinuity: true},
		{Kind: KindMedia, Seq: 9},
		{Kind: KindMedia, Seq: 10},
		{Kind: KindMedia, Seq: 11, Keyframe: true},
		{Kind: KindMedia, Seq: 12},
		{Kind: KindEnd, Seq: 12},
	}
	assert.Equal(t, want, got)
}

// End carries the last segment's seq also when the session ends with an
// init (a recorder restart that sent no media yet) or has no media at all.
func TestEndSeqAfterInitOnly(t *testing.T) {
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	sendInitAndMedia(t, pub, "")
	require.NoError(t, pub.Close())
	assert.Equal(t, []Segment{
		{Kind: KindStart, MIME: "x", Seq: 0},
		{Kind: KindInit, Seq: 1},
		{Kind: KindEnd, Seq: 1},
	}, nextN(t, sub, 3))
}

// A subscriber that joins between two sessions starts with the second one:
// its first media segment is no discontinuity (it saw no earlier timeline),
// while a subscriber that stayed across both gets Discontinuity on it. The
// same for one that joins the second session after its init, before media.
func TestJoinBetweenSessionsHasNoDiscontinuity(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	stayed, err := e.hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer stayed.Close()

	pub, err := e.hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	sendInitAndMedia(t, pub, "Km")
	require.NoError(t, pub.Close())
	assert.Equal(t, KindEnd, nextN(t, stayed, 5)[4].Kind)

	between, err := e.hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer between.Close()
	betweenWS := e.subscribe("s")
	waitFor(t, "the WebSocket subscriber to join", func() bool { return e.hub.Stats().Subscribers == 3 })

	pub, err = e.hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	afterInit, err := e.hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer afterInit.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("k")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: []byte("m")}))

	media := func(segs []Segment) []Segment { return segs[2:] }
	assert.Equal(t, []Segment{
		{Kind: KindMedia, Seq: 5, Keyframe: true, Discontinuity: true},
		{Kind: KindMedia, Seq: 6},
	}, media(nextN(t, stayed, 4)), "stayed across sessions")
	assert.Equal(t, []Segment{
		{Kind: KindMedia, Seq: 5, Keyframe: true},
		{Kind: KindMedia, Seq: 6},
	}, media(nextN(t, between, 4)), "joined between sessions")
	assert.Equal(t, []Segment{
		{Kind: KindMedia, Seq: 5, Keyframe: true},
		{Kind: KindMedia, Seq: 6},
	}, media(nextN(t, afterInit, 4)), "joined after the init")

	var wire []Segment
	for range 4 {
		seg, err := betweenWS.Next(ctx)
		require.NoError(t, err)
		wire = append(wire, seg)
	}
	assert.Equal(t, []Segment{
		{Kind: KindStart, MIME: "x"},
		{Kind: KindInit, Seq: 4, Data: []byte("init")},
		{Kind: KindMedia, Seq: 5, Keyframe: true, Data: []byte("k")},
		{Kind: KindMedia, Seq: 6, Data: []byte("m")},
	}, wire, "joined between sessions, over WebSocket")
}

// A late joiner of a stream whose media so far has no keyframe (the
// publisher began mid-GOP) waits for the first keyframe.
func TestLateJoinWaitsForFirstKeyframe(t *testing.T) {
	hub := NewHub()
	ctx := context.Background()
	defer hub.Shutdown(ctx)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	sendInitAndMedia(t, pub, "mm")
	sub, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer sub.Close()
	for i, key := range []bool{false, false, true, false} {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: key, Data: []byte{byte(i)}}))
	}
	assert.Equal(t, []Segment{
		{Kind: KindStart, MIME: "x"},
		{Kind: KindInit, Seq: 1},
		{Kind: KindMedia, Seq: 6, Keyframe: true},
		{Kind: KindMedia, Seq: 7},
	}, nextN(t, sub, 4))
	assert.Zero(t, hub.Stats().Drops, "waiting for a first keyframe is no drop")
}
