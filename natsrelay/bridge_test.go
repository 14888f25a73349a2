package natsrelay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var segmentsMode = relay.PublishStart{MIME: "video/webm;codecs=vp8", Mode: relay.ModeSegments}

func dialSubscribe(t *testing.T, n *node, stream string) *relay.SubscribeClient {
	t.Helper()
	s, err := relay.DialSubscribe(testCtx(t), n.url(stream+"/subscribe"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func dialPublish(t *testing.T, n *node, stream string) (*relay.PublishClient, error) {
	t.Helper()
	p, err := relay.DialPublish(testCtx(t), n.url(stream+"/publish"), segmentsMode, nil)
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// publishWhenFree dials a publisher on n, again while the stream is busy
// (as relay.js does after its own connection dropped).
func publishWhenFree(t *testing.T, n *node, stream string) *relay.PublishClient {
	t.Helper()
	var p *relay.PublishClient
	waitFor(t, "the stream to be free on "+n.name, func() bool {
		var err error
		p, err = dialPublish(t, n, stream)
		if errors.Is(err, relay.ErrStreamBusy) {
			return false
		}
		require.NoError(t, err)
		return true
	})
	return p
}

func sendInit(t *testing.T, p *relay.PublishClient, m *media) {
	t.Helper()
	require.NoError(t, p.SendSegment(testCtx(t), relay.Segment{Kind: relay.KindInit, Data: m.init}))
}

func sendMedia(t *testing.T, p *relay.PublishClient, m *media, n int) {
	t.Helper()
	for range n {
		require.NoError(t, p.SendSegment(testCtx(t), m.segment()))
	}
}

// waitInterest waits until n's bridge relays stream: its subscription is
// in place once its first catch-up request was answered.
func waitInterest(t *testing.T, n *node) {
	t.Helper()
	waitFor(t, "the catch-up of "+n.name, func() bool { return n.bridge.Stats().Resyncs >= 1 })
	n.nc.Flush()
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// Publish on A, watch on B and C over WebSockets and on A in-process:
// every segment arrives, in order, with no discontinuity.
func TestThreeNodesSteadyState(t *testing.T) {
	ns := startNATS(t, 0)
	a, b, c := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{}), newNode(t, ns, "c", Options{})
	ctx := testCtx(t)

	vb, vc := newViewer(t, dialSubscribe(t, b, "room")), newViewer(t, dialSubscribe(t, c, "room"))
	local, err := a.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer local.Close()
	va := newViewer(t, local)
	waitInterest(t, b)
	waitInterest(t, c)

	pub, err := dialPublish(t, a, "room")
	require.NoError(t, err)
	m := newMedia("a", 2000, 10)
	sendInit(t, pub, m)
	const n = 300
	sendMedia(t, pub, m, n)
	for _, v := range []*viewer{va, vb, vc} {
		start := v.untilKind(ctx, relay.KindStart)
		assert.Equal(t, segmentsMode.MIME, start.MIME)
		v.until(ctx, n-1)
		assert.Equal(t, seq(0, n-1), v.media, "every segment, in order")
		assert.Empty(t, v.discs)
		assert.Equal(t, [][]byte{m.init}, v.inits)
	}
	assert.Zero(t, b.bridge.Stats().Gaps)
	assert.Zero(t, a.bridge.Stats().Dropped)
	assert.Equal(t, 1, b.hub.Streams()[0].Subscribers, "the bridge is not a subscriber")

	// The end reaches the remote viewers too.
	require.NoError(t, pub.Close())
	vb.untilKind(ctx, relay.KindEnd)
	vc.untilKind(ctx, relay.KindEnd)
}

// A viewer that joins C mid-GOP starts at the last keyframe at once (a
// catch-up from A); a second one gets it from C's own cache.
func TestLateJoinStartsAtKeyframe(t *testing.T) {
	ns := startNATS(t, 0)
	a, c := newNode(t, ns, "a", Options{}), newNode(t, ns, "c", Options{})
	ctx := testCtx(t)

	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	m := newMedia("a", 500, 5)
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: m.init}))
	for range 13 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}

	waitFor(t, "A's segments sent", func() bool { return a.bridge.Stats().MsgsOut == 15 })
	// Nothing more is published while they join: what they get comes from
	// the GOP caches.
	first := newViewer(t, dialSubscribe(t, c, "room"))
	first.untilKind(ctx, relay.KindStart)
	first.until(ctx, 12)
	assert.Equal(t, []int{10, 11, 12}, first.media, "from the last keyframe")

	sub, err := c.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer sub.Close()
	second := newViewer(t, sub)
	second.until(ctx, 12)
	assert.Equal(t, []int{10, 11, 12}, second.media)
	assert.Equal(t, [][]byte{m.init}, second.inits)
	assert.Equal(t, uint64(1), c.bridge.Stats().Resyncs, "the second viewer needed no catch-up")

	for range 8 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	first.until(ctx, 20)
	second.until(ctx, 20)
	assert.Equal(t, seq(10, 20), first.media)
	assert.Equal(t, seq(10, 20), second.media)
	assert.Empty(t, first.discs)
}

