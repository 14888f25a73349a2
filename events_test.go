package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventLog keeps the events a hub reports (WithEvents(log.add)).
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

// lines describes the events as "kind stream role", plus the status of a
// refusal.
func (l *eventLog) lines() []string {
	var out []string
	for _, ev := range l.events() {
		line := fmt.Sprintf("%s %s %s", ev.Kind, ev.Stream, ev.Role)
		if ev.Kind == EventRefused {
			line += fmt.Sprintf(" %d", ev.Status)
		}
		out = append(out, line)
	}
	return out
}

func (l *eventLog) wait(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events", n), func() bool { return len(l.events()) >= n })
}

// logRecords is a slog handler that keeps the records it is given.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// find returns the attributes of the first record with message msg whose
// attributes include want, or nil.
func (h *logRecords) find(msg string, want map[string]string) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		ok := true
		for k, v := range want {
			ok = ok && attrs[k] == v
		}
		if ok {
			return attrs
		}
	}
	return nil
}

// A WebSocket publisher and subscriber: their events in order, with the
// request, the IDs, the close frames and the figures; the hub's and the
// stream's figures while they are on.
func TestEventsAndStats(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithEvents(log.add))
	sub := e.subscribe("room")
	log.wait(t, 1) // announced after the upgrade, which the client may see first
	pub := e.publish("room", PublishStart{MIME: "x", Mode: ModeSegments})
	log.wait(t, 2)
	ctx := testCtx(t)
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("12345")}))
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindMedia, Keyframe: true, Data: []byte("123")}))
	for range 3 {
		_, err := sub.Next(ctx)
		require.NoError(t, err)
	}
	st := e.hub.Stats()
	// Held: the init and the GOP cache, and the publisher's read buffer.
	assert.True(t, st.Held >= 8 && st.Held <= 8+64<<10, "held %d", st.Held)
	st.Held = 0
	assert.Equal(t, Stats{Streams: 1, Publishers: 1, Subscribers: 1, BytesIn: 8, BytesOut: 8, Segments: 2}, st)
	streams := e.hub.Streams()
	require.Len(t, streams, 1)
	info := streams[0]
	assert.Greater(t, info.Uptime, time.Duration(0))
	assert.NotZero(t, info.PublisherID)
	info.Uptime, info.PublisherID, info.Bitrate = 0, 0, 0
	assert.Equal(t, StreamInfo{Name: "room", Live: true, MIME: "x", Subscribers: 1,
		BytesIn: 8, BytesOut: 8, Segments: 2, GOPBytes: 3}, info)

	require.NoError(t, pub.Close())
	log.wait(t, 3) // the publisher's end, before the subscriber leaves
	sub.conn.Close(websocket.StatusNormalClosure, "bye")
	log.wait(t, 4)
	assert.Equal(t, 0, e.hub.Stats().Streams)
	waitFor(t, "the budget to be given back", func() bool { return e.hub.Stats().Held == 0 })
	assert.Equal(t, []string{"subscribe room subscribe", "publish room publish", "unpublish room publish", "unsubscribe room subscribe"}, log.lines())

	evs := log.events()
	for _, ev := range evs {
		require.NotNil(t, ev.Request, "%s: the request", ev.Kind)
		assert.Equal(t, "/room/"+ev.Role.String(), ev.Request.URL.Path, "the path under the mount point")
		assert.False(t, ev.Time.IsZero())
	}
	assert.Equal(t, evs[1].ID, evs[2].ID, "the publisher's events carry its ID")
	assert.Equal(t, evs[0].ID, evs[3].ID, "the subscriber's events carry its ID")
	assert.NotEqual(t, evs[0].ID, evs[1].ID)

	unpub := evs[2]
	assert.Equal(t, 1000, unpub.CloseCode)
	assert.Equal(t, "end", unpub.Reason)
	assert.ErrorIs(t, unpub.Err, ErrClosed)
	assert.Equal(t, SessionStats{Duration: unpub.Session.Duration, Bytes: 8, Segments: 2}, unpub.Session)
	assert.Greater(t, unpub.Session.Duration, time.Duration(0))

	unsub := evs[3]
	assert.Equal(t, 1000, unsub.CloseCode)
	assert.Equal(t, "bye", unsub.Reason, "the peer's close frame")
	assert.Equal(t, uint64(8), unsub.Session.Bytes)
	assert.Equal(t, uint64(2), unsub.Session.Segments)
}

