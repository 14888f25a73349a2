package main

// BenchmarkFanout puts segrelay's write path and this baseline's side by
// side in one process, measured in CPU time (getrusage), which a busy
// machine disturbs far less than wall time: one in-process publisher, N
// raw WebSocket subscribers on loopback that parse frames without
// allocating, one op = one message (segrelay: one segment, a JSON header
// and a binary message) read by every subscriber. Each round waits until
// all have it, so nothing queues: the cost per message without batching,
// the least favourable case for segrelay.
//
//	go test -run '^$' -bench Fanout -benchtime 2000x ./tools/baseline

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/internal/testutil"
)

type fanout struct {
	srv     *httptest.Server
	publish func(data []byte, key bool) error
	stop    func()
	conns   []net.Conn
	left    atomic.Int64
	done    chan struct{}
	wg      sync.WaitGroup
	n       int
}

func (f *fanout) subscribe(tb testing.TB, proto string) {
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	hdr := ""
	if proto != "" {
		hdr = "Sec-WebSocket-Protocol: " + proto + "\r\n"
	}
	fmt.Fprintf(c, "GET /live/s/subscribe HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n", hdr)
	br := bufio.NewReaderSize(c, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("subscribe: %v %v", err, resp)
	}
	f.conns = append(f.conns, c)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.read(br)
	}()
}

// read counts binary messages.
func (f *fanout) read(br *bufio.Reader) {
	var scratch [8]byte
	for {
		op, err := testutil.SkipFrame(br, &scratch)
		if err != nil {
			return
		}
		if op == 0x2 && f.left.Add(-1) == 0 {
			f.done <- struct{}{}
		}
	}
}

func (f *fanout) round(data []byte, key bool) error {
	f.left.Store(int64(f.n))
	if err := f.publish(data, key); err != nil {
		return err
	}
	<-f.done
	return nil
}

func (f *fanout) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.wg.Wait()
	f.stop()
	f.srv.Close()
}

func newSegrelay(tb testing.TB, n int) *fanout {
	hub := relay.NewHub(relay.WithMaxSubscribers(n + 1))
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	f := &fanout{srv: httptest.NewServer(mux), n: n, done: make(chan struct{}, 1)}
	for range n {
		f.subscribe(tb, relay.Subprotocol)
	}
	for hub.Stats().Subscribers < n {
		time.Sleep(time.Millisecond)
	}
	pub, err := hub.Publish(context.Background(), "s", "video/webm")
	if err != nil {
		tb.Fatal(err)
	}
	f.left.Store(int64(n))
	if err := pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: []byte("init")}); err != nil {
		tb.Fatal(err)
	}
	<-f.done
	f.publish = func(data []byte, key bool) error {
		return pub.WriteSegment(relay.Segment{Kind: relay.KindMedia, Keyframe: key, Data: data})
	}
	f.stop = func() { pub.Close(); hub.Shutdown(context.Background()) }
	return f
}

func newGorilla(tb testing.TB, n int) *fanout {
	h := newHub()
	go h.run()
	mux := http.NewServeMux()
	mux.HandleFunc("/live/", h.serveWS)
	f := &fanout{srv: httptest.NewServer(mux), n: n, done: make(chan struct{}, 1)}
	for range n {
		f.subscribe(tb, "")
	}
	for h.clients.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	f.publish = func(data []byte, _ bool) error {
		h.broadcast <- message{"s", data}
		return nil
	}
	f.stop = func() {}
	return f
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkFanout(b *testing.B) {
	for _, size := range []int{5 << 10, 64 << 10} {
		for _, n := range []int{100} {
			for _, side := range []string{"segrelay", "gorilla"} {
				b.Run(fmt.Sprintf("%s/msg=%dKB/subs=%d", side, size>>10, n), func(b *testing.B) {
					var f *fanout
					if side == "segrelay" {
						f = newSegrelay(b, n)
					} else {
						f = newGorilla(b, n)
					}
					defer f.close()
					data := make([]byte, size)
					for i := range 20 { // warm up: connections' buffers, pools
						f.round(data, i%10 == 0)
					}
					b.ReportAllocs()
					cpu := cpuTime()
					i := 0
					for b.Loop() {
						if err := f.round(data, i%10 == 0); err != nil {
							b.Fatal(err)
						}
						i++
					}
					cpu = cpuTime() - cpu
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/sub-msg")
				})
			}
		}
	}
}