// One publisher per stream in the cluster: a second one on another node
// gets 409 (ErrStreamBusy), in-process too, until the first leaves.
func TestSecondPublisherOnAnotherNodeGets409(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)

	pub, err := dialPublish(t, a, "room.1")
	require.NoError(t, err)
	_, err = dialPublish(t, b, "room.1")
	var he *relay.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusConflict, he.Status)
	assert.ErrorIs(t, err, relay.ErrStreamBusy)
	assert.Contains(t, he.Body, "on node a")
	_, err = b.hub.Publish(ctx, "room.1", "video/webm")
	assert.ErrorIs(t, err, relay.ErrStreamBusy)
	_, err = dialPublish(t, a, "room.1")
	assert.ErrorIs(t, err, relay.ErrStreamBusy, "on its own node too")

	// Another stream is free on B.
	other, err := b.hub.Publish(ctx, "room.2", "video/webm")
	require.NoError(t, err)
	other.Close()

	require.NoError(t, pub.Close())
	publishWhenFree(t, b, "room.1")
	_, err = dialPublish(t, a, "room.1")
	assert.ErrorIs(t, err, relay.ErrStreamBusy, "now B holds it")
}

// The publisher leaves A and comes back on B: viewers on C and A see the
// end of one session and the start of the next.
func TestPublisherMovesFromAToB(t *testing.T) {
	ns := startNATS(t, 0)
	a, b, c := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{}), newNode(t, ns, "c", Options{})
	ctx := testCtx(t)

	vc := newViewer(t, dialSubscribe(t, c, "room"))
	local, err := a.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer local.Close()
	va := newViewer(t, local)
	waitInterest(t, c)
	waitInterest(t, a)

	pa, err := dialPublish(t, a, "room")
	require.NoError(t, err)
	ma := newMedia("a", 1000, 5)
	sendInit(t, pa, ma)
	sendMedia(t, pa, ma, 20)
	vc.until(ctx, 19)
	va.until(ctx, 19)
	require.NoError(t, pa.Close())
	vc.untilKind(ctx, relay.KindEnd)
	va.untilKind(ctx, relay.KindEnd)

	pb := publishWhenFree(t, b, "room")
	mb := newMedia("b", 1000, 5)
	sendInit(t, pb, mb)
	sendMedia(t, pb, mb, 20)
	for _, v := range []*viewer{vc, va} {
		v.untilKind(ctx, relay.KindStart)
		init := v.untilKind(ctx, relay.KindInit)
		assert.Equal(t, mb.init, init.Data)
		v.media, v.prev = nil, -1
		v.until(ctx, 19)
	}
	assert.Equal(t, seq(0, 19), vc.media, "C relayed the stream all along")
	// A relays again only since its own publisher left: it may have
	// caught up with B's session after its first segments.
	assert.Equal(t, seq(va.media[0], 19), va.media)
	assert.Zero(t, va.media[0]%5, "from a keyframe")
}

// Segments above the server's max payload are split and rejoined.
func TestSegmentsAboveMaxPayload(t *testing.T) {
	ns := startNATS(t, 4096)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)
	require.Equal(t, int64(4096), a.nc.MaxPayload())

	vb := newViewer(t, dialSubscribe(t, b, "big"))
	waitInterest(t, b)
	pub, err := dialPublish(t, a, "big")
	require.NoError(t, err)
	m := newMedia("a", 20000, 3)
	m.init = bytes.Repeat([]byte("i"), 9000)
	sendInit(t, pub, m)
	want := newMedia("a", 20000, 3)
	for range 10 {
		require.NoError(t, pub.SendSegment(ctx, m.segment()))
	}
	init := vb.untilKind(ctx, relay.KindInit)
	assert.Equal(t, m.init, init.Data)
	for i := range 10 {
		seg := vb.next(ctx)
		require.Equal(t, relay.KindMedia, seg.Kind)
		w := want.segment()
		assert.Equal(t, w.Keyframe, seg.Keyframe)
		require.True(t, bytes.Equal(w.Data, seg.Data), "segment %d: exact bytes", i)
	}
	assert.GreaterOrEqual(t, a.bridge.Stats().MsgsOut, uint64(1+3+10*5), "split into parts under 4096 bytes")
	assert.Zero(t, b.bridge.Stats().Gaps)
}