// In-process sessions report events too, without a request.
func TestEventsInProcess(t *testing.T) {
	var log eventLog
	h := NewHub(WithEvents(log.add))
	defer h.Shutdown(context.Background())
	ctx := testCtx(t)
	s, err := h.Subscribe(ctx, "room")
	require.NoError(t, err)
	p, err := h.Publish(ctx, "room", "x")
	require.NoError(t, err)
	require.NoError(t, p.WriteSegment(Segment{Kind: KindInit, Data: []byte("1234")}))
	for _, want := range []Kind{KindStart, KindInit} {
		seg, err := s.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, seg.Kind)
	}
	p.Close()
	log.wait(t, 3)
	s.Close()
	log.wait(t, 4)
	assert.Equal(t, []string{"subscribe room subscribe", "publish room publish", "unpublish room publish", "unsubscribe room subscribe"}, log.lines())
	for _, ev := range log.events() {
		assert.Nil(t, ev.Request)
		assert.Zero(t, ev.CloseCode)
	}
	assert.Equal(t, uint64(4), log.events()[2].Session.Bytes)
	assert.Equal(t, SessionStats{Duration: log.events()[3].Session.Duration, Bytes: 4, Segments: 1}, log.events()[3].Session, "the subscriber took Start and the init")
}

// The events function never runs on the publisher's path: with it blocked,
// publishing goes on, a too-slow subscriber is still closed, and the events
// arrive, in order, once it returns.
func TestEventsNeverBlockPublishing(t *testing.T) {
	release := make(chan struct{})
	var log eventLog
	h := NewHub(WithEvents(func(ev Event) {
		<-release
		log.add(ev)
	}), WithSubscriberQueueBytes(100))
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() { // publishing, which must not wait for the blocked function
		p, err := h.Publish(ctx, "room", "x")
		if err != nil {
			done <- err
			return
		}
		s, err := h.Subscribe(ctx, "room") // never reads: too slow soon
		if err != nil {
			done <- err
			return
		}
		p.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")})
		for range 10 {
			p.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: make([]byte, 80)})
		}
		_, err = s.Next(ctx)
		for err == nil {
			_, err = s.Next(ctx)
		}
		p.Close()
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrTooSlow)
	case <-ctx.Done():
		close(release)
		t.Fatal("publishing waited for the events function")
	}
	assert.Empty(t, log.events(), "nothing delivered while the function is blocked")
	close(release)
	log.wait(t, 4)
	assert.Equal(t, []string{"publish room publish", "subscribe room subscribe", "unsubscribe room subscribe", "unpublish room publish"}, log.lines())
	assert.ErrorIs(t, log.events()[2].Err, ErrTooSlow)
	assert.Equal(t, uint64(1), h.Stats().SlowClosed)
	require.NoError(t, h.Shutdown(ctx))
}

// Refusals are logged at Info with what an operator needs, counted by
// status, and reported as events; every session end is one summary line.
func TestOperatorLog(t *testing.T) {
	var recs logRecords
	e := newEnv(t, WithLogger(slog.New(&recs)))
	e.publish("room", PublishStart{MIME: "x"})
	_, resp, err := websocket.Dial(testCtx(t), e.url("room/publish"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)

	refused := recs.find("segrelay: refused", map[string]string{"status": "409"})
	require.NotNil(t, refused, "the 409 is logged")
	assert.Equal(t, "INFO", refused["level"])
	assert.Equal(t, "room", refused["stream"])
	assert.Equal(t, "publish", refused["role"])
	assert.Contains(t, refused["remote"], "127.0.0.1:")
	assert.Contains(t, refused["reason"], "already has a publisher")
	assert.Equal(t, map[int]uint64{409: 1}, e.hub.Stats().Refused)

	// A subscriber that sends binary gets 1002: one summary line says so.
	c := e.dialRaw("room/subscribe", Subprotocol)
	require.NoError(t, c.Write(testCtx(t), websocket.MessageBinary, []byte{1}))
	waitFor(t, "the summary line", func() bool {
		return recs.find("segrelay: session ended", map[string]string{"role": "subscribe"}) != nil
	})
	ended := recs.find("segrelay: session ended", map[string]string{"role": "subscribe"})
	assert.Equal(t, "INFO", ended["level"])
	assert.Equal(t, "1002", ended["code"])
	assert.Contains(t, ended["reason"], "no binary")
	for _, k := range []string{"stream", "remote", "id", "duration", "bytes", "segments", "drops"} {
		assert.Contains(t, ended, k)
	}
}

// CloseStream ends a stream for good: the publisher and every kind of
// viewer learn it, with the reason, and a v1 client does not reconnect on
// 4403 (it is a refusal).
func TestCloseStream(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithEvents(log.add))
	ctx := testCtx(t)
	v1 := e.subscribe("room")
	legacy := e.dialRaw("room/subscribe")
	inproc, err := e.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	pub := e.publish("room", PublishStart{MIME: "x", Mode: ModeSegments})
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("init")}))
	log.wait(t, 4) // every session started (announced after its upgrade)

	assert.False(t, e.hub.CloseStream("nothing", "x"))
	assert.True(t, e.hub.CloseStream("room", "banned for spam"))

	<-pub.Done()
	assert.Equal(t, statusClosedByApp, websocket.CloseStatus(pub.Err()), "%v", pub.Err())
	assert.Contains(t, pub.Err().Error(), "banned for spam")
	_, _, err = legacy.Read(ctx)
	for err == nil {
		_, _, err = legacy.Read(ctx)
	}
	assert.Equal(t, statusClosedByApp, websocket.CloseStatus(err), "%v", err)
	assert.Contains(t, err.Error(), "banned for spam")
	for err = nil; err == nil; {
		_, err = v1.Next(ctx)
	}
	assert.Contains(t, err.Error(), "banned for spam")
	for err = nil; err == nil; {
		_, err = inproc.Next(ctx)
	}
	assert.ErrorIs(t, err, ErrClosedByApp)
	assert.Contains(t, err.Error(), "banned for spam")

	waitFor(t, "the stream to be gone", func() bool { return e.hub.Stats().Streams == 0 })
	log.wait(t, 8)
	for _, ev := range log.events() {
		if ev.Kind == EventUnpublish || ev.Kind == EventUnsubscribe {
			assert.ErrorIs(t, ev.Err, ErrClosedByApp, "%s", ev.Kind)
			if ev.Request != nil {
				assert.Equal(t, 4403, ev.CloseCode, "%s", ev.Kind)
			}
		}
	}
}

