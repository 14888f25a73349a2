package relay

// Benchmarks of the hot paths, and the one allocation behaviour they rest
// on. They are not timed tests: CI runs them once each
// (go test -run '^$' -bench . -benchtime=1x ./...) so they cannot rot. The
// figures and how they were taken are in docs/performance.md; the WebM
// splitter's throughput benchmark is BenchmarkWebMSplitter in internal/webm.
//
//	go test -run '^$' -bench . -benchmem
//	go test -run '^$' -bench 'Fanout|EndToEnd' -benchmem -benchtime 2s

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/testutil"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// benchSegmentBytes is 200 ms of a 2.5 Mbit/s stream (720p).
const benchSegmentBytes = 2_500_000 / 8 / 5

// fanout is an in-process hub with n subscribers draining in goroutines.
// Each round publishes one media segment and returns when every subscriber
// has taken it from its queue.
type fanout struct {
	segmentRounds
	hub    *Hub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// segmentRounds is the publishing half of the fan-out benchmarks: each
// round publishes one media segment (a keyframe every 10) and returns when
// each of the n subscribers has reported it with arrived.
type segmentRounds struct {
	pub    *Publisher
	data   []byte
	n      int
	left   atomic.Int64
	done   chan struct{}
	rounds int
}

func newSegmentRounds(n int) segmentRounds {
	return segmentRounds{data: make([]byte, benchSegmentBytes), n: n, done: make(chan struct{}, 1)}
}

// arrived counts one subscriber's segment; the last of a round ends it.
func (r *segmentRounds) arrived() {
	if r.left.Add(-1) == 0 {
		r.done <- struct{}{}
	}
}

// round publishes one segment and waits until every subscriber has it.
func (r *segmentRounds) round() error {
	r.left.Store(int64(r.n))
	err := r.pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: r.rounds%10 == 0, Data: r.data})
	r.rounds++
	if err != nil {
		return err
	}
	<-r.done
	return nil
}

func newFanout(tb testing.TB, n int) *fanout {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fanout{segmentRounds: newSegmentRounds(n), hub: NewHub(), cancel: cancel}
	for i := 0; i < n; i++ {
		sub, err := f.hub.Subscribe(ctx, "bench")
		if err != nil {
			tb.Fatal(err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				seg, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if seg.Kind == KindMedia {
					f.arrived()
				}
			}
		}()
	}
	pub, err := f.hub.Publish(ctx, "bench", "video/webm;codecs=vp8")
	if err != nil {
		tb.Fatal(err)
	}
	f.pub = pub
	if err := pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}); err != nil {
		tb.Fatal(err)
	}
	return f
}

func (f *fanout) close() {
	f.cancel()
	f.wg.Wait()
	f.pub.Close()
	f.hub.Shutdown(context.Background())
}

// BenchmarkFanout: one in-process publisher, N in-process subscribers. One
// op is one 62.5 KB segment delivered to every subscriber (the segment is
// shared, never copied). allocs/op must not grow with N:
// TestFanoutAllocsDoNotGrowWithSubscribers checks it.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			f := newFanout(b, n)
			defer f.close()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := f.round(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub-seg")
		})
	}
}

// Publishing a segment costs the same allocations whether 1 or 1000
// subscribers receive it: queues hold pointers to the shared segment.
func TestFanoutAllocsDoNotGrowWithSubscribers(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{1, 1000} {
		f := newFanout(t, n)
		for range 20 { // grow every queue's ring and the GOP cache first
			if err := f.round(); err != nil {
				t.Fatal(err)
			}
		}
		allocs[n] = testing.AllocsPerRun(50, func() {
			if err := f.round(); err != nil {
				t.Fatal(err)
			}
		})
		f.close()
	}
	t.Logf("allocations per published segment: %v", allocs)
	// One subscriber more per allocation would be 999 more; allow a little
	// scheduler noise (a sudog now and then), nothing proportional.
	if allocs[1000] > allocs[1]+3 {
		t.Fatalf("allocations per segment grow with subscribers: %.1f with 1, %.1f with 1000", allocs[1], allocs[1000])
	}
}

// legacyBenchFile is a standalone WebM file of about 200 ms at 2.5 Mbit/s.
func legacyBenchFile() []byte {
	return webmtest.Build(webmtest.Spec{Audio: true, Clusters: 1, Frames: 6, FrameBytes: 10_000, KeyEvery: 1}).Data
}

