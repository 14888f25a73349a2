package relay

import (
	"bytes"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A burst larger than a subscriber's queue, over WebSocket, tests the skip
// rule rather than "no gaps": whatever the scheduling, every segment the
// subscriber gets is the publisher's (same seq, same bytes), every gap in
// seq is followed by a keyframe Cluster flagged Discontinuity, and nothing
// else is flagged. The subscriber reads only after the whole burst, through
// a tiny socket buffer, so its queue overflows. The publisher's segments
// are known from the splitter run on the same messages. Without -race the
// publisher is often so fast that the subscriber is closed as too slow
// before it got anything; the rule is then checked on nothing but the close
// code.
func TestBurstOverQueueFollowsSkipRule(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Clusters: 96, Frames: 4, FrameBytes: 20000, KeyEvery: 3}) // ~7.7 MB: more than socket buffers can take
	msgs := cutEvery(l.Data, 64<<10)
	// What the publisher's segments are: the splitter's pieces for these
	// messages, numbered from the init's seq 1.
	var pieces []webm.Piece
	sp := webm.NewSplitter(defaultMaxSegmentBytes)
	for _, m := range msgs {
		require.NoError(t, sp.Write(m, func(p webm.Piece) error { pieces = append(pieces, p); return nil }))
	}
	require.True(t, pieces[0].Init)
	bySeq := map[uint64]Segment{}
	for i, p := range pieces[1:] {
		bySeq[uint64(i+2)] = Segment{Kind: KindMedia, Seq: uint64(i + 2), Keyframe: p.Keyframe, Data: p.Data}
	}

	// WithCoalesceBytes(1): every message's whole elements leave at its
	// end, as the splitter above cuts them (no coalescing of a burst).
	e := newEnv(t, WithSubscriberQueueBytes(128<<10), WithCoalesceBytes(1))
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := DialSubscribe(testCtx(t), e.url("s/subscribe"), &DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	require.NoError(t, err)
	t.Cleanup(func() { slow.conn.CloseNow() })
	pub := e.publish("s", PublishStart{MIME: l.MIME})
	for _, m := range msgs {
		require.NoError(t, pub.Send(testCtx(t), m))
	}
	require.NoError(t, pub.Close())

	ctx := testCtx(t)
	var got []Segment
	var end error
	for {
		seg, err := slow.Next(ctx)
		if err != nil {
			end = err // closed as too slow: allowed, after overflows
			require.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(err), "%v", err)
			break
		}
		got = append(got, seg)
		if seg.Kind == KindEnd {
			break
		}
	}
	// Closed as too slow, it may have got nothing at all (its queue,
	// Start and init included, is dropped on close).
	if end == nil {
		require.GreaterOrEqual(t, len(got), 3)
	}
	for i, kind := range []Kind{KindStart, KindInit} {
		if i < len(got) {
			require.Equal(t, kind, got[i].Kind)
		}
	}
	if len(got) > 1 {
		require.Equal(t, uint64(1), got[1].Seq)
	}
	gaps := 0
	prev := uint64(1)
	for _, seg := range got[min(2, len(got)):] {
		if seg.Kind == KindEnd {
			break
		}
		require.Equal(t, KindMedia, seg.Kind)
		w, ok := bySeq[seg.Seq]
		require.True(t, ok, "seq %d is no segment of the publisher", seg.Seq)
		require.True(t, bytes.Equal(w.Data, seg.Data), "seq %d: other bytes", seg.Seq)
		require.Equal(t, w.Keyframe, seg.Keyframe, "seq %d", seg.Seq)
		require.Greater(t, seg.Seq, prev, "seq goes up")
		if seg.Seq != prev+1 {
			gaps++
			assert.True(t, seg.Keyframe, "after the gap %d..%d: a keyframe", prev, seg.Seq)
			assert.True(t, seg.Discontinuity, "after the gap %d..%d: Discontinuity", prev, seg.Seq)
		} else {
			assert.False(t, seg.Discontinuity, "seq %d follows without a gap", seg.Seq)
		}
		prev = seg.Seq
	}
	t.Logf("%d segments of %d media received, %d gaps, ended by %v", len(got)-2, len(bySeq), gaps, end)
	require.Positive(t, gaps+boolInt(end != nil), "the burst did not overflow the queue: the test tests nothing")
	assert.Positive(t, e.hub.Stats().Drops)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
