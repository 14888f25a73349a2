// Command relayload measures a segrelay Hub under load: one publisher and N
// subscribers over real WebSockets on loopback, bounded in time and count.
//
//	go run ./cmd/relayload -n 1000                  # protocol v1, segments mode
//	go run ./cmd/relayload -n 1000 -mode stream     # v1 stream mode: WebM in 5120-byte messages
//	go run ./cmd/relayload -n 1000 -mode legacy     # legacy framing both ways
//	go run ./cmd/relayload -n 1000 -mode chunkrelay # baseline: a chunk relay, legacy clients
//	go run ./cmd/relayload -n 1000 -json            # one JSON line on stdout for scripts
//
// The publisher sends -bitrate (2.5 Mbit/s: a 720p stream) as one segment
// per -segment (200 ms), each sent in -chunk-byte messages (5120) back to
// back, as a page sends each MediaRecorder blob. Every segment carries its
// send time and index; subscribers compute latency = receive time - send
// time (same host, same clock) and count what they miss. The tool reports
// subscribers connected and dropped, loss, latency p50/p90/p99/max over the
// measurement window, throughput, the server's CPU (cores) and RSS per
// subscriber (from /proc/PID), the publisher's longest write, and its own
// CPU.
//
// By default it starts the server under test itself: this same binary with
// -serve (the Hub under /live/, or with -mode chunkrelay the baseline), or
// with -server minimal the examples/minimal app, built with go build. With
// -addr it targets a running server (give -pid for CPU and RSS).
//
//	relayload -serve -listen 127.0.0.1:8080 [-chunkrelay] [-debug-listen 127.0.0.1:6060]
//
// runs the bench server alone. Everything is bounded: -duration of
// measurement (default 20 s) after the subscribers connected and a
// -warmup, and -timeout for the whole run, after which the tool gives up
// with exit status 3.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	mode        string
	n           int
	bitrate     float64
	chunk       int
	segment     time.Duration
	keyEvery    int
	fps         int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	dialConc    int
	dialTimeout time.Duration
	dialPhase   time.Duration
	addr        string
	pid         int
	mount       string
	stream      string
	server      string
	gogc        int
	memlimitMB  int64
	profileDir  string
	traceDir    string
	jsonOut     bool
	label       string
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-serve" || os.Args[1] == "--serve") {
		serve(os.Args[2:])
		return
	}
	var c config
	flag.StringVar(&c.mode, "mode", "segments", "segments (v1, segments mode), stream (v1, WebM byte stream), legacy (legacy framing), chunkrelay (legacy clients against the chunk-relay baseline)")
	flag.IntVar(&c.n, "n", 100, "subscribers")
	flag.Float64Var(&c.bitrate, "bitrate", 2.5e6, "published bits per second")
	flag.IntVar(&c.chunk, "chunk", 5120, "bytes per publisher message (segments mode: 0 sends each segment as one message with the Go client's SendSegment)")
	flag.DurationVar(&c.segment, "segment", 200*time.Millisecond, "segment (Cluster, legacy file) duration")
	flag.IntVar(&c.keyEvery, "keyframe-every", 10, "a keyframe every this many segments (legacy: every file starts with one)")
	flag.IntVar(&c.fps, "fps", 30, "video frames per second (stream and legacy modes: SimpleBlocks)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measurement window")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "after the last subscriber connected, before measuring")
	flag.DurationVar(&c.timeout, "timeout", 0, "hard limit for the whole run (default: duration + 90 s)")
	flag.IntVar(&c.dialConc, "dial-concurrency", 32, "subscriber dials in flight at once")
	flag.DurationVar(&c.dialTimeout, "dial-timeout", 10*time.Second, "one subscriber dial")
	flag.DurationVar(&c.dialPhase, "dial-phase", 60*time.Second, "all subscriber dials: those not done by then count as failed")
	flag.StringVar(&c.addr, "addr", "", "target a running server at host:port (default: start one)")
	flag.IntVar(&c.pid, "pid", 0, "with -addr: the server's PID, for CPU and RSS from /proc")
	flag.StringVar(&c.mount, "mount", "/live/", "where the hub is mounted")
	flag.StringVar(&c.stream, "stream", "load", "stream name")
	flag.StringVar(&c.server, "server", "bench", "server to start: bench (this binary with -serve), minimal (examples/minimal, built with go build) or gorilla (tools/baseline: a gorilla/websocket chunk relay, like gorilla's chat example; with -mode chunkrelay)")
	flag.IntVar(&c.gogc, "server-gogc", 0, "bench server: debug.SetGCPercent (0: default)")
	flag.Int64Var(&c.memlimitMB, "server-memlimit-mb", 0, "bench server: GOMEMLIMIT in MiB (0: none)")
	flag.StringVar(&c.profileDir, "profile", "", "bench server: write cpu.pprof (over the window), heap.pprof and goroutine.pprof here")
	flag.StringVar(&c.traceDir, "trace", "", "write execution traces of the load tool (load.trace) and the bench server (server.trace), and the server's block and mutex profiles, over the window's first 5 s here")
	flag.BoolVar(&c.jsonOut, "json", false, "print one JSON line on stdout (the human summary goes to stderr)")
	flag.StringVar(&c.label, "label", "", "free text copied into the result")
	flag.Parse()
	switch c.mode {
	case "segments", "stream", "legacy", "chunkrelay":
	default:
		fmt.Fprintf(os.Stderr, "relayload: unknown -mode %q\n", c.mode)
		os.Exit(2)
	}
	if c.server == "gorilla" && c.mode != "chunkrelay" {
		fmt.Fprintln(os.Stderr, "relayload: -server gorilla speaks the chunk relay's framing: use -mode chunkrelay")
		os.Exit(2)
	}
	if c.timeout <= 0 {
		c.timeout = c.dialPhase + c.duration + c.warmup + 60*time.Second
	}
	if c.n < 0 || c.segment <= 0 || c.bitrate <= 0 || c.chunk < 0 || (c.chunk == 0 && c.mode != "segments") {
		fmt.Fprintln(os.Stderr, "relayload: bad -n, -segment, -bitrate or -chunk")
		os.Exit(2)
	}
	res, err := run(&c)
	human := os.Stdout
	if c.jsonOut {
		human = os.Stderr
	}
	if res != nil {
		res.print(human)
		if c.jsonOut {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayload:", err)
		os.Exit(1)
	}
}

