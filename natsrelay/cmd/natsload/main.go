// Command natsload measures what natsrelay adds: three hub processes (A, B,
// C) bridged through one NATS server on loopback, a publisher on A,
// viewers on A (the single-node baseline) and viewers spread over B and C
// (one cross-node hop), all over real WebSockets, bounded in time and
// count.
//
//	go run ./natsrelay/cmd/natsload -n 200               # 200 viewers over B and C, 10 on A
//	go run ./natsrelay/cmd/natsload -n 1000 -duration 30s -json
//
// The publisher sends -bitrate (2.5 Mbit/s) as one segment per -segment
// (200 ms), a keyframe every -key-every segments; each segment carries its
// send time and index. Viewers compute latency = receive time - send time
// (same host, same clock) and count what they miss. The tool reports per
// group (A: same node, BC: across NATS) viewers, loss, latency p50/p99/max,
// the added latency of the hop (BC - A), the NATS server's messages and
// bytes per second in and out (its varz) and each hub process's CPU. It
// starts the NATS server embedded (or uses -nats URL, which needs
// JetStream) and the hubs as child processes of this same binary (-serve).
// Everything is bounded: -warmup, then -duration of measurement, and
// -timeout for the whole run (exit status 3).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/natsrelay"
)

type config struct {
	n, local   int
	bitrate    float64
	segment    time.Duration
	keyEvery   int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	natsURL    string
	maxPayload int
	jsonOut    bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		serve(os.Args[2:])
		return
	}
	var c config
	flag.IntVar(&c.n, "n", 200, "viewers over B and C (half each)")
	flag.IntVar(&c.local, "local", 10, "viewers on A, the publisher's node (the baseline)")
	flag.Float64Var(&c.bitrate, "bitrate", 2.5e6, "publisher bit rate (bits/s)")
	flag.DurationVar(&c.segment, "segment", 200*time.Millisecond, "one segment every")
	flag.IntVar(&c.keyEvery, "key-every", 5, "a keyframe every this many segments")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measurement window")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "before the window")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "for the whole run")
	flag.StringVar(&c.natsURL, "nats", "", "NATS server URL with JetStream (default: an embedded one)")
	flag.IntVar(&c.maxPayload, "max-payload", 0, "the embedded server's max payload (0: 1 MiB)")
	flag.BoolVar(&c.jsonOut, "json", false, "one JSON line on stdout")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := run(ctx, &c)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "natsload: timed out:", err)
			os.Exit(3)
		}
		log.Fatal(err)
	}
	if c.jsonOut {
		json.NewEncoder(os.Stdout).Encode(res)
	} else {
		res.print(os.Stdout)
	}
}

// serve runs one hub process: natsload -serve -listen ADDR -nats URL. It
// prints "listening ADDR" and runs until stdin closes or SIGTERM.
func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	natsURL := fs.String("nats", "", "NATS URL")
	name := fs.String("name", "", "node name")
	fs.Parse(args)
	nc, err := nats.Connect(*natsURL, nats.MaxReconnects(-1), nats.Name(*name))
	if err != nil {
		log.Fatal(err)
	}
	hub := relay.NewHub(relay.WithMaxSubscribers(20000), relay.WithMaxSubscribersPerStream(20000))
	b, err := natsrelay.New(hub, nc, natsrelay.Options{NodeID: *name})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	mux.HandleFunc("/bridge", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(b.Stats()) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { io.Copy(io.Discard, os.Stdin); stop <- syscall.SIGTERM }()
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hub.Shutdown(ctx)
	b.Close()
	nc.Close()
	srv.Shutdown(ctx)
}

// node is a hub child process.
type node struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startNode(ctx context.Context, name, natsURL string) (*node, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", "-name", name, "-nats", natsURL)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{name: name, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			n.stop()
			return nil, fmt.Errorf("node %s: %q", name, l)
		}
		n.addr = addr
	case <-ctx.Done():
		n.stop()
		return nil, ctx.Err()
	}
	return n, nil
}

func (n *node) stop() {
	n.stdin.Close()
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

func (n *node) url(role string) string { return "ws://" + n.addr + "/live/load/" + role }

// cpu returns the process's user+system CPU time so far.
func (n *node) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
}

func (n *node) bridge() natsrelay.Stats {
	var s natsrelay.Stats
	resp, err := http.Get("http://" + n.addr + "/bridge")
	if err == nil {
		json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
	}
	return s
}

// group is a set of viewers measured together.
type group struct {
	mu       sync.Mutex
	lat      []time.Duration
	got      atomic.Uint64 // media segments received in the window
	gaps     atomic.Uint64 // index jumps
	viewers  atomic.Int64
	dropped  atomic.Int64 // viewers whose connection ended
	measured atomic.Bool
}

