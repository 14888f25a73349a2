package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	relay "github.com/segrelay/relay"
)

// serve runs the bench server: a relay.Hub (or, with -chunkrelay, the
// chunk-relay baseline) mounted under /live/, until SIGTERM, SIGINT, its
// standard input closing (the load tool that started it is gone) or
// -serve-timeout. It prints "relayload: listening on ADDR" when ready.
func serve(args []string) {
	fs := flag.NewFlagSet("relayload -serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	debugListen := fs.String("debug-listen", "", "address of a pprof and /debug/relayload/mem listener (empty: none)")
	chunk := fs.Bool("chunkrelay", false, "serve the chunk-relay baseline instead of the Hub")
	gogc := fs.Int("gogc", 0, "debug.SetGCPercent (0: leave GOGC as is)")
	memlimit := fs.Int64("memlimit-mb", 0, "debug.SetMemoryLimit in MiB (0: none)")
	timeout := fs.Duration("serve-timeout", 10*time.Minute, "exit after this long whatever happens")
	watchStdin := fs.Bool("watch-stdin", false, "exit when standard input closes")
	contention := fs.Bool("contention", false, "record block and mutex profiles (/debug/pprof/block, /debug/pprof/mutex)")
	fs.Parse(args)

	nofile := raiseNoFile()
	if *gogc != 0 {
		debug.SetGCPercent(*gogc)
	}
	if *memlimit > 0 {
		debug.SetMemoryLimit(*memlimit << 20)
	}
	if *contention {
		runtime.SetBlockProfileRate(int(100 * time.Microsecond)) // a sample per 100 µs blocked, on average
		runtime.SetMutexProfileFraction(10)
	}

	var handler http.Handler
	var shutdown func(context.Context) error
	if *chunk {
		cr := newChunkRelay()
		handler, shutdown = cr, cr.shutdown
	} else {
		// No subscriber limit: the load decides (the default is 1,000).
		hub := relay.NewHub(relay.WithMaxSubscribers(1 << 20))
		handler, shutdown = hub, hub.Shutdown
	}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", handler))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	if *debugListen != "" {
		dmux := http.NewServeMux()
		dmux.HandleFunc("/debug/pprof/", pprof.Index)
		dmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dmux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		dmux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dmux.HandleFunc("/debug/relayload/mem", memHandler)
		dln, err := net.Listen("tcp", *debugListen)
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(dln, dmux)
		fmt.Printf("relayload: debug on %s\n", dln.Addr())
	}
	fmt.Printf("relayload: listening on %s (pid %d, RLIMIT_NOFILE %d, chunkrelay %t)\n", ln.Addr(), os.Getpid(), nofile, *chunk)

	stop := make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(stop) }) }
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		end()
	}()
	if *watchStdin {
		go func() {
			var b [1]byte
			for {
				if _, err := os.Stdin.Read(b[:]); err != nil {
					end()
					return
				}
			}
		}()
	}
	time.AfterFunc(*timeout, end)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown(ctx)
		srv.Shutdown(ctx)
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// memStats is what /debug/relayload/mem reports.
type memStats struct {
	Goroutines   int     `json:"goroutines"`
	HeapAlloc    uint64  `json:"heap_alloc"`
	HeapInuse    uint64  `json:"heap_inuse"`
	HeapIdle     uint64  `json:"heap_idle"`
	HeapReleased uint64  `json:"heap_released"`
	StackInuse   uint64  `json:"stack_inuse"`
	Sys          uint64  `json:"sys"`
	NumGC        uint32  `json:"num_gc"`
	GCCPU        float64 `json:"gc_cpu_fraction"`
}

func memHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	json.NewEncoder(w).Encode(memStats{
		Goroutines: runtime.NumGoroutine(), HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse,
		HeapIdle: m.HeapIdle, HeapReleased: m.HeapReleased, StackInuse: m.StackInuse,
		Sys: m.Sys, NumGC: m.NumGC, GCCPU: m.GCCPUFraction,
	})
}

// chunkRelay is the baseline: the blog design's relay, or any generic
// WebSocket broadcaster (gorilla's chat example, written here with
// coder/websocket). Every message a publisher sends is forwarded to every
// subscriber of the stream as its own message, through a per-subscriber
// channel of 256 messages and a writer goroutine; a subscriber whose channel
// is full is dropped. No reassembly, no late-joiner cache.
type chunkRelay struct {
	mu      sync.Mutex
	streams map[string]map[*crSub]struct{}
	wg      sync.WaitGroup
	closed  bool
	conns   map[*websocket.Conn]struct{}
}

type crSub struct {
	send chan []byte
	once sync.Once
	gone chan struct{}
}

func (s *crSub) drop() { s.once.Do(func() { close(s.gone) }) }

func newChunkRelay() *chunkRelay {
	return &chunkRelay{streams: map[string]map[*crSub]struct{}{}, conns: map[*websocket.Conn]struct{}{}}
}

func (cr *chunkRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, action, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if name == "" || (action != "publish" && action != "subscribe") {
		http.NotFound(w, r)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	cr.mu.Lock()
	if cr.closed {
		cr.mu.Unlock()
		conn.CloseNow()
		return
	}
	cr.conns[conn] = struct{}{}
	cr.wg.Add(1)
	cr.mu.Unlock()
	defer func() {
		cr.mu.Lock()
		delete(cr.conns, conn)
		cr.mu.Unlock()
		cr.wg.Done()
	}()
	if action == "publish" {
		cr.publish(conn, name)
	} else {
		cr.subscribe(conn, name)
	}
}

func (cr *chunkRelay) publish(conn *websocket.Conn, name string) {
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for {
		_, msg, err := conn.Read(context.Background())
		if err != nil {
			return
		}
		cr.mu.Lock()
		for s := range cr.streams[name] {
			select {
			case s.send <- msg:
			default: // too slow: gone, as in the chat example
				delete(cr.streams[name], s)
				s.drop()
			}
		}
		cr.mu.Unlock()
	}
}

func (cr *chunkRelay) subscribe(conn *websocket.Conn, name string) {
	defer conn.CloseNow()
	s := &crSub{send: make(chan []byte, 256), gone: make(chan struct{})}
	cr.mu.Lock()
	if cr.streams[name] == nil {
		cr.streams[name] = map[*crSub]struct{}{}
	}
	cr.streams[name][s] = struct{}{}
	cr.mu.Unlock()
	defer func() {
		cr.mu.Lock()
		delete(cr.streams[name], s)
		if len(cr.streams[name]) == 0 {
			delete(cr.streams, name)
		}
		cr.mu.Unlock()
	}()
	ctx := conn.CloseRead(context.Background()) // a reader goroutine for control frames
	for {
		select {
		case msg := <-s.send:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Write(wctx, websocket.MessageBinary, msg)
			cancel()
			if err != nil {
				return
			}
		case <-s.gone:
			conn.Close(websocket.StatusTryAgainLater, "too slow")
			return
		case <-ctx.Done():
			return
		}
	}
}

func (cr *chunkRelay) shutdown(ctx context.Context) error {
	cr.mu.Lock()
	cr.closed = true
	for c := range cr.conns {
		go c.Close(websocket.StatusGoingAway, "shutting down")
	}
	cr.mu.Unlock()
	done := make(chan struct{})
	go func() { cr.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