// NATS goes away mid-stream: A's own viewers keep watching; B's resume
// when NATS is back, at a keyframe marked Discontinuity.
func TestNATSRestartMidStream(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)

	vb := newViewer(t, dialSubscribe(t, b, "room"))
	local, err := a.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer local.Close()
	va := newViewer(t, local)
	waitInterest(t, b)

	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	m := newMedia("a", 1000, 5)
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: m.init}))
	write := func(n int) {
		for range n {
			require.NoError(t, pub.WriteSegment(m.segment()))
		}
	}
	write(20)
	va.until(ctx, 19)
	vb.until(ctx, 19)

	ns.stop()
	waitFor(t, "both nodes to notice", func() bool { return !a.nc.IsConnected() && !b.nc.IsConnected() })
	write(20) // never waits for NATS; A's bridge drops it
	va.until(ctx, 39)

	ns.start()
	waitFor(t, "both nodes reconnected", func() bool { return a.nc.IsConnected() && b.nc.IsConnected() })
	write(20)
	vb.until(ctx, 59)
	va.until(ctx, 59)

	assert.Equal(t, seq(0, 59), va.media, "local viewers lose nothing")
	assert.Empty(t, va.discs)
	assert.NotEmpty(t, vb.discs, "B resumed after a gap, at a discontinuity")
	assert.Greater(t, vb.media[len(vb.media)-1], 39)
	assert.GreaterOrEqual(t, b.bridge.Stats().Resyncs, uint64(2), "a catch-up after the gap")
	assert.GreaterOrEqual(t, a.bridge.Stats().Dropped, uint64(20))

	// The claim came back with NATS: B still may not publish the stream.
	waitFor(t, "the claim renewed", func() bool {
		p, err := b.hub.Publish(ctx, "room", "video/webm")
		if err == nil {
			p.Close() // allowed: the claim is not written yet
			return false
		}
		require.ErrorIs(t, err, relay.ErrStreamBusy)
		return strings.Contains(err.Error(), "on node a")
	})
}

// A node dies with a live publisher: its claim expires, remote viewers see
// the session end, and the publisher can come back on a restarted node.
// A restarted viewer node serves the stream again at once.
func TestNodeRestart(t *testing.T) {
	ns := startNATS(t, 0)
	opts := Options{ClaimTTL: time.Second, IdleTimeout: time.Second, RequestTimeout: time.Second}
	a, b := newNode(t, ns, "a", opts), newNode(t, ns, "b", opts)
	ctx := testCtx(t)

	vb := newViewer(t, dialSubscribe(t, b, "room"))
	waitInterest(t, b)
	pa, err := dialPublish(t, a, "room")
	require.NoError(t, err)
	m := newMedia("a", 1000, 5)
	sendInit(t, pa, m)
	sendMedia(t, pa, m, 10)
	vb.until(ctx, 9)

	a.crash()
	vb.untilKind(ctx, relay.KindEnd)

	a2 := newNode(t, ns, "a2", opts)
	p2 := publishWhenFree(t, a2, "room") // once a's claim expired
	m2 := newMedia("a2", 1000, 5)
	sendInit(t, p2, m2)
	sendMedia(t, p2, m2, 12)
	vb.untilKind(ctx, relay.KindStart)
	init := vb.untilKind(ctx, relay.KindInit)
	assert.Equal(t, m2.init, init.Data)
	vb.media, vb.prev = nil, -1
	vb.until(ctx, 11)
	assert.Equal(t, seq(0, 11), vb.media)

	b.stop()
	b2 := newNode(t, ns, "b2", opts)
	v2 := newViewer(t, dialSubscribe(t, b2, "room"))
	v2.untilKind(ctx, relay.KindStart)
	v2.until(ctx, 11)
	assert.Equal(t, []int{10, 11}, v2.media, "from the last keyframe, with nothing more published")
}

// A node subscribes to a stream's subject only while it has subscribers
// for it, and not while it publishes the stream itself.
func TestInterestOnlyWhileSubscribers(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)
	receivers := func(n *node) int {
		n.bridge.mu.Lock()
		defer n.bridge.mu.Unlock()
		return len(n.bridge.receivers)
	}
	subject := func() int { // NATS subscriptions to the stream's subject, over both nodes
		sz, err := ns.srv.Subsz(&server.SubszOptions{Subscriptions: true, Test: "segrelay.seg.room"})
		require.NoError(t, err)
		return int(sz.Total)
	}
	require.Zero(t, subject())

	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	local, err := a.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	assert.Zero(t, receivers(a), "A has the stream first-hand")

	s1, err := b.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	s2 := dialSubscribe(t, b, "room")
	waitFor(t, "B's subscription", func() bool { return subject() == 1 })
	assert.Equal(t, 1, receivers(b))
	require.NoError(t, s1.Close())
	require.NoError(t, s2.Close())
	waitFor(t, "B's unsubscription", func() bool { return subject() == 0 && receivers(b) == 0 })

	// A's own viewers watch another node's publisher once A's left.
	require.NoError(t, pub.Close())
	waitFor(t, "A's subscription", func() bool { return subject() == 1 && receivers(a) == 1 })
	local.Close()
	waitFor(t, "A's unsubscription", func() bool { return subject() == 0 })
}

