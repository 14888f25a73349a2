package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// put sends body to route with method and returns the status and the
// answer's text.
func (e *testEnv) put(method, route string, body io.Reader) (int, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(testCtx(e.t), method, e.httpURL(route), body)
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// chunked hides a reader's length, so the request goes out chunked, as
// ffmpeg sends it, in pieces of n bytes.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// A PUT or POST body is a publisher session: a subscriber gets the stream
// cut at Clusters exactly as from a WebSocket publisher, whatever the body's
// pieces, and the answer (200) comes when the body ends. Its events carry
// the request.
func TestHTTPIngestBody(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 6, KeyEvery: 2})
	for _, c := range []struct {
		name, method string
		body         func() io.Reader
	}{
		{"PUT chunked", http.MethodPut, func() io.Reader { return &chunked{b: l.Data, n: 5000} }},
		{"POST chunked", http.MethodPost, func() io.Reader { return &chunked{b: l.Data, n: 5000} }},
		{"PUT with a length", http.MethodPut, func() io.Reader { return bytes.NewReader(l.Data) }},
	} {
		method := c.method
		t.Run(c.name, func(t *testing.T) {
			var log eventLog
			e := newEnv(t, WithEvents(log.add))
			sub := e.subscribe("s")
			status, text := e.put(method, "s/publish", c.body())
			assert.Equal(t, http.StatusOK, status, text)
			assert.Contains(t, text, "published")
			checkWebMSession(t, readUntilEnd(t, sub), l)

			log.wait(t, 3) // subscribe, publish, unpublish
			var pubEvents []Event
			for _, ev := range log.events() {
				if ev.Role == RolePublish {
					pubEvents = append(pubEvents, ev)
				}
			}
			require.Len(t, pubEvents, 2)
			assert.Equal(t, EventPublish, pubEvents[0].Kind)
			assert.Equal(t, EventUnpublish, pubEvents[1].Kind)
			assert.Equal(t, method, pubEvents[1].Request.Method)
			assert.ErrorIs(t, pubEvents[1].Err, ErrClosed)
			assert.Equal(t, uint64(len(l.Data)), pubEvents[1].Session.Bytes)
		})
	}
}

// Bad requests get their status before or instead of a session, and the
// stream is free afterwards.
func TestHTTPIngestRefusals(t *testing.T) {
	big := webmtest.Build(webmtest.Spec{Clusters: 1, Frames: 2, FrameBytes: 20_000})
	ok := webmtest.Build(webmtest.Spec{Clusters: 2})
	cases := []struct {
		name   string
		opts   []Option
		body   []byte
		status int
		text   string
	}{
		{"neither WebM nor MP4", nil, []byte("this is not a WebM stream at all, just text"), http.StatusBadRequest, "neither WebM nor MP4"},
		{"over the segment limit", []Option{WithMaxSegmentBytes(8 << 10)}, big.Data, http.StatusRequestEntityTooLarge, "segment too big"},
		{"over the init limit", []Option{WithMaxInitBytes(16)}, ok.Data, http.StatusRequestEntityTooLarge, "init segment"},
		{"over the memory budget", []Option{WithMemoryBudget(16 << 10)}, ok.Data, http.StatusServiceUnavailable, "budget"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			status, text := e.put(http.MethodPut, "s/publish", bytes.NewReader(tc.body))
			assert.Equal(t, tc.status, status, text)
			assert.Contains(t, text, tc.text)
			waitFor(t, "the stream to be free", func() bool { return len(e.hub.Streams()) == 0 })
			assert.Zero(t, e.hub.Stats().Held)
		})
	}

	t.Run("busy", func(t *testing.T) {
		e := newEnv(t)
		p, err := e.hub.Publish(testCtx(t), "s", "")
		require.NoError(t, err)
		defer p.Close()
		status, text := e.put(http.MethodPut, "s/publish", bytes.NewReader(ok.Data))
		assert.Equal(t, http.StatusConflict, status, text)
	})
	t.Run("routes and methods", func(t *testing.T) {
		e := newEnv(t)
		status, text := e.put(http.MethodGet, "s/publish", nil)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, text, "PUT or POST")
		status, _ = e.put(http.MethodPut, "s/subscribe", bytes.NewReader(ok.Data))
		assert.Equal(t, http.StatusBadRequest, status, "a subscriber is a WebSocket")
		status, _ = e.put(http.MethodPut, "s/live.webm", bytes.NewReader(ok.Data))
		assert.Equal(t, http.StatusMethodNotAllowed, status)
		status, _ = e.put(http.MethodPut, ".s/publish", bytes.NewReader(ok.Data))
		assert.Equal(t, http.StatusBadRequest, status)
	})
	t.Run("authorize", func(t *testing.T) {
		var roles []Role
		e := newEnv(t, WithAuthorize(func(r *http.Request, stream string, role Role) error {
			roles = append(roles, role)
			return ErrUnauthorized
		}))
		status, _ := e.put(http.MethodPost, "s/publish", bytes.NewReader(ok.Data))
		assert.Equal(t, http.StatusUnauthorized, status)
		status, _ = e.put(http.MethodGet, "s/live.webm", nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, []Role{RolePublish, RoleSubscribe}, roles)
	})
}

