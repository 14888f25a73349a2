package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/testutil"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testEnv is a Hub mounted under /live/ of a real HTTP server on loopback.
type testEnv struct {
	t   *testing.T
	hub *Hub
	srv *httptest.Server
}

func newEnv(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	hub := NewHub(opts...)
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, hub.Shutdown(ctx))
		srv.Close()
	})
	return &testEnv{t: t, hub: hub, srv: srv}
}

// url returns the WebSocket URL of a route under the mount point.
func (e *testEnv) url(route string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/live/" + route
}

func testCtx(t *testing.T) context.Context { return testutil.Ctx(t) }

func (e *testEnv) publish(stream string, start PublishStart) *PublishClient {
	e.t.Helper()
	p, err := DialPublish(testCtx(e.t), e.url(stream+"/publish"), start, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { p.conn.CloseNow(); <-p.readDone })
	return p
}

func (e *testEnv) subscribe(stream string) *SubscribeClient {
	e.t.Helper()
	s, err := DialSubscribe(testCtx(e.t), e.url(stream+"/subscribe"), nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { s.conn.CloseNow() })
	return s
}

// dialRaw opens a WebSocket asking for the given subprotocols (none: legacy).
func (e *testEnv) dialRaw(route string, protos ...string) *websocket.Conn {
	e.t.Helper()
	c, _, err := websocket.Dial(testCtx(e.t), e.url(route), &websocket.DialOptions{Subprotocols: protos})
	require.NoError(e.t, err)
	c.SetReadLimit(-1)
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, cond)
}

// readUntilEnd reads a v1 subscriber's segments up to and including End.
func readUntilEnd(t *testing.T, s *SubscribeClient) []Segment {
	t.Helper()
	ctx := testCtx(t)
	var segs []Segment
	for {
		seg, err := s.Next(ctx)
		require.NoError(t, err)
		segs = append(segs, seg)
		if seg.Kind == KindEnd {
			return segs
		}
	}
}

// sessionBytes reads an in-process subscriber up to End and returns the
// data of what it got.
func sessionBytes(t *testing.T, ctx context.Context, sub *Subscriber) []byte {
	t.Helper()
	var got []byte
	for {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		if seg.Kind == KindEnd {
			return got
		}
		got = append(got, seg.Data...)
	}
}

// checkWebMSession asserts that segs (Start … End) carry the WebM stream of
// l exactly: its init, then its bytes cut at Cluster starts with the right
// keyframe flags, numbered without gaps.
func checkWebMSession(t *testing.T, segs []Segment, l webmtest.Layout) {
	t.Helper()
	require.GreaterOrEqual(t, len(segs), 3)
	require.Equal(t, KindStart, segs[0].Kind)
	require.Equal(t, KindEnd, segs[len(segs)-1].Kind)
	require.Equal(t, KindInit, segs[1].Kind)
	assert.Equal(t, l.Data[:l.InitLen], segs[1].Data, "init segment")

	starts := map[int]bool{}
	for _, c := range l.Clusters {
		starts[c.Offset] = c.Keyframe
	}
	off := l.InitLen
	seq := segs[1].Seq
	clusters := 0
	for _, seg := range segs[2 : len(segs)-1] {
		require.Equal(t, KindMedia, seg.Kind)
		seq++
		require.Equal(t, seq, seg.Seq, "seq without gaps")
		key, isStart := starts[off]
		if isStart {
			clusters++
			assert.Equal(t, key, seg.Keyframe, "keyframe flag of the Cluster at %d", off)
		} else {
			assert.False(t, seg.Keyframe, "a segment inside a Cluster (at %d) is no keyframe", off)
		}
		assert.False(t, seg.Discontinuity)
		require.LessOrEqual(t, off+len(seg.Data), len(l.Data))
		require.Equal(t, l.Data[off:off+len(seg.Data)], seg.Data, "media at %d", off)
		off += len(seg.Data)
	}
	assert.Equal(t, len(l.Data), off, "every byte relayed")
	assert.Equal(t, len(l.Clusters), clusters, "every Cluster starts a segment")
}

// chunks cuts b into messages: at the given offsets.
func cutAt(b []byte, offsets ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, o := range offsets {
		if o > prev && o < len(b) {
			out = append(out, b[prev:o])
			prev = o
		}
	}
	return append(out, b[prev:])
}

func cutEvery(b []byte, n int) [][]byte {
	var offs []int
	for o := n; o < len(b); o += n {
		offs = append(offs, o)
	}
	return cutAt(b, offs...)
}

// chromeLike cuts like MediaRecorder does: a 1-byte first message, then
// messages that end 1 byte into the next Cluster.
func chromeLike(l webmtest.Layout) [][]byte {
	offs := []int{1}
	for _, c := range l.Clusters {
		offs = append(offs, c.Offset+1)
	}
	return cutAt(l.Data, offs...)
}

// closeCode sends msgs on a raw publisher connection and returns how the hub
// closed it.
func closeCode(t *testing.T, e *testEnv, route string, msgs ...any) (websocket.StatusCode, string) {
	t.Helper()
	c := e.dialRaw(route, Subprotocol)
	ctx := testCtx(t)
	for _, m := range msgs {
		var err error
		switch m := m.(type) {
		case string:
			err = c.Write(ctx, websocket.MessageText, []byte(m))
		case []byte:
			err = c.Write(ctx, websocket.MessageBinary, m)
		}
		if err != nil {
			break // the hub may close before every message is written
		}
	}
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			return -1, err.Error()
		}
	}
}

// inProcessHub returns a hub without a server and an in-process subscriber
// of its stream "s"; both end with the test.
func inProcessHub(t *testing.T) (*Hub, *Subscriber) {
	t.Helper()
	hub := NewHub()
	t.Cleanup(func() { hub.Shutdown(context.Background()) })
	sub, err := hub.Subscribe(testCtx(t), "s")
	require.NoError(t, err)
	t.Cleanup(func() { sub.Close() })
	return hub, sub
}