// result is one run's figures. Latencies in ms, sizes in KB (1024 B).
type result struct {
	Label      string  `json:"label,omitempty"`
	Mode       string  `json:"mode"`
	Server     string  `json:"server"`
	N          int     `json:"n"`
	BitrateBps float64 `json:"bitrate_bps"`
	ChunkBytes int     `json:"chunk_bytes"`
	SegmentMs  int64   `json:"segment_ms"`
	DurationS  float64 `json:"duration_s"`

	Connected  int     `json:"connected"`
	DialFailed int     `json:"dial_failed"`
	Dropped    int     `json:"dropped"`
	DialS      float64 `json:"dial_s"`

	SegmentsSent int     `json:"segments_sent"`
	Expected     int64   `json:"expected"`
	Received     int64   `json:"received"`
	Loss         float64 `json:"loss"`
	SeqGaps      int64   `json:"seq_gaps"`

	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	RecvMbps    float64 `json:"recv_mbit_s"`
	RecvMsgsPS  float64 `json:"recv_msgs_s"`
	MsgsPerSubS float64 `json:"msgs_per_sub_s"`

	PubWrites    int64   `json:"pub_writes"`
	PubWriteP99  float64 `json:"pub_write_p99_ms"`
	PubWriteMax  float64 `json:"pub_write_max_ms"`
	PubSegMax    float64 `json:"pub_segment_max_ms"`
	PubOver20ms  int64   `json:"pub_writes_over_20ms"`
	PubLateTicks int64   `json:"pub_late_ticks"`

	ServerPID       int     `json:"server_pid,omitempty"`
	ServerNoFile    int64   `json:"server_nofile,omitempty"`
	ServerCPU       float64 `json:"server_cpu_cores"`
	ServerRSSIdleKB int64   `json:"server_rss_idle_kb"`
	ServerRSSPubKB  int64   `json:"server_rss_pub_kb"`
	ServerRSSKB     int64   `json:"server_rss_kb"`
	ServerHWMKB     int64   `json:"server_hwm_kb"`
	RSSPerSubKB     float64 `json:"rss_per_sub_kb"`
	ServerThreads   int64   `json:"server_threads"`
	Goroutines      int     `json:"server_goroutines,omitempty"`
	GoroutinesSub   float64 `json:"goroutines_per_sub,omitempty"`
	StackPerSubKB   float64 `json:"stack_per_sub_kb,omitempty"`
	HeapPerSubKB    float64 `json:"live_heap_per_sub_kb,omitempty"`
	StackGCPerSubKB float64 `json:"stack_after_gc_per_sub_kb,omitempty"`
	GCCPUFraction   float64 `json:"gc_cpu_fraction,omitempty"`
	GOGC            int     `json:"server_gogc,omitempty"`
	MemLimitMB      int64   `json:"server_memlimit_mb,omitempty"`

	ToolCPU float64 `json:"tool_cpu_cores"`
	// The whole machine over the window, from /proc/stat and
	// /proc/pressure/cpu: cores busy (all processes), cores stolen by the
	// hypervisor, and the share of the time some runnable task waited for
	// a core (CPU pressure, "some"). Pressure near 1 means the cores are
	// oversubscribed: every thread's latency includes waiting for a core.
	MachineBusy  float64  `json:"machine_busy_cores,omitempty"`
	MachineSteal float64  `json:"machine_steal_cores,omitempty"`
	CPUPressure  float64  `json:"cpu_pressure,omitempty"`
	LoadAvg      string   `json:"loadavg"`
	Machine      string   `json:"machine"`
	Started      string   `json:"started"`
	Warnings     []string `json:"warnings,omitempty"`
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "relayload %s: %d subscribers (%s server), %.2f Mbit/s in %d-byte messages, %d ms segments, %.0f s window\n",
		r.Mode, r.N, r.Server, r.BitrateBps/1e6, r.ChunkBytes, r.SegmentMs, r.DurationS)
	fmt.Fprintf(w, "  subscribers  connected %d, dial failed %d, dropped %d (dialled in %.1f s)\n", r.Connected, r.DialFailed, r.Dropped, r.DialS)
	fmt.Fprintf(w, "  delivery     %d segments sent, %d/%d received, loss %.4f%%, seq gaps %d\n", r.SegmentsSent, r.Received, r.Expected, 100*r.Loss, r.SeqGaps)
	fmt.Fprintf(w, "  latency      p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs)
	fmt.Fprintf(w, "  throughput   %.1f Mbit/s to subscribers, %.0f messages/s (%.1f per subscriber)\n", r.RecvMbps, r.RecvMsgsPS, r.MsgsPerSubS)
	fmt.Fprintf(w, "  publisher    %d writes, p99 %.2f ms, max %.2f ms (segment max %.2f ms), %d over 20 ms, %d late ticks\n",
		r.PubWrites, r.PubWriteP99, r.PubWriteMax, r.PubSegMax, r.PubOver20ms, r.PubLateTicks)
	if r.ServerPID != 0 {
		fmt.Fprintf(w, "  server       pid %d, CPU %.2f cores, RSS %d KB (idle %d, with publisher %d, peak %d), %.1f KB per subscriber, %d threads, RLIMIT_NOFILE %d\n",
			r.ServerPID, r.ServerCPU, r.ServerRSSKB, r.ServerRSSIdleKB, r.ServerRSSPubKB, r.ServerHWMKB, r.RSSPerSubKB, r.ServerThreads, r.ServerNoFile)
	}
	if r.Goroutines != 0 {
		fmt.Fprintf(w, "  server Go    %d goroutines (%.2f per subscriber); per subscriber: stacks %.1f KB (%.1f KB after a GC), live heap %.1f KB; GC CPU %.3f\n",
			r.Goroutines, r.GoroutinesSub, r.StackPerSubKB, r.StackGCPerSubKB, r.HeapPerSubKB, r.GCCPUFraction)
	}
	fmt.Fprintf(w, "  load tool    CPU %.2f cores; load average %s\n", r.ToolCPU, r.LoadAvg)
	fmt.Fprintf(w, "  machine      %.2f cores busy, %.2f stolen, CPU pressure %.0f %% (some task waited for a core)\n", r.MachineBusy, r.MachineSteal, 100*r.CPUPressure)
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "  warning      %s\n", s)
	}
}