// Without claims (a NATS without JetStream), two nodes may publish the
// same stream.
func TestNoClaims(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{NoClaims: true}), newNode(t, ns, "b", Options{NoClaims: true})
	ctx := testCtx(t)
	p1, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer p1.Close()
	p2, err := b.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer p2.Close()
}

// A gap in Seq (here a forged message from the future) is never passed
// on: B catches up and its viewers resume at a keyframe after a new init,
// marked Discontinuity.
func TestGapIsHealedAtAKeyframe(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)

	vb := newViewer(t, dialSubscribe(t, b, "room"))
	waitInterest(t, b)
	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	m := newMedia("a", 100, 4)
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: m.init}))
	for range 6 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	vb.until(ctx, 5)

	forged := relay.Segment{Kind: relay.KindMedia, Seq: 100, Data: []byte("forged: not from A's hub")}
	nc, err := nats.Connect(ns.url())
	require.NoError(t, err)
	defer nc.Close()
	for _, msg := range segmentMsgs("segrelay.seg.room", "a", a.bridge.out.session("room"), forged, nc.MaxPayload()) {
		require.NoError(t, nc.PublishMsg(msg))
	}
	require.NoError(t, nc.Flush())
	waitFor(t, "the gap", func() bool { return b.bridge.Stats().Gaps == 1 })
	vb.untilKind(ctx, relay.KindInit) // the catch-up's

	for range 7 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	vb.until(ctx, 12)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10, 11, 12}, vb.media,
		"the GOP again from its keyframe after the gap, then the rest; the forged segment was not passed on")
	assert.Equal(t, [][]byte{m.init, m.init}, vb.inits, "the init again after the gap")
	assert.Equal(t, []int{4}, vb.discs, "the keyframe after the new init is marked")
	assert.Equal(t, 12, vb.media[len(vb.media)-1])
}

// A hub that cannot take the relayed stream (WithMaxStreams) keeps
// trying, and relays it once it can.
func TestRelayedStreamWaitsForRoom(t *testing.T) {
	ns := startNATS(t, 0)
	a := newNode(t, ns, "a", Options{})
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1))
	require.NoError(t, err)
	hub := relay.NewHub(relay.WithMaxStreams(1))
	bridge, err := New(hub, nc, Options{NodeID: "b"})
	require.NoError(t, err)
	t.Cleanup(func() {
		hub.Shutdown(context.Background())
		bridge.Close()
		nc.Close()
	})
	ctx := testCtx(t)

	other, err := hub.Publish(ctx, "other", "video/webm") // takes B's only stream
	require.NoError(t, err)
	sub, err := hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer sub.Close()
	v := newViewer(t, sub)

	pub, err := a.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	m := newMedia("a", 100, 2)
	require.NoError(t, pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: m.init}))
	for range 3 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	waitFor(t, "B to try", func() bool { return bridge.Stats().Resyncs >= 2 }) // a catch-up after a refused session
	require.NoError(t, other.Close())
	for range 3 {
		require.NoError(t, pub.WriteSegment(m.segment()))
	}
	v.untilKind(ctx, relay.KindStart)
	v.until(ctx, 5)
	assert.Zero(t, v.media[0]%2, "from a keyframe")
}

// Publishers racing for the same streams on two nodes: exactly one wins
// each stream (the claim is an atomic create).
func TestConcurrentClaimsOneWins(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)
	const streams = 20
	type result struct {
		pub *relay.Publisher
		err error
	}
	results := make([][2]result, streams)
	done := make(chan struct{})
	for i := range streams {
		for j, n := range []*node{a, b} {
			go func() {
				defer func() { done <- struct{}{} }()
				p, err := n.hub.Publish(ctx, fmt.Sprintf("race%d", i), "video/webm")
				results[i][j] = result{p, err}
			}()
		}
	}
	for range 2 * streams {
		<-done
	}
	for i, r := range results {
		won := 0
		for _, x := range r {
			if x.err == nil {
				won++
				x.pub.Close()
			} else {
				assert.ErrorIs(t, x.err, relay.ErrStreamBusy)
			}
		}
		assert.Equal(t, 1, won, "stream race%d", i)
	}
}
