package relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stream-mode coalescing over real loopback WebSockets. The publisher is
// a raw TCP connection that writes whole bursts of WebSocket messages in
// one write: a burst up to 64 KB reaches the hub's socket at once (one
// loopback segment), so what the hub can see pending is known. Messages are
// over 4 KB, so the next one never fits wholly in the hub's read buffer.

// rawStreamPublisher is a v1 stream-mode publisher that writes frames by
// hand.
type rawStreamPublisher struct {
	t    *testing.T
	conn net.Conn
}

func dialRawPublisher(t *testing.T, e *testEnv, stream, mime string) *rawStreamPublisher {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /live/%s/publish HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: %s\r\n\r\n", stream, Subprotocol)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Zero(t, br.Buffered())
	p := &rawStreamPublisher{t: t, conn: c}
	p.write(frame(0x1, []byte(fmt.Sprintf(`{"type":"start","mime":%q,"mode":"stream"}`, mime))))
	return p
}

// frame is one client WebSocket frame (FIN set, masked with a zero key).
func frame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0) // mask key: XOR with zeros
	return append(b, payload...)
}

// burst writes msgs as binary messages in one write.
func (p *rawStreamPublisher) burst(msgs ...[]byte) {
	var b []byte
	for _, m := range msgs {
		b = append(b, frame(0x2, m)...)
	}
	p.write(b)
}

func (p *rawStreamPublisher) write(b []byte) {
	_, err := p.conn.Write(b)
	require.NoError(p.t, err)
}

// cutMin cuts b into messages of size bytes, the last one taking the
// remainder, so that no message is shorter than size (unless b is).
func cutMin(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) >= 2*size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}

// bursts cuts l's stream into one burst per Cluster (the init goes with the
// first), each burst into messages of at least msgSize bytes.
func bursts(l webmtest.Layout, msgSize int) [][][]byte {
	var out [][][]byte
	from := 0
	for i, c := range l.Clusters {
		end := len(l.Data)
		if i+1 < len(l.Clusters) {
			end = l.Clusters[i+1].Offset
		}
		_ = c
		out = append(out, cutMin(l.Data[from:end], msgSize))
		from = end
	}
	return out
}

// readThrough reads s's segments until it has every byte of l.Data up to
// end (Start and the init included), and returns the media segments read.
func readThrough(t *testing.T, s *SubscribeClient, l webmtest.Layout, end int, got *int) []Segment {
	t.Helper()
	var media []Segment
	for *got < end {
		seg, err := s.Next(testCtx(t))
		require.NoError(t, err)
		switch seg.Kind {
		case KindInit:
			require.Equal(t, l.Data[:l.InitLen], seg.Data)
			*got = l.InitLen
		case KindMedia:
			require.Equal(t, l.Data[*got:*got+len(seg.Data)], seg.Data, "media at %d", *got)
			*got += len(seg.Data)
			media = append(media, seg)
		}
	}
	require.Equal(t, end, *got)
	return media
}

// A publisher writing 5 KB messages at 2.5 Mbit/s, 200 ms Clusters sent as
// they are recorded (one burst each): each Cluster reaches subscribers in at
// most two segments (≤ 10 a second), keyframe flags as in the stream, not
// one segment per message or per frame.
func TestStreamCoalescesSmallMessages(t *testing.T) {
	// 30 fps, 200 ms Clusters of ~60 KB (a burst under 64 KB: one loopback segment), a keyframe every 2 s.
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 10, Frames: 6, FrameBytes: 10_000, KeyEvery: 10})
	e := newEnv(t, WithCoalesceDelay(time.Hour)) // no timer: the rules alone
	sub := e.subscribe("s")
	pub := dialRawPublisher(t, e, "s", l.MIME)
	got, messages, segments := 0, 0, 0
	for i, b := range bursts(l, 5120) {
		messages += len(b)
		pub.burst(b...)
		end := len(l.Data)
		if i+1 < len(l.Clusters) {
			end = l.Clusters[i+1].Offset
		}
		media := readThrough(t, sub, l, end, &got)
		require.NotEmpty(t, media)
		assert.LessOrEqual(t, len(media), 2, "Cluster %d: %d KB in %d messages", i, l.Clusters[i].Len>>10, len(b))
		assert.Equal(t, l.Clusters[i].Keyframe, media[0].Keyframe, "Cluster %d starts a segment with its keyframe flag", i)
		for _, m := range media[1:] {
			assert.False(t, m.Keyframe)
		}
		segments += len(media)
	}
	t.Logf("%d messages of 5120 bytes, %d Clusters: %d media segments", messages, len(l.Clusters), segments)
}