// CloseSubscriber drops one viewer, by the ID its events carry.
func TestCloseSubscriber(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithEvents(log.add))
	ctx := testCtx(t)
	keep := e.subscribe("room")
	log.wait(t, 1)
	drop := e.dialRaw("room/subscribe", Subprotocol)
	log.wait(t, 2)
	id := log.events()[1].ID

	assert.False(t, e.hub.CloseSubscriber(id+100, "x"))
	assert.True(t, e.hub.CloseSubscriber(id, "rude"))
	_, _, err := drop.Read(ctx)
	assert.Equal(t, statusClosedByApp, websocket.CloseStatus(err), "%v", err)
	assert.Contains(t, err.Error(), "rude")
	assert.Equal(t, 1, e.hub.Stats().Subscribers)

	p, err := e.hub.Publish(ctx, "room", "x")
	require.NoError(t, err)
	defer p.Close()
	seg, err := keep.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, KindStart, seg.Kind, "the other subscriber goes on")
}

// A session that ends before it is announced (a WebSocket peer gone between
// its upgrade and its first step, a Shutdown in between) reports nothing:
// neither its start nor its end.
func TestNoEventsForASessionEndedBeforeItStarted(t *testing.T) {
	var log eventLog
	h := NewHub(WithEvents(log.add))
	s, err := h.subscribe("room", false)
	require.NoError(t, err)
	s.Close()
	s.announce(nil)
	p, err := h.claim("room")
	require.NoError(t, err)
	p.Close()
	p.announce(nil)
	require.NoError(t, h.Shutdown(context.Background())) // waits for the events' delivery
	assert.Empty(t, log.events())
}

// Events wait for a slow function in a bounded queue: beyond 4,096 they are
// dropped and counted, never held.
func TestEventsQueueIsBounded(t *testing.T) {
	release := make(chan struct{})
	var delivered int
	h := NewHub(WithEvents(func(Event) {
		<-release
		delivered++
	}))
	ctx := testCtx(t)
	const sessions = 2100 // 4,200 events
	for range sessions {
		s, err := h.Subscribe(ctx, "room")
		require.NoError(t, err)
		s.Close()
	}
	dropped := h.Stats().EventsDropped
	// One event may have been taken by the blocked function already.
	assert.True(t, dropped == 2*sessions-maxPendingEvents || dropped == 2*sessions-maxPendingEvents-1, "dropped %d", dropped)
	assert.Equal(t, 4096, maxPendingEvents, "the documented bound")
	close(release)
	require.NoError(t, h.Shutdown(ctx)) // waits for the delivery
	assert.Equal(t, uint64(2*sessions)-dropped, uint64(delivered))
}

// Events wait in a queue bounded in bytes as well: each keeps its request,
// and a client chooses how large its headers are (up to the server's
// MaxHeaderBytes, 1 MB by default). Refused requests with 64 KiB of headers
// for a blocked function: beyond 16 MiB they are dropped and counted.
func TestEventsQueueIsBoundedInBytes(t *testing.T) {
	release := make(chan struct{})
	var delivered atomic.Int64
	e := newEnv(t, WithEvents(func(Event) {
		<-release
		delivered.Add(1)
	}))
	big := strings.Repeat("x", 64<<10)
	const requests = 400 // 25 MiB of headers
	for range requests {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.httpURL(".bad/subscribe"), nil)
		require.NoError(t, err)
		req.Header.Set("X-Pad", big)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
	e.hub.mu.Lock()
	held, queued := e.hub.ev.bytes, len(e.hub.ev.pending)
	e.hub.mu.Unlock()
	assert.LessOrEqual(t, held, maxPendingEventBytes)
	assert.Equal(t, 16<<20, maxPendingEventBytes, "the documented bound")
	dropped := e.hub.Stats().EventsDropped
	assert.Greater(t, dropped, uint64(requests/3), "64 KiB each: at most 256 wait")
	close(release)
	require.NoError(t, e.hub.Shutdown(testCtx(t)))
	assert.Equal(t, int64(requests)-int64(dropped), delivered.Load())
	assert.LessOrEqual(t, queued, 256)
}
