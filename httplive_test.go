package relay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getLive starts GET route and returns the response once its header came.
func (e *testEnv) getLive(ctx context.Context, route string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpURL(route), nil)
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readLive reads route's response as it comes, on a goroutine of its own:
// read says how many bytes came so far; the body goes to done at its end.
func (e *testEnv) readLive(ctx context.Context, route string) (read *atomic.Int64, done <-chan []byte) {
	read = new(atomic.Int64)
	ch := make(chan []byte, 1)
	go func() {
		resp := e.getLive(ctx, route)
		var body []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			body = append(body, buf[:n]...)
			read.Store(int64(len(body)))
			if err != nil {
				ch <- body
				return
			}
		}
	}()
	return read, ch
}

// A viewer that comes while the stream is live gets the init, then media
// from the last keyframe on, byte for byte what the publisher wrote; the
// response stays open while the publisher publishes and ends WithLiveWait
// after it left.
func TestHTTPLiveLateJoin(t *testing.T) {
	e := newEnv(t, WithLiveWait(200*time.Millisecond))
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 6, KeyEvery: 2})
	p, err := e.hub.Publish(testCtx(t), "s", "")
	require.NoError(t, err)
	_, err = p.Write(l.Data[:l.Clusters[3].Offset]) // Clusters 0–2; 2 is a keyframe
	require.NoError(t, err)
	require.NoError(t, p.Flush())

	resp := e.getLive(testCtx(t), "s/live.webm")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, l.MIME, resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	_, err = p.Write(l.Data[l.Clusters[3].Offset:])
	require.NoError(t, err)
	require.NoError(t, p.Close())
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the response ends cleanly after the wait")
	want := append(append([]byte(nil), l.Data[:l.InitLen]...), l.Data[l.Clusters[2].Offset:]...)
	assert.Equal(t, len(want), len(body))
	assert.True(t, bytes.Equal(want, body), "init, then everything from the keyframe Cluster 2 on")
}

// A response stays open across publisher sessions: the next session's init
// starts a new EBML document in the same response.
func TestHTTPLiveAcrossSessions(t *testing.T) {
	e := newEnv(t, WithLiveWait(time.Minute))
	a := webmtest.Build(webmtest.Spec{Clusters: 2})
	b := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2})
	ctx := testCtx(t)
	publish := func(l webmtest.Layout) {
		p, err := e.hub.Publish(ctx, "s", "")
		require.NoError(t, err)
		_, err = p.Write(l.Data)
		require.NoError(t, err)
		require.NoError(t, p.Close())
	}
	read, done := e.readLive(ctx, "s/live.webm")
	waitFor(t, "the viewer", func() bool { return e.hub.Stats().Subscribers == 1 })
	publish(a)
	// The next session's Start drops what the viewer has not taken of
	// this one (by design: a viewer wants the live session), so b waits.
	waitFor(t, "the viewer to read a", func() bool { return read.Load() >= int64(len(a.Data)) })
	publish(b)
	waitFor(t, "the viewer to read b", func() bool { return read.Load() >= int64(len(a.Data)+len(b.Data)) })
	e.hub.CloseStream("s", "test over") // instead of the minute's wait for a third
	body := <-done
	assert.True(t, bytes.Equal(append(append([]byte(nil), a.Data...), b.Data...), body), "both sessions, whole, one after the other")
}

// No publisher: GET waits WithLiveWait, then 404; HEAD answers at once. A
// stream that is not WebM gets 406; over the subscriber limit, 429.
func TestHTTPLiveRefusals(t *testing.T) {
	e := newEnv(t, WithLiveWait(100*time.Millisecond), WithMaxSubscribers(2))
	ctx := testCtx(t)
	head := func() (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.httpURL("s/live.webm"), nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	status, _ := head()
	assert.Equal(t, http.StatusNotFound, status)
	resp := e.getLive(ctx, "s/live.webm")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	text, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(text), "has no publisher")

	l := webmtest.Build(webmtest.Spec{Clusters: 1})
	p, err := e.hub.Publish(ctx, "s", "")
	require.NoError(t, err)
	_, err = p.Write(l.Data)
	require.NoError(t, err)
	status, ctype := head()
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, l.MIME, ctype)
	p.Close()

	mp4, err := e.hub.Publish(ctx, "m", "video/mp4")
	require.NoError(t, err)
	defer mp4.Close()
	require.NoError(t, mp4.WriteSegment(Segment{Kind: KindInit, Data: []byte("ftyp")}))
	resp = e.getLive(ctx, "m/live.webm")
	assert.Equal(t, http.StatusNotAcceptable, resp.StatusCode)

	s1, err := e.hub.Subscribe(ctx, "x")
	require.NoError(t, err)
	defer s1.Close()
	s2, err := e.hub.Subscribe(ctx, "x")
	require.NoError(t, err)
	defer s2.Close()
	resp = e.getLive(ctx, "x/live.webm")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
}