// BenchmarkLegacyAssembler: a legacy publisher's 5120-byte chunks joined
// back into files (assemble), and each file also cut into init and Clusters
// and published to a hub with one subscriber (assemble+split).
func BenchmarkLegacyAssembler(b *testing.B) {
	file := legacyBenchFile()
	chunks := cutEvery(file, defaultLegacyChunkSize)
	if len(file)%defaultLegacyChunkSize == 0 {
		chunks = append(chunks, nil)
	}
	b.Run("assemble", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		a := legacyAssembler{chunkSize: defaultLegacyChunkSize, maxFile: defaultMaxSegmentBytes}
		for b.Loop() {
			var got []byte
			for _, c := range chunks {
				f, err := a.add(c)
				if err != nil {
					b.Fatal(err)
				}
				if f != nil {
					got = f
				}
			}
			if len(got) != len(file) {
				b.Fatalf("assembled %d bytes, want %d", len(got), len(file))
			}
		}
	})
	b.Run("assemble+split", func(b *testing.B) {
		hub := NewHub()
		defer hub.Shutdown(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sub, err := hub.Subscribe(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		pub, err := hub.Publish(ctx, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // drain, so the queue never overflows
			defer wg.Done()
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
			}
		}()
		defer wg.Wait()
		defer cancel()
		a := legacyAssembler{chunkSize: defaultLegacyChunkSize, maxFile: defaultMaxSegmentBytes}
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range chunks {
				f, err := a.add(c)
				if err != nil {
					b.Fatal(err)
				}
				if f != nil {
					if err := pub.publishLegacyFile(f); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}

// benchServer is a Hub mounted under /live/ on a loopback HTTP server.
type benchServer struct {
	hub *Hub
	srv *httptest.Server
}

func newBenchServer(opts ...Option) *benchServer {
	hub := NewHub(opts...)
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	return &benchServer{hub: hub, srv: httptest.NewServer(mux)}
}

func (s *benchServer) url(route string) string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/live/" + route
}

func (s *benchServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.hub.Shutdown(ctx)
	s.srv.Close()
}

// e2e is a protocol v1 publisher (segments mode) and n v1 subscribers over
// loopback WebSockets, each subscriber reading in its own goroutine.
type e2e struct {
	s      *benchServer
	pub    *PublishClient
	subs   []*SubscribeClient
	data   []byte
	left   atomic.Int64
	done   chan struct{}
	errc   chan error
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rounds int
	lat    time.Duration // sum of per-round latencies (publish to last subscriber)
}

func newE2E(b *testing.B, n int) *e2e {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	e := &e2e{s: newBenchServer(), data: make([]byte, benchSegmentBytes), done: make(chan struct{}, 1),
		errc: make(chan error, n), ctx: ctx, cancel: cancel}
	for i := 0; i < n; i++ {
		sub, err := DialSubscribe(ctx, e.s.url("bench/subscribe"), nil)
		if err != nil {
			e.close()
			b.Fatal(err)
		}
		e.subs = append(e.subs, sub)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for {
				seg, err := sub.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						e.errc <- err
					}
					return
				}
				if seg.Kind == KindMedia && e.left.Add(-1) == 0 {
					e.done <- struct{}{}
				}
			}
		}()
	}
	pub, err := DialPublish(ctx, e.s.url("bench/publish"), PublishStart{MIME: "video/webm;codecs=vp8", Mode: ModeSegments}, nil)
	if err != nil {
		e.close()
		b.Fatal(err)
	}
	e.pub = pub
	if err := pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("init")}); err != nil {
		e.close()
		b.Fatal(err)
	}
	return e
}

// round sends one segment and waits until every subscriber received it.
func (e *e2e) round() error {
	e.left.Store(int64(len(e.subs)))
	start := time.Now()
	if err := e.pub.SendSegment(e.ctx, Segment{Kind: KindMedia, Keyframe: e.rounds%10 == 0, Data: e.data}); err != nil {
		return err
	}
	e.rounds++
	select {
	case <-e.done:
		e.lat += time.Since(start)
		return nil
	case err := <-e.errc:
		return err
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
}

func (e *e2e) close() {
	if e.pub != nil {
		e.pub.Close()
	}
	e.cancel()
	for _, s := range e.subs {
		s.conn.CloseNow()
	}
	e.wg.Wait()
	e.s.close()
}

func benchE2E(b *testing.B, n int) {
	e := newE2E(b, n)
	defer e.close()
	b.SetBytes(int64(len(e.data) * n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.round(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.lat.Microseconds())/float64(e.rounds), "µs-latency")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub-seg")
}

// BenchmarkV1SegmentPath: protocol v1 segments mode, one publisher
// connection → Hub → one subscriber connection over loopback; one op is a
// 62.5 KB segment declared, sent, relayed and read.
func BenchmarkV1SegmentPath(b *testing.B) { benchE2E(b, 1) }

// BenchmarkEndToEnd: the same with N subscribers (Go client), one op is one
// segment received by all of them.
func BenchmarkEndToEnd(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchE2E(b, n) })
	}
}

