package relay

// Attacks on a hub with its default limits, as anyone who can open a
// WebSocket could try them. Each test asserts the documented bound (README,
// Deploying): the bytes the hub accounts for, the live heap, a close code.
// Floods are bounded in count, and nothing here depends on timing beyond
// the margins stated next to it.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm/webmtest"
)

// liveHeap returns the bytes the last full collection found live.
// HeapAlloc read after runtime.GC would also count what other goroutines
// allocated since the collection ended: during a flood, the hub's and the
// clients' 1 MiB message buffers, already garbage, and more of them the
// longer a busy machine takes between the two calls (the test flaked by
// 0.5 to 6 MiB that way). /gc/heap/live:bytes is what the mark found.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// resident returns the process's resident memory now and its peak so far
// (VmRSS and VmHWM, bytes); 0, 0 where /proc/self/status is not there.
func resident() (now, peak uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			now = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return now, peak
}

// heapAndStacks is the live heap plus goroutine stacks: what idle
// connections cost the process.
func heapAndStacks() uint64 {
	live := liveHeap()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return live + m.StackInuse
}

// heapWatch samples the live heap while an attack runs and keeps the peak
// growth over the baseline taken when it was made.
type heapWatch struct {
	base, peak uint64
}

func newHeapWatch() *heapWatch { return &heapWatch{base: liveHeap()} }

func (w *heapWatch) sample() {
	if h := liveHeap(); h > w.base && h-w.base > w.peak {
		w.peak = h - w.base
	}
}

// sendSegment declares a segment and sends its data in one message.
func sendSegment(ctx context.Context, c *websocket.Conn, init, key bool, data []byte) error {
	decl := fmt.Sprintf(`{"type":"segment","size":%d,"init":%t,"keyframe":%t}`, len(data), init, key)
	if err := c.Write(ctx, websocket.MessageText, []byte(decl)); err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageBinary, data)
}

// A publisher that sends nothing but 1 MiB init segments, with one
// subscriber that never reads and one that reads slowly. Before inits were
// counted, each subscriber's queue kept every one of them (2 GiB in 10 s).
// Now an init replaces the queued one, and replacing one the subscriber has
// not received counts as an overflow: the never-reading subscriber is closed
// as too slow (or, when the machine is so busy that fewer inits come within
// the write timeout, dropped for its full socket), and the hub holds a few
// inits at most.
func TestInitFloodIsBounded(t *testing.T) {
	e := newEnv(t, WithWriteTimeout(3*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	never := e.dialRaw("room/subscribe", Subprotocol) // never reads
	slow := e.dialRaw("room/subscribe", Subprotocol)
	var slowDone sync.WaitGroup
	slowDone.Add(1)
	go func() { // about 1 MB/s
		defer slowDone.Done()
		for {
			if _, _, err := slow.Read(ctx); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor(t, "two subscribers", func() bool { return e.hub.Stats().Subscribers == 2 })

	pub := e.dialRaw("room/publish", Subprotocol)
	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte(`{"type":"start","mime":"video/webm","mode":"segments"}`)))
	init := make([]byte, 1<<20)
	watch := newHeapWatch()
	const inits = 64 // 64 MiB sent: the old queues would have kept it all
	for i := range inits {
		init[0] = byte(i)
		require.NoError(t, sendSegment(ctx, pub, true, false, init), "init %d", i)
		if i%10 == 0 {
			watch.sample()
			assert.LessOrEqual(t, e.hub.Stats().Held, int64(defaultMemoryBudget))
		}
	}
	watch.sample()
	t.Logf("live heap growth during the flood: %.1f MiB (peak)", float64(watch.peak)/(1<<20))
	// A few inits in flight (the stream's own, one per queue, one per
	// socket write, the reader's buffer) and no more: 24 MiB is ample.
	assert.Less(t, watch.peak, uint64(24<<20), "live heap growth")
	// The hub closed the never-reading subscriber: what its socket holds,
	// then the end (a close frame, or the connection dropped).
	var err error
	for err == nil {
		_, _, err = never.Read(ctx)
	}
	require.NoError(t, ctx.Err(), "the never-reading subscriber was not closed")
	t.Logf("the never-reading subscriber: %v (slow closes: %d)", err, e.hub.Stats().SlowClosed)

	pub.CloseNow()
	never.CloseNow()
	slow.CloseNow()
	slowDone.Wait()
	waitFor(t, "the hub to let go", func() bool { s := e.hub.Stats(); return s.Streams == 0 && s.Held == 0 })
}

// Stream mode with a new EBML header in every message (a recorder restart
// each time), against a never-reading subscriber: the same bound.
func TestRestartFloodIsBounded(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	never := e.dialRaw("room/subscribe", Subprotocol)
	waitFor(t, "the subscriber", func() bool { return e.hub.Stats().Subscribers == 1 })

	l := webmtest.Build(webmtest.Spec{Clusters: 1, Frames: 1, FrameBytes: 900 << 10})
	require.Less(t, len(l.Data), defaultMaxMessageBytes)
	pub := e.dialRaw("room/publish", Subprotocol)
	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte(`{"type":"start","mime":"video/webm"}`)))
	watch := newHeapWatch()
	for i := range 64 {
		require.NoError(t, pub.Write(ctx, websocket.MessageBinary, l.Data), "recording %d", i)
		if i%10 == 0 {
			watch.sample()
		}
	}
	watch.sample()
	t.Logf("live heap growth during the flood: %.1f MiB (peak)", float64(watch.peak)/(1<<20))
	assert.Less(t, watch.peak, uint64(24<<20), "live heap growth")
	never.CloseNow()
	pub.CloseNow()
	waitFor(t, "the hub to let go", func() bool { s := e.hub.Stats(); return s.Streams == 0 && s.Held == 0 })
}