// server is the server under test.
type server struct {
	addr, debug string
	pid         int
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	name        string
}

func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.stdin.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func startServer(c *config) (*server, error) {
	if c.addr != "" {
		return &server{addr: c.addr, pid: c.pid, name: "external"}, nil
	}
	var cmd *exec.Cmd
	name := c.server
	switch {
	case c.server == "gorilla":
		return startBuilt(c, "tools/baseline", "gorilla", "-watch-stdin", "-timeout", (c.timeout + 30*time.Second).String())
	case c.server == "bench" || c.mode == "chunkrelay":
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args := []string{"-serve", "-listen", "127.0.0.1:0", "-debug-listen", "127.0.0.1:0", "-watch-stdin",
			"-serve-timeout", (c.timeout + 30*time.Second).String()}
		if c.mode == "chunkrelay" {
			args = append(args, "-chunkrelay")
			name = "chunkrelay"
		}
		if c.gogc != 0 {
			args = append(args, "-gogc", fmt.Sprint(c.gogc))
		}
		if c.memlimitMB > 0 {
			args = append(args, "-memlimit-mb", fmt.Sprint(c.memlimitMB))
		}
		if c.traceDir != "" {
			args = append(args, "-contention")
		}
		cmd = exec.Command(exe, args...)
	case c.server == "minimal":
		return startBuilt(c, "examples/minimal", "minimal")
	default:
		return nil, fmt.Errorf("unknown -server %q: want bench, minimal or gorilla", c.server)
	}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, name: name}
	lines := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		var acc []byte
		for {
			n, err := out.Read(buf)
			acc = append(acc, buf[:n]...)
			for {
				i := strings.IndexByte(string(acc), '\n')
				if i < 0 {
					break
				}
				select {
				case lines <- string(acc[:i]):
				default:
				}
				acc = acc[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	timeout := time.After(30 * time.Second)
	for s.addr == "" {
		select {
		case l := <-lines:
			if a, ok := strings.CutPrefix(l, "relayload: debug on "); ok {
				s.debug = a
			}
			if a, ok := strings.CutPrefix(l, "relayload: listening on "); ok {
				s.addr, _, _ = strings.Cut(a, " ")
			}
		case <-timeout:
			s.stop()
			return nil, fmt.Errorf("the bench server did not start")
		}
	}
	return s, nil
}

// startBuilt builds the program in dir (relative to the segrelay
// repository; a nested module's directory works too), starts it with
// -addr and args, and waits until it listens.
func startBuilt(c *config, dir, name string, args ...string) (*server, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return nil, fmt.Errorf("-server %s: run from inside the segrelay module (go env GOMOD: %v)", name, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("relayload-%s-%d", name, os.Getpid()))
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = filepath.Join(root, dir), os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build ./%s: %w", dir, err)
	}
	defer os.Remove(bin) // the running process keeps its file
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"-addr", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{addr: addr, pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, name: name}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("./%s did not listen on %s", dir, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) url(c *config, role string) string {
	return "ws://" + s.addr + c.mount + c.stream + "/" + role
}

func (s *server) mem(gc bool) (memStats, bool) {
	var m memStats
	if s.debug == "" {
		return m, false
	}
	q := ""
	if gc {
		q = "?gc=1"
	}
	resp, err := http.Get("http://" + s.debug + "/debug/relayload/mem" + q)
	if err != nil {
		return m, false
	}
	defer resp.Body.Close()
	return m, json.NewDecoder(resp.Body).Decode(&m) == nil
}

func (s *server) saveProfile(path, file string) error {
	resp, err := http.Get("http://" + s.debug + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

func machine() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	str := func(a [65]int8) string {
		var b []byte
		for _, c := range a {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return fmt.Sprintf("%s %s, %d CPUs", str(u.Sysname), str(u.Release), numCPU())
}

func run(c *config) (*result, error) {
	res := &result{Label: c.label, Mode: c.mode, N: c.n, BitrateBps: c.bitrate, ChunkBytes: c.chunk,
		SegmentMs: c.segment.Milliseconds(), GOGC: c.gogc, MemLimitMB: c.memlimitMB,
		Machine: machine(), Started: time.Now().UTC().Format(time.RFC3339)}
	hard := time.AfterFunc(c.timeout, func() {
		fmt.Fprintf(os.Stderr, "relayload: hard timeout (%v) reached: giving up\n", c.timeout)
		os.Exit(3)
	})
	defer hard.Stop()

	if nofile := raiseNoFile(); nofile < uint64(c.n)+64 {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d: %d subscribers need at least %d (raise the hard limit: ulimit -Hn)", nofile, c.n, c.n+64)
	}
	srv, err := startServer(c)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	res.Server, res.ServerPID = srv.name, srv.pid
	if srv.pid != 0 {
		if nf, err := procNoFile(srv.pid); err == nil {
			res.ServerNoFile = nf
			if nf < int64(c.n)+64 {
				res.Warnings = append(res.Warnings, fmt.Sprintf("the server's RLIMIT_NOFILE (%d) is below %d subscribers", nf, c.n))
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	var ps0, ps1, ps2 procStat
	if srv.pid != 0 {
		ps0, _ = readProc(srv.pid)
		res.ServerRSSIdleKB = ps0.rssKB
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newMedia(c)
	pub := &publisher{c: c, m: m, stop: make(chan struct{}), done: make(chan struct{}), ready: make(chan error, 1)}
	pub.firstIdx.Store(math.MaxUint64)
	go pub.run(ctx, srv.url(c, "publish"))
	if err := <-pub.ready; err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	time.Sleep(time.Second + 2*c.segment) // a keyframe in the cache, steady state
	mem1, _ := srv.mem(true)
	if srv.pid != 0 {
		ps1, _ = readProc(srv.pid)
		res.ServerRSSPubKB = ps1.rssKB
	}

	// Subscribers, dialled with bounded concurrency.
	subs := make([]*subscriber, c.n)
	dialStart := time.Now()
	sem := make(chan struct{}, max(1, c.dialConc))
	var dialWG sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	var readers sync.WaitGroup
	dialCtx, dialCancel := context.WithTimeout(ctx, c.dialPhase)
	defer dialCancel()
	for i := range subs {
		select {
		case sem <- struct{}{}:
		case <-dialCtx.Done():
		}
		if dialCtx.Err() != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("dial phase over %v: the server accepts too slowly", c.dialPhase))
			continue
		}
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			s, err := dialSubscriber(dialCtx, c, srv.url(c, "subscribe"), m, pub)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			subs[i] = s
			readers.Add(1)
			go func() { defer readers.Done(); s.run() }()
		}()
	}
	dialWG.Wait()
	res.DialS = time.Since(dialStart).Seconds()
	res.DialFailed = int(failed.Load())
	res.Connected = c.n - res.DialFailed
	if e := firstErr.Load(); e != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("first dial error: %s", e))
	}
	time.Sleep(c.warmup)

	// The measurement window.
	var alive []*subscriber
	for _, s := range subs {
		if s != nil && !s.ended.Load() {
			alive = append(alive, s)
		}
	}
	snap := func() (msgs, bytes int64) {
		for _, s := range alive {
			msgs += s.msgs.Load()
			bytes += s.bytes.Load()
		}
		return
	}
	if srv.pid != 0 {
		ps1b, _ := readProc(srv.pid)
		ps1.cpu = ps1b.cpu
	}
	self0 := selfCPU()
	mach0 := readMachine()
	msgs0, bytes0 := snap()
	t0 := time.Now()
	first := pub.next.Load()
	pub.firstIdx.Store(first)
	profDone := make(chan struct{})
	if c.profileDir != "" && srv.debug != "" {
		os.MkdirAll(c.profileDir, 0o755)
		secs := max(1, int(min(c.duration, 15*time.Second).Seconds())-1)
		go func() {
			defer close(profDone)
			if err := srv.saveProfile(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(c.profileDir, "cpu.pprof")); err != nil {
				fmt.Fprintln(os.Stderr, "relayload: cpu profile:", err)
			}
		}()
	} else {
		close(profDone)
	}
	traceDone := traceWindow(c, srv)
	select {
	case <-time.After(c.duration):
	case <-pub.done:
	}
	elapsed := time.Since(t0)
	msgs1, bytes1 := snap()
	self1 := selfCPU()
	mach1 := readMachine()
	if srv.pid != 0 {
		ps2, _ = readProc(srv.pid)
	}
	close(pub.stop)
	<-pub.done
	last := pub.next.Load() // segments first..last-1 were sent in the window
	mem2, haveMem := srv.mem(false)
	if c.profileDir != "" && srv.debug != "" {
		<-profDone
		srv.saveProfile("/debug/pprof/heap", filepath.Join(c.profileDir, "heap.pprof"))
		srv.saveProfile("/debug/pprof/goroutine", filepath.Join(c.profileDir, "goroutine.pprof"))
	}
	<-traceDone
	mem3, _ := srv.mem(true)

	// Let the last segments arrive.
	want := int64(last - first)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		done := true
		for _, s := range alive {
			if !s.ended.Load() && s.got.Load() < want {
				done = false
				break
			}
		}
		if done {
			break
		}
	}
	for _, s := range subs {
		if s != nil {
			s.stopping.Store(true)
		}
	}

	res.DurationS = elapsed.Seconds()
	res.SegmentsSent = int(want)
	res.Expected = want * int64(len(alive))
	for _, s := range subs {
		if s == nil {
			continue
		}
		if s.ended.Load() {
			res.Dropped++
		}
	}
	for _, s := range alive {
		res.Received += min(s.got.Load(), want)
		res.SeqGaps += s.gaps.Load()
	}
	if res.Expected > 0 {
		res.Loss = 1 - float64(res.Received)/float64(res.Expected)
	}
	res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = pub.lat.quantile(0.5), pub.lat.quantile(0.9), pub.lat.quantile(0.99), pub.lat.maxMs()
	res.RecvMbps = float64(bytes1-bytes0) * 8 / elapsed.Seconds() / 1e6
	res.RecvMsgsPS = float64(msgs1-msgs0) / elapsed.Seconds()
	if len(alive) > 0 {
		res.MsgsPerSubS = res.RecvMsgsPS / float64(len(alive))
	}
	res.PubWrites = int64(pub.writes.n.Load())
	res.PubWriteP99, res.PubWriteMax = pub.writes.quantile(0.99), pub.writes.maxMs()
	res.PubSegMax = pub.segs.maxMs()
	res.PubOver20ms, res.PubLateTicks = pub.over20.Load(), pub.late.Load()
	res.ToolCPU = float64(self1-self0) / float64(elapsed)
	res.MachineBusy = float64(mach1.busy-mach0.busy) / float64(elapsed)
	res.MachineSteal = float64(mach1.steal-mach0.steal) / float64(elapsed)
	res.CPUPressure = float64(mach1.pressure-mach0.pressure) / float64(elapsed)
	if srv.pid != 0 {
		res.ServerCPU = float64(ps2.cpu-ps1.cpu) / float64(elapsed)
		res.ServerRSSKB, res.ServerHWMKB, res.ServerThreads = ps2.rssKB, ps2.hwmKB, ps2.threads
		if res.Connected > 0 {
			res.RSSPerSubKB = float64(ps2.rssKB-ps1.rssKB) / float64(res.Connected)
		}
	}
	if haveMem && res.Connected > 0 {
		n := float64(res.Connected)
		res.Goroutines = mem2.Goroutines
		res.GoroutinesSub = float64(mem2.Goroutines-mem1.Goroutines) / n
		res.StackPerSubKB = (float64(mem2.StackInuse) - float64(mem1.StackInuse)) / n / 1024
		res.HeapPerSubKB = (float64(mem3.HeapAlloc) - float64(mem1.HeapAlloc)) / n / 1024
		res.StackGCPerSubKB = (float64(mem3.StackInuse) - float64(mem1.StackInuse)) / n / 1024
		res.GCCPUFraction = mem2.GCCPU
	}
	res.LoadAvg = loadAvg()
	if pub.err != nil {
		res.Warnings = append(res.Warnings, "publisher: "+pub.err.Error())
	}
	if elapsed < c.duration*9/10 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the window lasted %v, not %v: the publisher stopped; rates and CPU are not meaningful", elapsed.Round(time.Millisecond), c.duration))
	}

	// Close everything: subscribers, then the publisher, then the server.
	for _, s := range subs {
		if s != nil {
			s.conn.CloseNow()
		}
	}
	readers.Wait()
	pub.close()
	return res, nil
}

// numCPU is the CPUs this process may use.
func numCPU() int {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				n := 0
				for _, r := range strings.Split(strings.TrimSpace(v), ",") {
					var a, z int
					if k, _ := fmt.Sscanf(r, "%d-%d", &a, &z); k == 2 {
						n += z - a + 1
					} else {
						n++
					}
				}
				return n
			}
		}
	}
	return 0
}