// A body that stops sending keeps its stream only for the idle timeout:
// 408, and the stream is free. One that goes on past it with enough bytes
// keeps it.
func TestHTTPIngestIdle(t *testing.T) {
	e := newEnv(t, WithPublisherIdleTimeout(time.Second), WithPublisherMinBytes(1000))
	l := webmtest.Build(webmtest.Spec{Clusters: 3})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		pw.Write(l.Data[:l.Clusters[1].Offset]) // init and a Cluster, then nothing
	}()
	status, text := e.put(http.MethodPut, "s/publish", pr)
	assert.Equal(t, http.StatusRequestTimeout, status, text)
	assert.Contains(t, text, "idle")
	waitFor(t, "the stream to be free", func() bool { return len(e.hub.Streams()) == 0 })

	// A body that goes on publishing keeps the stream for longer than the
	// idle timeout: the deadline moves on with every 1000 bytes published.
	// (A Cluster every 50 ms for 1.5 s: only a sender starved for most of
	// the idle timeout's second fails the test.)
	long := webmtest.Build(webmtest.Spec{Clusters: 30})
	pr, pw = io.Pipe()
	go func() {
		defer pw.Close()
		pw.Write(long.Data[:long.Clusters[0].Offset])
		for _, c := range long.Clusters {
			pw.Write(long.Data[c.Offset : c.Offset+c.Len])
			time.Sleep(50 * time.Millisecond)
		}
	}()
	status, text = e.put(http.MethodPut, "s/publish", pr)
	assert.Equal(t, http.StatusOK, status, text)
}

// A session ended from outside ends its request at once, with the status
// that says why: 403 for Hub.CloseStream, 503 for Shutdown.
func TestHTTPIngestEndedByHub(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Clusters: 3})
	for _, how := range []string{"CloseStream", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			pr, pw := io.Pipe()
			defer pw.Close()
			go pw.Write(l.Data[:l.Clusters[1].Offset])
			type answer struct {
				status int
				text   string
			}
			done := make(chan answer, 1)
			go func() {
				s, txt := e.put(http.MethodPut, "s/publish", pr)
				done <- answer{s, txt}
			}()
			waitFor(t, "the session", func() bool {
				st := e.hub.Streams()
				return len(st) == 1 && st[0].Live && st[0].Segments > 0
			})
			want := http.StatusForbidden
			if how == "CloseStream" {
				require.True(t, e.hub.CloseStream("s", "banned"))
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, e.hub.Shutdown(ctx))
				want = http.StatusServiceUnavailable
			}
			a := <-done
			assert.Equal(t, want, a.status, a.text)
		})
	}
}

// The client's request context ending mid-body (ffmpeg killed, say) ends
// the session: subscribers get End, the stream is free.
func TestHTTPIngestClientGone(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe("s")
	l := webmtest.Build(webmtest.Spec{Clusters: 3})
	pr, pw := io.Pipe()
	go pw.Write(l.Data[:l.Clusters[1].Offset])
	ctx, cancel := context.WithCancel(testCtx(t))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, e.httpURL("s/publish"), pr)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the session", func() bool {
		st := e.hub.Streams()
		return len(st) == 1 && st[0].Live && st[0].Segments > 0
	})
	cancel()
	pw.CloseWithError(errors.New("gone"))
	assert.Error(t, <-done)
	segs := readUntilEnd(t, sub)
	assert.Equal(t, KindEnd, segs[len(segs)-1].Kind)
	waitFor(t, "the stream to be free", func() bool {
		st := e.hub.Streams()
		return len(st) == 1 && !st[0].Live
	})
}