// A viewer that stops reading is skipped to keyframes, then cut off (or
// dropped by the write timeout); another viewer of the stream gets every
// byte, and the publisher never waits.
func TestHTTPLiveSlowViewer(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithSubscriberQueueBytes(64<<10), WithWriteTimeout(2*time.Second), WithEvents(log.add))
	ctx := testCtx(t)

	// The stuck viewer: a raw connection with a tiny receive buffer that
	// sends its request and never reads.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.DialContext(ctx, "tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /live/s/live.webm HTTP/1.1\r\nHost: x\r\n\r\n")

	l := webmtest.Build(webmtest.Spec{Clusters: 200, Frames: 5, FrameBytes: 4000, KeyEvery: 4})
	p, err := e.hub.Publish(ctx, "s", "")
	require.NoError(t, err)
	waitFor(t, "the stuck viewer", func() bool { return e.hub.Stats().Subscribers == 1 })
	// The good viewer reads as it comes; the publisher waits for it (as
	// for a live source, whose pace a reading viewer keeps), never for the
	// stuck one.
	read, good := e.readLive(ctx, "s/live.webm")
	_, err = p.Write(l.Data[:l.Clusters[1].Offset])
	require.NoError(t, err)
	require.NoError(t, p.Flush())
	waitFor(t, "the good viewer", func() bool { return e.hub.Stats().Subscribers == 2 })

	for i := 1; i < len(l.Clusters); i++ {
		c := l.Clusters[i]
		_, err := p.Write(l.Data[c.Offset : c.Offset+c.Len])
		require.NoError(t, err)
		require.NoError(t, p.Flush())
		waitFor(t, "the good viewer to keep up", func() bool { return read.Load() >= int64(c.Offset) })
	}
	waitFor(t, "the stuck viewer to be cut off", func() bool {
		for _, ev := range log.events() {
			if ev.Kind == EventUnsubscribe && ev.Request != nil && ev.Session.Bytes < uint64(len(l.Data)) {
				return true
			}
		}
		return false
	})
	require.NoError(t, p.Close())
	e.hub.CloseStream("s", "done")
	body := <-good
	assert.True(t, bytes.Equal(l.Data, body), "the good viewer got the whole stream (%d of %d bytes)", len(body), len(l.Data))

	// What the stuck one got on the wire is a valid start: the header.
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// Shutdown ends a live.webm response at once.
func TestHTTPLiveShutdown(t *testing.T) {
	e := newEnv(t)
	l := webmtest.Build(webmtest.Spec{Clusters: 2})
	p, err := e.hub.Publish(testCtx(t), "s", "")
	require.NoError(t, err)
	_, err = p.Write(l.Data)
	require.NoError(t, err)
	resp := e.getLive(testCtx(t), "s/live.webm")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.hub.Shutdown(ctx))
	_, err = io.ReadAll(resp.Body)
	assert.NoError(t, err)
}

// The host server's ReadTimeout and WriteTimeout (examples/minimal sets
// them, as the README's Deploying section asks) do not cut a live body or
// a live response: the hub sets its own deadlines.
func TestHTTPOutlivesServerTimeouts(t *testing.T) {
	hub := NewHub(WithLiveWait(100 * time.Millisecond))
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	e := &testEnv{t: t, hub: hub, srv: srv}
	defer func() {
		hub.Shutdown(context.Background())
		srv.Close()
	}()

	l := webmtest.Build(webmtest.Spec{Clusters: 8})
	sub, err := hub.Subscribe(testCtx(t), "s")
	require.NoError(t, err)
	defer sub.Close()
	viewer := make(chan []byte, 1)
	go func() {
		resp := e.getLive(testCtx(t), "s/live.webm")
		b, _ := io.ReadAll(resp.Body)
		viewer <- b
	}()
	waitFor(t, "the viewer", func() bool { return hub.Stats().Subscribers == 2 })

	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for i, c := range l.Clusters {
			if i == 0 {
				pw.Write(l.Data[:c.Offset])
			}
			pw.Write(l.Data[c.Offset : c.Offset+c.Len])
			// Past the server's timeouts, by the clock: nothing is asserted
			// about how long anything takes.
			time.Sleep(100 * time.Millisecond)
		}
	}()
	status, text := e.put(http.MethodPut, "s/publish", pr)
	assert.Equal(t, http.StatusOK, status, text)
	assert.True(t, bytes.Equal(l.Data, <-viewer), "the viewer got the whole session")
}

// BenchmarkLiveViewerMemory measures what one idle live.webm viewer costs
// the process (heap and goroutine stacks: net/http's connection, its
// buffers, the Subscriber), the HTTP counterpart of
// BenchmarkSubscriberMemory for the README's Deploying section. Each viewer
// is a raw connection that sent its request and reads nothing.
//
//	go test -run '^$' -bench LiveViewerMemory -benchtime 1000x
func BenchmarkLiveViewerMemory(b *testing.B) {
	s := newBenchServer(WithMaxSubscribers(b.N + 1))
	defer s.close()
	hub := s.hub
	p, err := hub.Publish(context.Background(), "room", "")
	require.NoError(b, err)
	defer p.Close()
	_, err = p.Write(webmtest.Build(webmtest.Spec{Clusters: 1, Frames: 1, FrameBytes: 100}).Data)
	require.NoError(b, err)
	require.NoError(b, p.Flush())

	idleConnCost(b, "B/viewer", func() net.Conn {
		c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
		require.NoError(b, err)
		fmt.Fprintf(c, "GET /live/room/live.webm HTTP/1.1\r\nHost: x\r\n\r\n")
		return c
	}, func() bool {
		st := hub.Stats() // each has had its init and Cluster written
		return st.Subscribers >= b.N && st.BytesOut >= uint64(b.N)*100
	})
}