// traceWindow traces the load tool and, when it is the bench server, the
// server over the window's first seconds (-trace), and takes the server's
// block and mutex profiles of the same seconds: where the publisher's
// writes wait, on which side. The returned channel closes when all is
// written.
func traceWindow(c *config, srv *server) <-chan struct{} {
	done := make(chan struct{})
	if c.traceDir == "" {
		close(done)
		return done
	}
	os.MkdirAll(c.traceDir, 0o755)
	secs := max(1, int(min(c.duration, 6*time.Second).Seconds())-1)
	var wg sync.WaitGroup
	if srv.debug != "" {
		for _, p := range []struct{ path, file string }{
			{"/debug/pprof/trace", "server.trace"}, {"/debug/pprof/block", "block.pprof"}, {"/debug/pprof/mutex", "mutex.pprof"},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.saveProfile(fmt.Sprintf("%s?seconds=%d", p.path, secs), filepath.Join(c.traceDir, p.file)); err != nil {
					fmt.Fprintln(os.Stderr, "relayload:", p.file+":", err)
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, err := os.Create(filepath.Join(c.traceDir, "load.trace"))
		if err == nil {
			defer f.Close()
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "relayload: load.trace:", err)
			return
		}
		time.Sleep(time.Duration(secs) * time.Second)
		trace.Stop()
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}