// BenchmarkLegacyEndToEnd: the legacy framing both ways: a 62.5 KB
// standalone WebM file sent in 5120-byte chunks, relayed to N legacy
// subscribers that read its chunks.
func BenchmarkLegacyEndToEnd(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s := newBenchServer()
			defer s.close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			file := legacyBenchFile()
			var (
				left  atomic.Int64
				done  = make(chan struct{}, 1)
				wg    sync.WaitGroup
				conns []*websocket.Conn
			)
			defer func() {
				cancel()
				for _, c := range conns {
					c.CloseNow()
				}
				wg.Wait()
			}()
			for i := 0; i < n; i++ {
				c, _, err := websocket.Dial(ctx, s.url("bench/subscribe"), nil)
				if err != nil {
					b.Fatal(err)
				}
				c.SetReadLimit(-1)
				conns = append(conns, c)
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := 0
					for {
						_, m, err := c.Read(ctx)
						if err != nil {
							return
						}
						got += len(m)
						if len(m) < defaultLegacyChunkSize {
							if got == len(file) && left.Add(-1) == 0 {
								done <- struct{}{}
							}
							got = 0
						}
					}
				}()
			}
			pc, _, err := websocket.Dial(ctx, s.url("bench/publish"), nil)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, pc)
			send := func() {
				left.Store(int64(n))
				for _, c := range cutEvery(file, defaultLegacyChunkSize) {
					if err := pc.Write(ctx, websocket.MessageBinary, c); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-done:
				case <-ctx.Done():
					b.Fatal("timed out")
				}
			}
			b.SetBytes(int64(len(file) * n))
			b.ReportAllocs()
			for b.Loop() {
				send()
			}
		})
	}
}

// wsFanout is a hub on loopback with n raw WebSocket subscribers, each
// read by a goroutine that parses frames without allocating, and an
// in-process publisher: what is measured is the hub's write path alone
// (queues, batches, coder/websocket's framing, writev).
type wsFanout struct {
	segmentRounds
	s     *benchServer
	conns []net.Conn
	wg    sync.WaitGroup
}

func newWSFanout(tb testing.TB, n int) *wsFanout {
	tb.Helper()
	f := &wsFanout{segmentRounds: newSegmentRounds(n), s: newBenchServer()}
	for i := 0; i < n; i++ {
		c := rawSubscribe(tb, f.s.srv.URL, "bench")
		f.conns = append(f.conns, c)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.read(c)
		}()
	}
	for f.s.hub.Stats().Subscribers < n {
		time.Sleep(time.Millisecond)
	}
	pub, err := f.s.hub.Publish(context.Background(), "bench", "video/webm;codecs=vp8")
	if err != nil {
		tb.Fatal(err)
	}
	f.pub = pub
	f.left.Store(int64(n))
	if err := pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}); err != nil {
		tb.Fatal(err)
	}
	<-f.done
	return f
}

// read counts the binary messages of one subscriber: each is a segment.
func (f *wsFanout) read(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	var scratch [8]byte
	for {
		op, err := testutil.SkipFrame(br, &scratch)
		if err != nil {
			return
		}
		if op == 0x2 {
			f.arrived()
		}
	}
}

func (f *wsFanout) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.wg.Wait()
	f.pub.Close()
	f.s.close()
}

// BenchmarkWebSocketFanout: one in-process publisher, N WebSocket
// subscribers on loopback. One op is one 62.5 KB segment written to every
// subscriber (a JSON header and a binary message each). allocs/op is the
// whole process's: the publisher's one allocation per segment, and none per
// subscriber (allocs/sub-seg, which TestWebSocketFanoutAllocs checks).
func BenchmarkWebSocketFanout(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			f := newWSFanout(b, n)
			defer f.close()
			for range 20 {
				f.round()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := f.round(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(f.rounds-20)/float64(n), "allocs/sub-seg")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub-seg")
		})
	}
}

// Writing a segment to WebSocket subscribers allocates nothing per
// subscriber: 1 and 50 subscribers cost the same allocations per segment
// (the publisher's one, and scheduler noise). Under the race detector
// sync.Pool drops a quarter of what is put back, so the batches it pools
// are allocated again: the count is only logged then.
func TestWebSocketFanoutAllocs(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{1, 50} {
		f := newWSFanout(t, n)
		for range 20 {
			require.NoError(t, f.round())
		}
		allocs[n] = testing.AllocsPerRun(50, func() {
			if err := f.round(); err != nil {
				t.Fatal(err)
			}
		})
		f.close()
	}
	t.Logf("allocations per segment: %v", allocs)
	if raceDetector {
		t.Skip("allocation counts under -race include sync.Pool's random drops")
	}
	if allocs[50] > allocs[1]+5 {
		t.Fatalf("allocations per segment grow with WebSocket subscribers: %.1f with 1, %.1f with 50", allocs[1], allocs[50])
	}
}