func (g *group) add(d time.Duration) {
	g.mu.Lock()
	g.lat = append(g.lat, d)
	g.mu.Unlock()
}

type groupResult struct {
	Viewers, Dropped int64
	Expected, Got    uint64
	LossPct          float64
	P50ms, P99ms     float64
	MaxMs            float64
	Gaps             uint64
}

func (g *group) result(sent uint64) groupResult {
	g.mu.Lock()
	lat := append([]time.Duration(nil), g.lat...)
	g.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	r := groupResult{Viewers: g.viewers.Load(), Dropped: g.dropped.Load(), Got: g.got.Load(), Gaps: g.gaps.Load(),
		P50ms: q(0.50), P99ms: q(0.99)}
	if len(lat) > 0 {
		r.MaxMs = float64(lat[len(lat)-1]) / 1e6
	}
	r.Expected = sent * uint64(r.Viewers)
	if r.Expected > 0 {
		r.LossPct = 100 * (1 - float64(r.Got)/float64(r.Expected))
	}
	return r
}

func view(ctx context.Context, url string, g *group, wg *sync.WaitGroup) error {
	s, err := relay.DialSubscribe(ctx, url, nil)
	if err != nil {
		return err
	}
	g.viewers.Add(1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.Close()
		last := -1
		for {
			seg, err := s.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					g.dropped.Add(1)
				}
				return
			}
			if seg.Kind != relay.KindMedia || len(seg.Data) < 16 {
				continue
			}
			now := time.Now()
			idx := int(binary.BigEndian.Uint64(seg.Data))
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(seg.Data[8:])))
			if last >= 0 && idx != last+1 {
				g.gaps.Add(1)
			}
			last = idx
			if g.measured.Load() && idx >= int(windowFrom.Load()) && idx < int(windowTo.Load()) {
				g.got.Add(1)
				g.add(now.Sub(sent))
			}
		}
	}()
	return nil
}

// The measured window: segments with index in [windowFrom, windowTo).
var windowFrom, windowTo atomic.Int64