// A browser's blob (a whole Cluster, one message) is forwarded as soon as
// it is read: with no coalescing delay to wait for, the subscriber has it
// before the next blob is sent.
func TestStreamBlobForwardedAtOnce(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 6, Frames: 6, FrameBytes: 8000, KeyEvery: 3})
	e := newEnv(t, WithCoalesceDelay(time.Hour))
	sub := e.subscribe("s")
	pub := dialRawPublisher(t, e, "s", l.MIME)
	got := 0
	for i, b := range bursts(l, 1<<20) {
		require.Len(t, b, 1)
		pub.burst(b...)
		end := len(l.Data)
		if i+1 < len(l.Clusters) {
			end = l.Clusters[i+1].Offset
		}
		media := readThrough(t, sub, l, end, &got) // before the next blob
		require.Len(t, media, 1, "one segment per blob")
		assert.Equal(t, l.Clusters[i].Keyframe, media[0].Keyframe)
	}
}

// When the publisher's next message started arriving but does not
// complete, what is whole waits for the coalescing delay, not longer.
func TestStreamCoalesceDelay(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Clusters: 2, Frames: 4, FrameBytes: 6000})
	e := newEnv(t, WithCoalesceDelay(20*time.Millisecond))
	sub := e.subscribe("s")
	pub := dialRawPublisher(t, e, "s", l.MIME)
	first := bursts(l, 5120)[0]
	// The next message's first 5000 bytes only: more than the hub's read
	// buffer takes, so some stay in its socket, seen as pending.
	next := frame(0x2, make([]byte, 5120))
	pub.write(append(frameAll(first), next[:5000]...))
	got := 0
	media := readThrough(t, sub, l, l.Clusters[1].Offset, &got)
	assert.True(t, media[0].Keyframe)
}

func frameAll(msgs [][]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, frame(0x2, m)...)
	}
	return b
}

// In process, Write coalesces too: small writes leave in few segments, by
// size, by the delay, or at Flush; every byte and flag as written.
func TestPublisherWriteCoalesces(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 8, Frames: 6, FrameBytes: 10_000, KeyEvery: 4})
	hub := NewHub(WithCoalesceDelay(time.Hour), WithSubscriberQueueBytes(64<<20))
	t.Cleanup(func() { hub.Shutdown(testCtx(t)) })
	sub, err := hub.Subscribe(testCtx(t), "s")
	require.NoError(t, err)
	pub, err := hub.Publish(testCtx(t), "s", "")
	require.NoError(t, err)
	for _, m := range cutEvery(l.Data, 1000) {
		_, err := pub.Write(m)
		require.NoError(t, err)
	}
	require.NoError(t, pub.Close())
	var segs []Segment
	for {
		seg, err := sub.Next(testCtx(t))
		require.NoError(t, err)
		segs = append(segs, seg)
		if seg.Kind == KindEnd {
			break
		}
	}
	checkWebMSession(t, segs, l)
	media := len(segs) - 3
	t.Logf("%d bytes in 1000-byte writes: %d media segments for %d Clusters", len(l.Data), media, len(l.Clusters))
	assert.LessOrEqual(t, media, 2*len(l.Clusters), "about 60 KB Clusters: two segments each at most")

	// The delay: a write's whole elements leave without another write.
	hub2 := NewHub(WithCoalesceDelay(time.Millisecond))
	t.Cleanup(func() { hub2.Shutdown(testCtx(t)) })
	sub2, err := hub2.Subscribe(testCtx(t), "s")
	require.NoError(t, err)
	pub2, err := hub2.Publish(testCtx(t), "s", "")
	require.NoError(t, err)
	defer pub2.Close()
	_, err = pub2.Write(l.Data[:l.Clusters[1].Offset+1000])
	require.NoError(t, err)
	got := 0
	for got < l.Clusters[1].Offset {
		seg, err := sub2.Next(testCtx(t))
		require.NoError(t, err)
		if seg.Kind == KindInit || seg.Kind == KindMedia {
			got += len(seg.Data)
		}
	}
	assert.Equal(t, l.Clusters[1].Offset, got)
}