// Publishers that pin memory (a declared segment sent but for one byte)
// until the budget is full: the next declaration that does not fit closes
// its publisher with 1009, and while the budget is full new publishers get
// 503 before the upgrade. Closing a pinning publisher gives its bytes back.
func TestMemoryBudget(t *testing.T) {
	const budget = 4 << 20
	e := newEnv(t, WithMemoryBudget(budget), WithMaxSegmentBytes(4<<20))
	ctx := testCtx(t)
	startSeg := []byte(`{"type":"start","mime":"video/webm","mode":"segments"}`)
	pin := func(stream string, size int) *websocket.Conn {
		c := e.dialRaw(stream+"/publish", Subprotocol)
		require.NoError(t, c.Write(ctx, websocket.MessageText, startSeg))
		require.NoError(t, c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"segment","size":%d}`, size)))
		return c
	}

	// A: 3 MiB declared and sent but for one byte.
	a := pin("a", 3<<20)
	data := make([]byte, 64<<10)
	for sent := 0; sent < 3<<20-1; sent += len(data) {
		n := min(len(data), 3<<20-1-sent)
		require.NoError(t, a.Write(ctx, websocket.MessageBinary, data[:n]))
	}
	waitFor(t, "A's bytes to be held", func() bool { return e.hub.Stats().Held >= 3<<20 })

	// B: more than what is left. Closed with 1009, and its stream is free.
	code, reason := closeCode(t, e, "b/publish", string(startSeg), `{"type":"segment","size":2000000}`)
	assert.Equal(t, websocket.StatusMessageTooBig, code, reason)
	assert.Contains(t, reason, "memory budget")

	// C: exactly what is left. Its start message is read into a buffer
	// that holds its declaration too, so the count is exact.
	c := e.dialRaw("c/publish", Subprotocol)
	require.NoError(t, c.Write(ctx, websocket.MessageText, startSeg))
	waitFor(t, "C's start", func() bool {
		for _, s := range e.hub.Streams() {
			if s.Name == "c" && s.MIME != "" {
				return true
			}
		}
		return false
	})
	left := budget - e.hub.Stats().Held
	require.NoError(t, c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"segment","size":%d}`, left)))
	waitFor(t, "the budget to be full", func() bool { return e.hub.Stats().Held == budget })

	// Full: a new publisher gets 503 before the upgrade; a subscriber, which
	// holds nothing against the budget, is still welcome.
	_, resp, err := websocket.Dial(ctx, e.url("d/publish"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	e.subscribe("d")

	// A leaves: its 3 MiB come back, and D may publish.
	a.CloseNow()
	waitFor(t, "A's bytes to be given back", func() bool { return e.hub.Stats().Held < budget-3<<20+64<<10 })
	d, _, err := websocket.Dial(ctx, e.url("d/publish"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.NoError(t, err)
	d.CloseNow()
	c.CloseNow()
	waitFor(t, "everything to be given back", func() bool { return e.hub.Stats().Held == 0 })
}

// Init segments have a small limit of their own, in every mode.
func TestInitLimit(t *testing.T) {
	e := newEnv(t, WithMaxInitBytes(1000))
	t.Run("declared", func(t *testing.T) {
		code, reason := closeCode(t, e, "a/publish", `{"type":"start","mime":"video/webm","mode":"segments"}`, `{"type":"segment","size":1001,"init":true}`)
		assert.Equal(t, websocket.StatusMessageTooBig, code, reason)
		assert.Contains(t, reason, "init segment of 1001 bytes")
	})
	t.Run("stream", func(t *testing.T) {
		l := webmtest.Build(webmtest.Spec{Clusters: 1})
		require.Greater(t, l.InitLen, 0)
		e := newEnv(t, WithMaxInitBytes(l.InitLen-1))
		code, reason := closeCode(t, e, "a/publish", `{"type":"start","mime":"video/webm"}`, l.Data)
		assert.Equal(t, websocket.StatusMessageTooBig, code, reason)
		assert.Contains(t, reason, "init segment")
	})
	t.Run("in-process", func(t *testing.T) {
		p, err := e.hub.Publish(testCtx(t), "b", "video/webm")
		require.NoError(t, err)
		defer p.Close()
		assert.ErrorIs(t, p.WriteSegment(Segment{Kind: KindInit, Data: make([]byte, 1001)}), ErrSegmentTooBig)
	})
}

// A connection that takes a stream's name and never starts loses it after
// the start timeout; a legacy one, which has no start message, after the
// idle timeout.
func TestStartDeadline(t *testing.T) {
	for _, c := range []struct {
		protos []string
		opt    Option
		reason string
	}{
		{[]string{Subprotocol}, WithStartTimeout(100 * time.Millisecond), "no start message within 100ms"},
		{nil, WithPublisherIdleTimeout(100 * time.Millisecond), "idle: published less than"},
	} {
		e := newEnv(t, c.opt)
		conn := e.dialRaw("room/publish", c.protos...)
		_, _, err := conn.Read(testCtx(t))
		assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%v", err)
		assert.Contains(t, err.Error(), c.reason)
		waitFor(t, "the name to be free", func() bool { return e.hub.Stats().Streams == 0 })
	}
}

// A publisher must publish at least the minimum bytes within every idle
// timeout. One that drips a WebM header a byte at a time publishes nothing
// and is closed, however often it sends; one that publishes real media stays
// long past the timeout. Timing assumption: nothing here is starved for the
// 3 s idle timeout (the active publisher sends every 20 ms, for 7 s; the
// drip is cut after 3 s of its 12).
func TestPublisherMinimumRate(t *testing.T) {
	const idle = 3 * time.Second
	e := newEnv(t, WithPublisherIdleTimeout(idle), WithPublisherMinBytes(4096))
	l := webmtest.Build(webmtest.Spec{Clusters: 400, Frames: 1, FrameBytes: 5000})

	t.Run("drip", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := e.dialRaw("drip/publish", Subprotocol)
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"start","mime":"video/webm"}`)))
		closed := make(chan error, 1)
		go func() {
			var err error
			for err == nil {
				_, _, err = c.Read(ctx)
			}
			closed <- err
		}()
		// Drip a byte every 10 ms for 12 s (1,200 bytes, far below the
		// minimum), until the hub closes the connection: after the 3 s
		// idle timeout, while the drip goes on.
		begin := time.Now()
		var err error
	drip:
		for i := 0; time.Since(begin) < 12*time.Second && i < len(l.Data); i++ {
			select {
			case err = <-closed:
				break drip
			default:
			}
			c.Write(ctx, websocket.MessageBinary, l.Data[i:i+1])
			time.Sleep(10 * time.Millisecond)
		}
		if err == nil {
			t.Fatal("a publisher that drips bytes kept its stream for 12 s")
		}
		assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%v", err)
		assert.Contains(t, err.Error(), "idle: published less than 4096 bytes in 3s")
	})

	t.Run("active", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		pub := e.publish("active", PublishStart{MIME: l.MIME})
		require.NoError(t, pub.Send(ctx, l.Data[:l.InitLen]))
		begin := time.Now()
		for i := 0; time.Since(begin) < 7*time.Second; i++ {
			require.Less(t, i, len(l.Clusters), "more messages than the sleeps allow")
			cl := l.Clusters[i]
			require.NoError(t, pub.Send(ctx, l.Data[cl.Offset:cl.Offset+cl.Len]), "cluster %d", i)
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case <-pub.Done():
			t.Fatalf("the active publisher was closed: %v", pub.Err())
		default:
		}
	})
}

// A request that fails the upgrade (here a bad Sec-WebSocket-Version) gets
// 400 and reports no session, only the refusal; the name it reserved is
// free again.
func TestFailedUpgradeStartsNoSession(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithEvents(log.add))
	for _, route := range []string{"room/publish", "room/subscribe"} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/live/"+route, nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "12")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", Subprotocol)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, route)
	}
	waitFor(t, "the name to be free", func() bool { return e.hub.Stats().Streams == 0 })
	log.wait(t, 2)
	assert.Equal(t, []string{"refused room publish 400", "refused room subscribe 400"}, log.lines())

	// A real session reports both its start and its end.
	c := e.dialRaw("room/publish", Subprotocol)
	require.NoError(t, c.Write(testCtx(t), websocket.MessageText, []byte(`{"type":"start","mime":"x"}`)))
	c.Close(websocket.StatusNormalClosure, "")
	log.wait(t, 4)
	assert.Equal(t, []string{"publish room publish", "unpublish room publish"}, log.lines()[2:])
}

// Shutdown with subscribers whose sockets are full (they never read and the
// write timeout is long) and one that reads another, quiet stream: it
// returns promptly, the reader gets its 1001 close frame, the others are
// dropped. Before, each full socket held Shutdown for the 5 s close-frame
// write timeout. (Timing: the bound, 2.5 s, is ten times the grace.)
func TestShutdownWithFullSockets(t *testing.T) {
	e := newEnv(t, WithWriteTimeout(time.Minute), WithSubscriberQueueBytes(64<<20), WithGOPCacheBytes(64<<20))
	ctx := testCtx(t)
	var full []*websocket.Conn
	for range 4 {
		full = append(full, e.dialRaw("room/subscribe", Subprotocol))
	}
	reader := e.dialRaw("quiet/subscribe", Subprotocol)
	readerErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := reader.Read(ctx); err != nil {
				readerErr <- err
				return
			}
		}
	}()
	waitFor(t, "the subscribers", func() bool { return e.hub.Stats().Subscribers == 5 })

	p, err := e.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	require.NoError(t, p.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	// 48 MiB of keyframes: more than loopback socket buffers take.
	seg := make([]byte, 1<<20)
	for range 48 {
		require.NoError(t, p.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: seg}))
	}
	// Full means the bytes handed out stop growing.
	var last uint64
	waitFor(t, "the sockets to fill", func() bool {
		out := e.hub.Stats().BytesOut
		full := out == last && out > 0
		last = out
		time.Sleep(50 * time.Millisecond)
		return full
	})

	begin := time.Now()
	require.NoError(t, e.hub.Shutdown(ctx))
	took := time.Since(begin)
	t.Logf("Shutdown took %v", took)
	assert.Less(t, took, 2500*time.Millisecond)
	select {
	case err := <-readerErr:
		assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
	case <-ctx.Done():
		t.Fatal("the reading subscriber got no close")
	}
	for _, c := range full {
		c.CloseNow()
	}
}

// WithHosts refuses requests for other names: a page on evil.example whose
// name resolves to the hub (DNS rebinding) sends a matching Host and Origin,
// which the same-origin check alone lets through.
func TestHostAllowList(t *testing.T) {
	e := newEnv(t, WithHosts("127.0.0.1", "*.example.com", "localhost:8080"))
	cases := []struct {
		host   string
		status int
	}{
		{strings.TrimPrefix(e.srv.URL, "http://"), http.StatusSwitchingProtocols}, // 127.0.0.1:port
		{"app.example.com", http.StatusSwitchingProtocols},
		{"APP.Example.com:443", http.StatusSwitchingProtocols},
		{"localhost:8080", http.StatusSwitchingProtocols},
		{"localhost:8081", http.StatusForbidden},
		{"evil.example", http.StatusForbidden},
		{"example.com.evil.example", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			header := http.Header{"Origin": {"http://" + c.host}}
			conn, resp, err := websocket.Dial(testCtx(t), e.url("room/subscribe"), &websocket.DialOptions{
				Subprotocols: []string{Subprotocol},
				HTTPHeader:   header,
				Host:         c.host,
			})
			require.NotNil(t, resp)
			assert.Equal(t, c.status, resp.StatusCode)
			if err == nil {
				conn.CloseNow()
			}
		})
	}
}

// The default limits hold without options: the hub-wide subscriber limit
// (a stream-less subscriber counts) and the live-stream limit.
func TestDefaultLimits(t *testing.T) {
	e := newEnv(t, WithMaxSubscribers(3), WithMaxStreams(2))
	ctx := testCtx(t)
	for i := range 3 {
		s, err := e.hub.Subscribe(ctx, fmt.Sprintf("s%d", i))
		require.NoError(t, err)
		defer s.Close()
	}
	_, err := e.hub.Subscribe(ctx, "s3")
	assert.ErrorIs(t, err, ErrTooManySubscribers)
	_, resp, err := websocket.Dial(ctx, e.url("s0/subscribe"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	for i := range 2 {
		p, err := e.hub.Publish(ctx, fmt.Sprintf("p%d", i), "x")
		require.NoError(t, err)
		defer p.Close()
	}
	_, err = e.hub.Publish(ctx, "p2", "x")
	assert.ErrorIs(t, err, ErrTooManyStreams)

	h := NewHub()
	assert.Equal(t, defaultMaxStreams, h.cfg.maxStreams)
	assert.Equal(t, defaultMaxSubscribers, h.cfg.maxSubscribers)
	assert.Equal(t, int64(defaultMemoryBudget), h.cfg.memoryBudget)
	assert.Equal(t, defaultStartTimeout, h.cfg.startTimeout)
}

// rawSubscribe opens a v1 subscriber connection by hand over TCP and never
// reads from it: the cheapest client an attacker can hold open, so what the
// hub spends on it is all the memory it costs.
func rawSubscribe(tb testing.TB, srvURL, stream string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	require.NoError(tb, err)
	fmt.Fprintf(c, "GET /live/%s/subscribe HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: %s\r\n\r\n", stream, Subprotocol)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusSwitchingProtocols, resp.StatusCode)
	return c
}

// BenchmarkSubscriberMemory measures what one idle WebSocket subscriber
// costs the process (heap and goroutine stacks, the raw client's few
// hundred bytes included): the per-subscriber term of the memory bound in
// the README's Deploying section.
//
//	go test -run '^$' -bench SubscriberMemory -benchtime 1000x
func BenchmarkSubscriberMemory(b *testing.B) {
	s := newBenchServer(WithMaxSubscribers(b.N + 1))
	defer s.close()
	idleConnCost(b, "B/subscriber", func() net.Conn { return rawSubscribe(b, s.srv.URL, "room") },
		func() bool { return s.hub.Stats().Subscribers >= b.N })
}

// idleConnCost opens b.N connections with open, waits until ready holds,
// and reports what they cost the process (heap and goroutine stacks) per
// connection, in unit.
func idleConnCost(b *testing.B, unit string, open func() net.Conn, ready func() bool) {
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := heapAndStacks()
	b.ResetTimer()
	for range b.N {
		conns = append(conns, open())
	}
	for !ready() {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	after := heapAndStacks()
	b.ReportMetric(float64(after-before)/float64(b.N), unit)
}

// BenchmarkWorstCaseMemory runs the pinning attack against a hub with the
// default options: publishers that each declare a segment of the largest
// size and send it but for one byte, until the hub refuses them, plus the
// default maximum of never-reading subscribers. It reports the live heap
// growth, the figure the README's Deploying section gives, and what the
// process pays for it: the growth of its resident memory and of its peak
// (the GC's share: at GOGC=100 the heap may grow to twice the live heap
// before a collection; GOMEMLIMIT caps that).
//
//	go test -run '^$' -bench WorstCaseMemory -benchtime 1x
//	GOMEMLIMIT=700MiB go test -run '^$' -bench WorstCaseMemory -benchtime 1x
func BenchmarkWorstCaseMemory(b *testing.B) {
	for range b.N {
		hub := NewHub()
		mux := http.NewServeMux()
		mux.Handle("/live/", http.StripPrefix("/live", hub))
		srv := httptest.NewServer(mux)
		ctx := context.Background()
		before := liveHeap()
		rssBefore, _ := resident()

		var conns []io.Closer
		refused := "every publisher admitted"
		data := make([]byte, defaultMaxMessageBytes-64)
	pinning:
		for i := 0; i < defaultMaxStreams; i++ {
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + fmt.Sprintf("/live/s%d/publish", i)
			c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
			if err != nil {
				refused = fmt.Sprintf("publisher %d refused: %v", i, resp.Status)
				break
			}
			conns = append(conns, closerFunc(func() error { return c.CloseNow() }))
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"start","mime":"video/webm","mode":"segments"}`))
			c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"segment","size":%d}`, defaultMaxSegmentBytes))
			for left := defaultMaxSegmentBytes - 1; left > 0; left -= len(data) {
				if err := c.Write(ctx, websocket.MessageBinary, data[:min(left, len(data))]); err != nil {
					_, _, err = c.Read(ctx)
					refused = fmt.Sprintf("publisher %d closed: %v", i, err)
					break pinning
				}
			}
		}
		for i := range defaultMaxSubscribers {
			conns = append(conns, rawSubscribe(b, srv.URL, fmt.Sprintf("s%d", i%10)))
		}
		for hub.Stats().Subscribers < defaultMaxSubscribers {
			time.Sleep(time.Millisecond)
		}
		rss, peak := resident() // before liveHeap's collection
		grown := liveHeap() - before
		held := hub.Stats().Held
		b.ReportMetric(float64(grown)/(1<<20), "MiB-heap")
		b.ReportMetric(float64(held)/(1<<20), "MiB-held")
		if rss > 0 {
			b.ReportMetric(float64(rss-rssBefore)/(1<<20), "MiB-rss")
			b.ReportMetric(float64(peak-rssBefore)/(1<<20), "MiB-peak-rss")
		}
		b.Logf("%s (later ones were closed with 1009); held %d MiB of the %d MiB budget; live heap +%d MiB", refused, held>>20, defaultMemoryBudget>>20, grown>>20)
		for _, c := range conns {
			c.Close()
		}
		hub.Shutdown(ctx)
		srv.Close()
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// The close-code causes TestCloseCodes does not cover: absurd sizes and
// starts, each with its documented code (README, Errors).
func TestCloseCodeCauses(t *testing.T) {
	e := newEnv(t, WithMaxSegmentBytes(5000))
	startSeg := `{"type":"start","mime":"x","mode":"segments"}`
	cases := []struct {
		name   string
		msgs   []any
		code   websocket.StatusCode
		reason string
	}{
		{"negative size", []any{startSeg, `{"type":"segment","size":-1}`}, websocket.StatusInvalidFramePayloadData, "negative size -1"},
		{"size beyond int64", []any{startSeg, `{"type":"segment","size":99999999999999999999}`}, websocket.StatusInvalidFramePayloadData, "JSON"},
		{"size not a number", []any{startSeg, `{"type":"segment","size":"12"}`}, websocket.StatusInvalidFramePayloadData, "JSON"},
		{"huge size", []any{startSeg, `{"type":"segment","size":9223372036854775807}`}, websocket.StatusMessageTooBig, "limit is 5000"},
		{"zero size", []any{startSeg, `{"type":"segment","size":0}`}, websocket.StatusProtocolError, "without a size"},
		{"no size", []any{startSeg, `{"type":"segment"}`}, websocket.StatusProtocolError, "without a size"},
		{"segments mode without mime", []any{`{"type":"start","mode":"segments"}`}, websocket.StatusProtocolError, "needs a mime"},
		{"bad mime", []any{"{\"type\":\"start\",\"mime\":\"video/webm\\n\"}"}, websocket.StatusInvalidFramePayloadData, "bad mime"},
		{"long mime", []any{`{"type":"start","mime":"` + strings.Repeat("x", 256) + `"}`}, websocket.StatusInvalidFramePayloadData, "bad mime"},
		{"not an object", []any{`[1,2]`}, websocket.StatusInvalidFramePayloadData, "JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, reason := closeCode(t, e, "a/publish", c.msgs...)
			assert.Equal(t, c.code, code, "reason: %s", reason)
			assert.Contains(t, reason, c.reason)
			waitFor(t, "the stream to be free", func() bool { return e.hub.Stats().Streams == 0 })
		})
	}
}

// A subscriber that sends a binary message while segments stream to it
// gets its 1002 close frame: the close must not be cut short by the
// writer's pending write (the race behind the reverted write-path batching).
func TestSubscriberBinaryClosedWhileStreaming(t *testing.T) {
	e := newEnv(t, WithSubscriberQueueBytes(64<<20))
	ctx := testCtx(t)
	p, err := e.hub.Publish(ctx, "room", "video/webm")
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // until stopped, for 30 s and a million segments at most
		defer close(done)
		seg := make([]byte, 16<<10)
		begin := time.Now()
		for i := 0; i < 1_000_000 && time.Since(begin) < 30*time.Second; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Keep the writer busy, never overflowing (an overflow would
			// close with 1013 before the 1002 this test is about): at most
			// 256 segments queued, far below the queue's 4,096 entries.
			if queuedBytes(e.hub, "room") > 256*len(seg) {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			p.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: seg})
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 20 {
		c := e.dialRaw("room/subscribe", Subprotocol)
		for range 10 { // the writer is busy
			_, _, err := c.Read(ctx)
			require.NoError(t, err)
		}
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte{1}))
		for err == nil {
			_, _, err = c.Read(ctx)
		}
		require.Equal(t, websocket.StatusProtocolError, websocket.CloseStatus(err), "run %d: %v", i, err)
		err = nil
		c.CloseNow()
	}
}

// queuedBytes is the bytes queued for the subscribers of stream name.
func queuedBytes(h *Hub, name string) int {
	n := 0
	h.withStream(name, func(st *stream) {
		for _, s := range st.subs {
			s.mu.Lock()
			n += s.queued
			s.mu.Unlock()
		}
	})
	return n
}

// What is still queued of a session when the next one starts is of no use
// to a subscriber: the new Start drops it, but for the End that tells the
// player the last session is over. So connect/disconnect cycles cannot
// grow a queue. A recorder restart is different: a new init waits behind
// an unsent one while the queue has room (TestLegacyBurstCostsNothing); it
// replaces it only when the queue is full (TestInitFloodIsBounded).
func TestStartDropsLeftovers(t *testing.T) {
	hub, sub := inProcessHub(t)
	ctx := testCtx(t)
	for range 3 {
		pub, err := hub.Publish(ctx, "s", "x")
		require.NoError(t, err)
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("key")}))
		require.NoError(t, pub.Close())
	}
	var kinds []Kind
	for range 5 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		kinds = append(kinds, seg.Kind)
	}
	assert.Equal(t, []Kind{KindEnd, KindStart, KindInit, KindMedia, KindEnd}, kinds, "the last session, after the End of the one before")
	assert.Equal(t, uint64(2), hub.Stats().Drops, "the first two sessions' media")

	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init1")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("key1")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init2")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("key2")}))
	var got []string
	for range 5 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		got = append(got, seg.Kind.String()+" "+string(seg.Data))
	}
	assert.Equal(t, []string{"start ", "init init1", "media key1", "init init2", "media key2"}, got, "the unsent init1 and its media wait: the queue has room")
}