type result struct {
	Viewers            int
	Bitrate            float64
	SegmentMs          int64
	DurationS          float64
	Sent               uint64
	A, BC              groupResult
	AddedP50ms         float64
	AddedP99ms         float64
	NATSInMsgsPerS     float64
	NATSInBytesPerS    float64
	NATSOutMsgsPerS    float64
	NATSOutBytesPerS   float64
	CPUCores           map[string]float64
	BridgeA, BridgeB   natsrelay.Stats
	LoadAvg            string
	NATSMaxPayloadByte int64
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "stream: %.1f Mbit/s, a segment every %d ms, %d segments in %.0f s\n", r.Bitrate/1e6, r.SegmentMs, r.Sent, r.DurationS)
	for _, g := range []struct {
		name string
		r    groupResult
	}{{"A (publisher's node)", r.A}, {"B+C (across NATS)", r.BC}} {
		fmt.Fprintf(w, "%-22s viewers %d (dropped %d)  loss %.3f%%  gaps %d  latency p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
			g.name, g.r.Viewers, g.r.Dropped, g.r.LossPct, g.r.Gaps, g.r.P50ms, g.r.P99ms, g.r.MaxMs)
	}
	fmt.Fprintf(w, "added by the hop: p50 %+.1f ms, p99 %+.1f ms\n", r.AddedP50ms, r.AddedP99ms)
	fmt.Fprintf(w, "NATS server: in %.1f msg/s %.0f B/s, out %.1f msg/s %.0f B/s (max payload %d)\n",
		r.NATSInMsgsPerS, r.NATSInBytesPerS, r.NATSOutMsgsPerS, r.NATSOutBytesPerS, r.NATSMaxPayloadByte)
	fmt.Fprintf(w, "hub CPU (cores): A %.3f  B %.3f  C %.3f\n", r.CPUCores["A"], r.CPUCores["B"], r.CPUCores["C"])
	fmt.Fprintf(w, "bridge A: %+v\nbridge B: %+v\nload average: %s\n", r.BridgeA, r.BridgeB, r.LoadAvg)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func run(ctx context.Context, c *config) (*result, error) {
	var ns *server.Server
	natsURL := c.natsURL
	if natsURL == "" {
		dir, err := os.MkdirTemp("", "natsload")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
			StoreDir: dir, MaxPayload: int32(c.maxPayload), NoLog: true, NoSigs: true})
		if err != nil {
			return nil, err
		}
		ns.Start()
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		if !ns.ReadyForConnections(10 * time.Second) {
			return nil, errors.New("nats-server did not start")
		}
		natsURL = ns.ClientURL()
	}
	nodes := map[string]*node{}
	for _, name := range []string{"A", "B", "C"} {
		n, err := startNode(ctx, name, natsURL)
		if err != nil {
			return nil, err
		}
		defer n.stop()
		nodes[name] = n
	}

	vctx, stopViewers := context.WithCancel(ctx)
	defer stopViewers()
	var wg sync.WaitGroup
	defer wg.Wait()
	ga, gbc := &group{}, &group{}
	windowFrom.Store(1 << 62)
	sem := make(chan struct{}, 32)
	var dialErr atomic.Value
	var dwg sync.WaitGroup
	dial := func(url string, g *group) {
		sem <- struct{}{}
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			defer func() { <-sem }()
			if err := view(vctx, url, g, &wg); err != nil {
				dialErr.Store(err)
			}
		}()
	}
	for range c.local {
		dial(nodes["A"].url("subscribe"), ga)
	}
	for i := range c.n {
		dial(nodes[[]string{"B", "C"}[i%2]].url("subscribe"), gbc)
	}
	dwg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return nil, fmt.Errorf("a viewer: %w", err)
	}

	pub, err := relay.DialPublish(ctx, nodes["A"].url("publish"), relay.PublishStart{MIME: "video/webm", Mode: relay.ModeSegments}, nil)
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	if err := pub.SendSegment(ctx, relay.Segment{Kind: relay.KindInit, Data: []byte("init")}); err != nil {
		return nil, err
	}
	size := max(16, int(c.bitrate*c.segment.Seconds()/8))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	perSeg := c.segment
	warm := int64(c.warmup / perSeg)
	total := warm + int64(c.duration/perSeg)
	windowFrom.Store(warm)
	windowTo.Store(total)
	ga.measured.Store(true)
	gbc.measured.Store(true)
	var varz0 *server.Varz
	var cpu0 map[string]time.Duration
	var t0 time.Time
	res := &result{}
	tick := time.NewTicker(perSeg)
	defer tick.Stop()
	for i := int64(0); i < total+int64(time.Second/perSeg); i++ {
		if i == warm {
			t0 = time.Now()
			varz0 = varz(ns)
			cpu0 = cpus(nodes)
		}
		if i < total {
			binary.BigEndian.PutUint64(data, uint64(i))
			binary.BigEndian.PutUint64(data[8:], uint64(time.Now().UnixNano()))
			seg := relay.Segment{Kind: relay.KindMedia, Keyframe: i%int64(c.keyEvery) == 0, Data: append([]byte(nil), data...)}
			if err := pub.SendSegment(ctx, seg); err != nil {
				return nil, err
			}
		}
		if i == total-1 {
			el := time.Since(t0)
			res.DurationS = el.Seconds()
			if v := varz(ns); v != nil && varz0 != nil {
				res.NATSInMsgsPerS = float64(v.InMsgs-varz0.InMsgs) / el.Seconds()
				res.NATSInBytesPerS = float64(v.InBytes-varz0.InBytes) / el.Seconds()
				res.NATSOutMsgsPerS = float64(v.OutMsgs-varz0.OutMsgs) / el.Seconds()
				res.NATSOutBytesPerS = float64(v.OutBytes-varz0.OutBytes) / el.Seconds()
				res.NATSMaxPayloadByte = int64(v.MaxPayload)
			}
			res.CPUCores = map[string]float64{}
			for name, t := range cpus(nodes) {
				res.CPUCores[name] = (t - cpu0[name]).Seconds() / el.Seconds()
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	finish(res, c, ga, gbc, nodes) // after a second for the last segments to arrive
	stopViewers()
	return res, nil
}

func finish(res *result, c *config, ga, gbc *group, nodes map[string]*node) {
	sent := uint64(windowTo.Load() - windowFrom.Load())
	res.Viewers, res.Bitrate, res.SegmentMs, res.Sent = c.n, c.bitrate, c.segment.Milliseconds(), sent
	res.A, res.BC = ga.result(sent), gbc.result(sent)
	res.AddedP50ms, res.AddedP99ms = res.BC.P50ms-res.A.P50ms, res.BC.P99ms-res.A.P99ms
	res.BridgeA, res.BridgeB = nodes["A"].bridge(), nodes["B"].bridge()
	res.LoadAvg = loadAvg()
}

func varz(ns *server.Server) *server.Varz {
	if ns == nil {
		return nil
	}
	v, err := ns.Varz(nil)
	if err != nil {
		return nil
	}
	return v
}

func cpus(nodes map[string]*node) map[string]time.Duration {
	m := map[string]time.Duration{}
	for name, n := range nodes {
		m[name] = n.cpu()
	}
	return m
}