// Whole elements held back to be coalesced are bytes the hub keeps for the
// publisher, so they count against WithMemoryBudget: Stats().Held includes
// them, and a Cluster held past the budget ends the publisher with
// ErrOverBudget (over a WebSocket, close code 1009) before any of it is
// forwarded. The size and delay never flush here: only the budget stops it.
func TestCoalescedBytesCountAgainstBudget(t *testing.T) {
	// One ~60 KB Cluster, then the next one's start.
	l := webmtest.Build(webmtest.Spec{Clusters: 2, Frames: 6, FrameBytes: 10_000})
	hold := []Option{WithCoalesceDelay(time.Hour), WithCoalesceBytes(1 << 20)}

	t.Run("Held", func(t *testing.T) {
		hub := NewHub(hold...)
		t.Cleanup(func() { hub.Shutdown(testCtx(t)) })
		pub, err := hub.Publish(testCtx(t), "s", "")
		require.NoError(t, err)
		defer pub.Close()
		for _, m := range cutEvery(l.Data[:l.Clusters[0].Offset+l.Clusters[0].Len/2], 1000) {
			_, err := pub.Write(m)
			require.NoError(t, err)
		}
		pub.mu.Lock()
		pending := pub.splitter.Pending()
		pub.mu.Unlock()
		require.Greater(t, pending, 20_000, "whole frames wait to be coalesced")
		assert.Equal(t, int64(l.InitLen), pub.Published(), "none of the Cluster went out")
		assert.GreaterOrEqual(t, hub.Stats().Held, pub.Published()+int64(pending))
		require.NoError(t, pub.Close())
		assert.Zero(t, hub.Stats().Held, "all given back at the end")
	})

	const budget = 32 << 10 // about half the Cluster
	t.Run("ErrOverBudget", func(t *testing.T) {
		hub := NewHub(append(hold, WithMemoryBudget(budget))...)
		t.Cleanup(func() { hub.Shutdown(testCtx(t)) })
		pub, err := hub.Publish(testCtx(t), "s", "")
		require.NoError(t, err)
		defer pub.Close()
		for _, m := range cutEvery(l.Data[:l.Clusters[1].Offset], 1000) {
			if _, err = pub.Write(m); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, ErrOverBudget)
		assert.Contains(t, err.Error(), "the WebM held back")
		assert.Equal(t, int64(l.InitLen), pub.Published(), "what went over was held, not forwarded")
		assert.LessOrEqual(t, hub.Stats().Held, int64(budget))
	})

	t.Run("close 1009", func(t *testing.T) {
		e := newEnv(t, append(hold, WithMemoryBudget(budget))...)
		pub := dialRawPublisher(t, e, "s", l.MIME)
		// The init and the Cluster in one burst of 5,120-byte messages:
		// each has the next one behind it, so the hub holds them all.
		pub.burst(bursts(l, 5120)[0]...)
		code, reason := pub.readClose()
		assert.Equal(t, 1009, code, reason)
		assert.True(t, strings.HasPrefix(reason, ErrOverBudget.Error()), reason)
		assert.Contains(t, reason, "the WebM held back")
	})
}

// readClose reads the hub's frames until its close frame and returns the
// code and reason.
func (p *rawStreamPublisher) readClose() (int, string) {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(p.conn)
	for {
		var h [2]byte
		_, err := io.ReadFull(br, h[:])
		require.NoError(p.t, err)
		n := uint64(h[1] & 0x7f) // the hub's frames are not masked
		switch n {
		case 126:
			var b [2]byte
			_, err = io.ReadFull(br, b[:])
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			_, err = io.ReadFull(br, b[:])
			n = binary.BigEndian.Uint64(b[:])
		}
		require.NoError(p.t, err)
		payload := make([]byte, n)
		_, err = io.ReadFull(br, payload)
		require.NoError(p.t, err)
		if h[0]&0x0f == 0x8 {
			require.GreaterOrEqual(p.t, len(payload), 2)
			return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
		}
	}
}

// A session that ends inside an element (ffmpeg killed mid-write) still
// forwards the whole elements held back before it: only the cut element is
// lost.
func TestEndInsideAnElementForwardsWholeElements(t *testing.T) {
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)
	l := webmtest.Build(webmtest.Spec{Clusters: 2, Frames: 5})
	p, err := hub.Publish(ctx, "s", "")
	require.NoError(t, err)
	c := l.Clusters[1]
	cut := c.Offset + c.Len - 10 // inside the last block of the last Cluster
	_, err = p.Write(l.Data[:cut])
	require.NoError(t, err)
	require.NoError(t, p.Close())
	got := sessionBytes(t, ctx, sub)
	lastBlock := 0 // where the last element of the stream, the cut block, starts
	for _, el := range webmtest.OracleWalk(t, l.Data) {
		lastBlock = el.Start
	}
	assert.Equal(t, lastBlock, len(got), "everything up to the cut block")
	assert.True(t, bytes.Equal(l.Data[:len(got)], got))
}
