package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// ---------------------------------------------------------------------------
// Browser harness: headless Chromium driven over CDP by chromedp.

// chromiumPath finds a Chromium binary: $SEGRELAY_CHROMIUM, or chromium,
// chromium-browser, google-chrome on $PATH.
func chromiumPath() string {
	if p := os.Getenv("SEGRELAY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needChromium returns the browser to use, or skips the test when there is
// none; with CI=true a missing browser fails the test instead.
func needChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	p := chromiumPath()
	if p == "" {
		const msg = "no Chromium found (chromium, chromium-browser or google-chrome on $PATH, or $SEGRELAY_CHROMIUM); on Debian: apt-get install -y chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the browser tests must run: " + msg)
		}
		t.Skip("skipping the browser tests: " + msg)
	}
	return p
}

// browser is one headless browser, with a fresh profile, for one test:
// Chromium driven over CDP (chromedp) or Firefox over WebDriver BiDi
// (firefox_test.go). Tests use both alike through open, eval, tryEval and
// waitPage.
type browser struct {
	t    *testing.T
	kind string          // "chromium" or "firefox"
	ctx  context.Context // Chromium: the first tab's context; pages are children
	ff   *firefox        // Firefox
}

// startBrowserKind starts a browser of the given kind ("chromium", "firefox").
func startBrowserKind(t *testing.T, kind string) *browser {
	t.Helper()
	if kind == "firefox" {
		return startFirefox(t)
	}
	return startBrowser(t)
}

func startBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	exe := needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(800, 600),
	)
	opts = append(opts, extra...)
	// No user-data-dir option: chromedp makes a fresh temporary profile per
	// browser and removes it when the browser is gone.
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		bcancel()
		acancel()
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Cleanup(func() {
		bcancel() // closes the browser and waits for it
		acancel() // waits for the allocator's goroutines
	})
	return &browser{t: t, kind: "chromium", ctx: bctx}
}

// page is one page, in a window of its own: a page in a background tab may
// never render its video.
type page struct {
	name    string
	ctx     context.Context // Chromium
	cancel  context.CancelFunc
	logDone chan struct{}
	ff      *firefox // Firefox
	bctx    string   // Firefox: its browsing context
	mu      sync.Mutex
	console []string
}

func (p *page) addConsole(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) < 200 {
		p.console = append(p.console, l)
	}
}

// dumpConsole logs the page's console lines if the test failed.
func (p *page) dumpConsole(t *testing.T) {
	if !t.Failed() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.console {
		t.Logf("%s console: %s", p.name, l)
	}
}

// open opens url in a new window and waits for it to load.
func (b *browser) open(t *testing.T, name, url string) *page {
	t.Helper()
	if b.ff != nil {
		return b.ff.open(t, name, url)
	}
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &page{name: name, ctx: ctx, cancel: cancel, logDone: make(chan struct{})}
	msgs := chromedp.Console(ctx) // creates the target; subscribes before the page runs
	go func() {
		defer close(p.logDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.addConsole(m.String())
		}
	}()
	t.Cleanup(func() {
		p.dumpConsole(t)
		p.close()
	})
	tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
	defer tcancel()
	require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(url)), "open %s", url)
	return p
}

func (p *page) close() {
	p.cancel() // closes the tab and waits
	<-p.logDone
}

// eval evaluates expr in the page (awaiting a promise) and decodes its value.
func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	v, err := tryEval[T](p, expr)
	require.NoError(t, err, "%s: %s", p.name, expr)
	return v
}

func tryEval[T any](p *page, expr string) (T, error) {
	if p.ff != nil {
		var v T
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		data, err := p.ff.evalJSON(ctx, p.bctx, expr)
		if err != nil {
			return v, err
		}
		err = json.Unmarshal(data, &v)
		return v, err
	}
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// ---------------------------------------------------------------------------
// The server: a hub under /live/ (which can be swapped for a new one, as if
// the server restarted) and the test pages of testdata/browser.

type browserEnv struct {
	t    *testing.T
	srv  *httptest.Server
	opts []relay.Option // of every hub, the restarted ones too
	mu   sync.Mutex
	hub  *relay.Hub
}

func newBrowserEnv(t *testing.T, pages string, opts ...relay.Option) *browserEnv {
	t.Helper()
	e := &browserEnv{t: t, opts: opts, hub: relay.NewHub(opts...)}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.currentHub().ServeHTTP(w, r)
	})))
	if js := os.Getenv("SEGRELAY_RELAYJS"); js != "" {
		// Another relay.js for the pages (an earlier revision's, say): what
		// TestBrowserPlayerVsControl must tell apart.
		mux.HandleFunc("/live/relay.js", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, js)
		})
	}
	mux.Handle("/", http.FileServer(http.Dir(pages)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.currentHub().Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

func (e *browserEnv) currentHub() *relay.Hub {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hub
}

// restartHub shuts the hub down (every connection closes with 1001) and
// puts a new, empty one in its place on the same address.
func (e *browserEnv) restartHub() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := e.currentHub()
	if err := old.Shutdown(ctx); err != nil {
		e.t.Errorf("hub shutdown: %v", err)
	}
	e.mu.Lock()
	e.hub = relay.NewHub(e.opts...)
	e.mu.Unlock()
}

func (e *browserEnv) pageURL(path string) string { return e.srv.URL + "/" + path }

// waitPage polls cond (a JavaScript expression) until it is true.
func waitPage(t *testing.T, p *page, what, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tryEval[bool](p, "!!("+cond+")")
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out after %v waiting for %s (%s; last error: %v)", p.name, timeout, what, cond, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func unixMs(t time.Time) int64 { return t.UnixMilli() }

// envDuration reads a duration from the environment (for shorter local
// runs), or returns def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// ---------------------------------------------------------------------------
// What a viewer page reports (testdata/browser/clock.js FrameProbe).

type viewerReport struct {
	JoinAt       int64          `json:"joinAt"`
	Status       string         `json:"status"`
	Stats        map[string]int `json:"stats"`
	Src          string         `json:"src"`
	Frames       []float64      `json:"frames"` // flat: Date.now() when shown, stamp drawn in it (-1: unreadable), black (1)
	Events       [][]any        `json:"events"` // [t, type, detail]
	FirstFrameAt int64          `json:"firstFrameAt"`
	Files        [][]float64    `json:"files"`   // legacy viewer: [t, bytes] per file
	Latency      []float64      `json:"latency"` // flat: t, player's latency estimate, target, playbackRate (once a second)
}

type frame struct {
	t, stamp int64
	black    bool
}

func (r *viewerReport) frames(from, to int64) []frame {
	var out []frame
	for i := 0; i+2 < len(r.Frames); i += 3 {
		f := frame{int64(r.Frames[i]), int64(r.Frames[i+1]), r.Frames[i+2] == 1}
		if f.t >= from && f.t < to {
			out = append(out, f)
		}
	}
	return out
}

// latencies returns the glass-to-glass latency (ms) of the frames shown in
// [from, to) whose clock could be read.
func (r *viewerReport) latencies(from, to int64) []float64 {
	var out []float64
	for _, f := range r.frames(from, to) {
		if f.stamp > 0 {
			out = append(out, float64(f.t-f.stamp))
		}
	}
	return out
}

// count returns how many events of type typ happened in [from, to).
func (r *viewerReport) count(typ string, from, to int64) int {
	n := 0
	for _, ev := range r.Events {
		if len(ev) >= 2 && ev[1] == typ {
			if t := int64(ev[0].(float64)); t >= from && t < to {
				n++
			}
		}
	}
	return n
}

// longestFreeze returns the longest time (ms) between two frames shown in
// [from, to), counting from `from` to the first frame too.
func (r *viewerReport) longestFreeze(from, to int64) int64 {
	prev, longest := from, int64(0)
	for _, f := range r.frames(from, to) {
		longest = max(longest, f.t-prev)
		prev = f.t
	}
	return max(longest, to-prev)
}

// blackFrames counts frames shown in [from, to) that were black after the
// viewer's first picture: a flash. Before the first picture the element
// shows black anyway, so a black frame presented as playback starts is not
// a flash. (A Firefox late joiner showed one black frame once, in CI under
// load, at a time the test did not record; blackAt now says.)
func (r *viewerReport) blackFrames(from, to int64) int {
	return len(r.black(from, to))
}

// black returns the frames of blackFrames.
func (r *viewerReport) black(from, to int64) []frame {
	var out []frame
	pictured := false
	for _, f := range r.frames(0, to) {
		pictured = pictured || !f.black
		if f.black && pictured && f.t >= from {
			out = append(out, f)
		}
	}
	return out
}

// blackAt says where the black frames of blackFrames were: their time
// after the viewer's first frame.
func (r *viewerReport) blackAt(from, to int64) string {
	all := r.frames(0, to)
	var out []string
	for _, f := range r.black(from, to) {
		out = append(out, fmt.Sprintf("+%d ms", f.t-all[0].t))
	}
	return strings.Join(out, ", ")
}

// liveAgain returns when (ms after since) the viewer first showed a frame
// drawn at or after since, or -1 if it did not.
func (r *viewerReport) liveAgain(since int64) int64 {
	for _, f := range r.frames(since, 1<<62) {
		if f.stamp >= since {
			return f.t - since
		}
	}
	return -1
}

// stallTimes returns the durations (ms) of "waiting" episodes in [from, to):
// from a waiting event to the next frame shown.
func (r *viewerReport) stallTimes(from, to int64) []int64 {
	var out []int64
	fr := r.frames(from, 1<<62)
	for _, ev := range r.Events {
		if len(ev) < 2 || ev[1] != "waiting" {
			continue
		}
		t := int64(ev[0].(float64))
		if t < from || t >= to {
			continue
		}
		end := to
		for _, f := range fr {
			if f.t > t {
				end = f.t
				break
			}
		}
		out = append(out, end-t)
	}
	return out
}

type quantiles struct {
	n             int
	p50, p95, max float64
}

func summarize(v []float64) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return quantiles{len(s), q(0.5), q(0.95), s[len(s)-1]}
}

func secs(ms float64) string { return fmt.Sprintf("%.2f s", ms/1000) }

// figures is the table TestBrowser prints (and the README quotes).
type figures struct {
	mu   sync.Mutex
	rows [][3]string        // figure, target, measured
	ms   map[string]float64 // promised figures, for checkPromises (promises_test.go)

	before machineSample // when the pair began (promises_test.go)

	// issueTargets: the pair has Firefox in it; its table shows the
	// targets of issue 15 (a stall or two, a late joiner within 1 s)
	// rather than Chromium → Chromium's.
	issueTargets bool
}

// target returns the target for the Chromium pair or, with Firefox, issue 15's.
func (f *figures) target(chromium, firefox string) string {
	if f.issueTargets {
		return firefox
	}
	return chromium
}

func (f *figures) add(figure, target, measured string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, [3]string{figure, target, measured})
}

func (f *figures) table() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := [3]int{len("figure"), len("target"), len("measured")}
	for _, r := range f.rows {
		for i := range r {
			w[i] = max(w[i], len([]rune(r[i])))
		}
	}
	var b strings.Builder
	line := func(r [3]string) {
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", w[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line([3]string{"figure", "target", "measured"})
	line([3]string{strings.Repeat("-", w[0]), strings.Repeat("-", w[1]), strings.Repeat("-", w[2])})
	for _, r := range f.rows {
		line(r)
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// The end-to-end tests.

// TestBrowser drives headless browsers against a relay.Hub on loopback, for
// each pair publisher → viewers of Chromium and Firefox, one pair after
// another (TestBrowser/chromium-firefox/live: a Chromium publisher, Firefox
// viewers):
//
//   - live: a canvas-clock publisher (relay.js publish, default options, or
//     SEGRELAY_BROWSER_PUBLISH_OPTS as JSON) and three relay.js viewers, one
//     joining 5 s late; a steady window (60 s for Chromium → Chromium, 30 s
//     for the pairs with Firefox; SEGRELAY_BROWSER_STEADY changes both,
//     SEGRELAY_BROWSER_STEADY_FIREFOX the latter alone) measures
//     glass-to-glass latency, stalls and flashes; then the publisher
//     restarts its recorder, then the hub restarts, and the viewers must
//     play on;
//   - legacy: a legacy-framing publisher page (standalone 5 s files in
//     5120-byte chunks) watched by a legacy viewer page and by relay.js. It
//     runs alongside the restarts, after the steady window, so that it does
//     not disturb the figures.
//
// Both browsers run on the machine's one clock, so a frame drawn in one and
// shown in the other is timed as in one browser. Each pair prints its
// figures table, and TestBrowser a summary of the pairs (go test -run
// TestBrowser -v).
func TestBrowser(t *testing.T) {
	var mu sync.Mutex
	var summary []*pairSummary
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(summary) > 0 {
			t.Logf("pairs (publisher → viewers; load average %v at the end):\n%s", loadAvg(), pairTable(summary))
		}
	})
	for _, pair := range [][2]string{{"chromium", "chromium"}, {"chromium", "firefox"}, {"firefox", "chromium"}, {"firefox", "firefox"}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			sum := testBrowserPair(t, pair[0], pair[1])
			mu.Lock()
			summary = append(summary, sum)
			mu.Unlock()
		})
	}
}

// pairSummary is one row of TestBrowser's summary.
type pairSummary struct {
	pair                                  string
	steady                                time.Duration
	p50, p95, lateFirst, freeze, stallMax float64 // ms; -1: not measured
	stalls, waits                         int
	fps                                   float64
	ok                                    bool
}

func pairTable(rows []*pairSummary) string {
	var b strings.Builder
	b.WriteString("| pair | steady | g2g p50 | g2g p95 | waiting (≥ 0.5 s) | longest stall | longest freeze | fps shown (min viewer) | late joiner 1st frame | passed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	ms := func(v float64) string {
		if v < 0 {
			return "-"
		}
		return secs(v)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %v | %s | %s | %d (%d) | %s | %s | %.1f | %s | %v |\n",
			r.pair, r.steady, ms(r.p50), ms(r.p95), r.waits, r.stalls, ms(r.stallMax), ms(r.freeze), r.fps, ms(r.lateFirst), r.ok)
	}
	return b.String()
}

// testBrowserPair runs the live and legacy scenarios with the publishers in
// pubKind's browser and the viewers in viewKind's.
func testBrowserPair(t *testing.T, pubKind, viewKind string) *pairSummary {
	pubB := startBrowserKind(t, pubKind)
	viewB := pubB
	if viewKind != pubKind {
		viewB = startBrowserKind(t, viewKind)
	}
	steady := envDuration(t, "SEGRELAY_BROWSER_STEADY", 60*time.Second)
	withFirefox := pubKind == "firefox" || viewKind == "firefox"
	if withFirefox {
		steady = envDuration(t, "SEGRELAY_BROWSER_STEADY_FIREFOX", envDuration(t, "SEGRELAY_BROWSER_STEADY", 30*time.Second))
	}
	figs := &figures{before: sampleMachine(), issueTargets: withFirefox}
	sum := &pairSummary{pair: pubKind + " → " + viewKind, steady: steady, p50: -1, p95: -1, lateFirst: -1, freeze: -1, stallMax: -1}
	t.Cleanup(func() {
		sum.ok = !t.Failed()
		t.Logf("figures, %s → %s (steady window %v; load average %v):\n%s", pubKind, viewKind, steady, loadAvg(), figs.table())
		if !withFirefox {
			checkPromises(t, figs, steady)
		}
	})
	steadyDone := make(chan struct{})
	var once sync.Once
	steadyOver := func() { once.Do(func() { close(steadyDone) }) }

	liveRuns := false
	t.Run("live", func(t *testing.T) {
		liveRuns = true // before t.Parallel: t.Run has not returned yet
		t.Parallel()
		defer steadyOver() // also when it fails early
		testBrowserLive(t, pubB, viewB, steady, figs, steadyOver, sum)
	})
	if !liveRuns { // -run TestBrowser/.../legacy
		steadyOver()
	}
	t.Run("legacy", func(t *testing.T) {
		t.Parallel()
		<-steadyDone
		testBrowserLegacy(t, pubB, viewB, figs)
	})
	return sum
}

func testBrowserLive(t *testing.T, pubB, viewB *browser, steady time.Duration, figs *figures, steadyOver func(), sum *pairSummary) {
	e := newBrowserEnv(t, "testdata/browser")
	// Known, not solved: Firefox viewers of Chromium's VP9 sometimes get a
	// decode error (MediaError 3), all of them at once, in the steady window
	// or right after the recorder restarts, and the player starts over with
	// a new MediaSource (one flash). Seen in 3 of 8 runs of this pair under
	// load, not reproduced alone; see docs/browser-facts.md. One such
	// start-over per viewer in the whole test is tolerated and reported;
	// two fail.
	knownStartOvers := 0
	if pubB.kind == "chromium" && viewB.kind == "firefox" {
		knownStartOvers = 1
	}
	pubURL := "publish.html?stream=clock"
	if o := os.Getenv("SEGRELAY_BROWSER_PUBLISH_OPTS"); o != "" { // e.g. {"mimeType":"video/webm;codecs=vp8","timeslice":100}
		pubURL += "&opts=" + url.QueryEscape(o)
	}
	if os.Getenv("SEGRELAY_BROWSER_MIC") != "" { // the clock with the fake microphone: video + Opus
		pubURL += "&mic"
	}
	pub := pubB.open(t, "publisher", e.pageURL(pubURL))
	waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
	mime := eval[string](t, pub, "pub.mimeType")
	encoder := eval[string](t, pub, "pub.encoder")
	keyframes := countKeyframes(t, e.currentHub(), "clock")

	names := []string{"viewer1", "viewer2", "late-viewer"}
	viewers := make([]*page, 3)
	viewers[0] = viewB.open(t, names[0], e.pageURL("watch.html?stream=clock"))
	viewers[1] = viewB.open(t, names[1], e.pageURL("watch.html?stream=clock"))
	t0 := time.Now()
	sleepUntil(t0.Add(5 * time.Second))
	viewers[2] = viewB.open(t, names[2], e.pageURL("watch.html?stream=clock"))
	from := unixMs(t0.Add(3 * time.Second)) // warm-up: start-up and first catch-up
	sleepUntil(t0.Add(3*time.Second + steady))
	to := unixMs(time.Now())

	if os.Getenv("SEGRELAY_BROWSER_DEBUG") != "" {
		for i, v := range viewers {
			t.Logf("%s gaps: %v", names[i], eval[[]float64](t, v, "player._ctl._gaps.map(g => Math.round(g[1]*1000))"))
		}
		t.Logf("publisher: %v", eval[any](t, pub, "report().stats"))
	}
	reports := make([]viewerReport, 3)
	for i, v := range viewers {
		reports[i] = eval[viewerReport](t, v, "report()")
	}
	steadyOver() // the legacy test may start: the steady figures are in

	// Steady state: latency, stalls, flashes.
	var all []float64
	waits, stalls, longestStall, longestFreeze, flashes := 0, 0, int64(0), int64(0), 0
	minFPS := -1.0
	for i, r := range reports {
		wfrom := from
		if i == 2 {
			wfrom = r.JoinAt + 3000
		}
		lat := r.latencies(wfrom, to)
		all = append(all, lat...)
		q := summarize(lat)
		st := r.stallTimes(wfrom, to)
		longest := int64(0)
		for _, d := range st {
			longest = max(longest, d)
			if d >= 500 {
				stalls++
			}
		}
		longestStall = max(longestStall, longest)
		waits += len(st)
		fz := r.longestFreeze(wfrom, to)
		longestFreeze = max(longestFreeze, fz)
		fl := r.count("emptied", 0, to) + r.blackFrames(0, to) + max(0, r.count("loadstart", 0, to)-1)
		flashes += fl
		fps := float64(len(r.frames(wfrom, to))) / (float64(to-wfrom) / 1000)
		if minFPS < 0 || fps < minFPS {
			minFPS = fps
		}
		t.Logf("%s: %d frames read over %.0f s (%.1f fps shown): glass-to-glass p50 %s p95 %s max %s; waiting %d (longest %d ms); longest freeze %d ms; flashes %d; player %s %v",
			names[i], q.n, float64(to-wfrom)/1000, fps, secs(q.p50), secs(q.p95), secs(q.max), len(st), longest, fz, fl, r.Status, r.Stats)
		if os.Getenv("SEGRELAY_BROWSER_DEBUG") != "" {
			for _, ev := range r.Events {
				if ts := int64(ev[0].(float64)); ts >= wfrom-3000 && ts < to {
					t.Logf("  %s %+6d ms %v %v", names[i], ts-wfrom, ev[1], ev[2])
				}
			}
			for k := 0; k+3 < len(r.Latency); k += 4 {
				if ts := int64(r.Latency[k]); ts >= wfrom-3000 && ts < wfrom+12000 {
					t.Logf("  %s %+6d ms latency %.3f target %.3f rate %.2f", names[i], ts-wfrom, r.Latency[k+1], r.Latency[k+2], r.Latency[k+3])
				}
			}
			fr := r.frames(wfrom, to)
			for k := 1; k < len(fr); k++ {
				if d := fr[k].t - fr[k-1].t; d > 150 {
					t.Logf("  %s %+6d ms frame gap %d ms", names[i], fr[k-1].t-wfrom, d)
				}
			}
		}
		// assert, not require: the figures below are worth having when a
		// viewer fails.
		assert.Greater(t, q.n, int(float64(to-wfrom)/1000*5), "%s: too few frames shown with a readable clock (want 5 fps at least)", names[i])
		if n := r.count("emptied", 0, to); n > 0 && n <= knownStartOvers {
			t.Logf("%s: started over with a new MediaSource %d time(s) in the steady window (known: a Firefox decode error on Chromium's VP9)", names[i], n)
		}
		assert.LessOrEqual(t, r.count("emptied", 0, to), knownStartOvers, "%s: the video element was emptied (a flash)", names[i])
		assert.LessOrEqual(t, r.count("loadstart", 0, to), 1+knownStartOvers, "%s: the video source changed (a flash)", names[i])
		assert.Equal(t, 0, r.blackFrames(0, to), "%s: black frames shown: %s", names[i], r.blackAt(0, to))
	}
	q := summarize(all)
	window := fmt.Sprintf("%.0f s", float64(to-from)/1000)
	figs.add("publisher MediaRecorder type", "", mime)
	figs.add("publisher encoder", "", encoder)
	kf := keyframes()
	figs.add("keyframes at the hub, steady", "one per 4 s at least", fmt.Sprintf("%d in %.0f s", kf, float64(to-from)/1000))
	// Late joiners start at a keyframe, and a viewer that lost a frame
	// waits for the next: Firefox's MediaRecorder makes one every 6-7 s,
	// which is why relay.js records with WebCodecs there.
	assert.GreaterOrEqual(t, float64(kf), float64(to-from)/1000/4, "keyframes at the hub in the steady window (encoder %s)", encoder)
	figs.add("glass-to-glass p50, 3 viewers, "+window+" steady", "≤ 0.6 s", secs(q.p50))
	figs.add("glass-to-glass p95", "≤ 1 s", secs(q.p95))
	figs.add("glass-to-glass max", "", secs(q.max))
	late := reports[2]
	firstFrame := late.FirstFrameAt - late.JoinAt
	figs.add("late joiner (5 s): first frame after joining", figs.target("≤ 0.5 s", "≤ 1 s"), secs(float64(firstFrame)))
	figs.measure("p50", q.p50)
	figs.measure("p95", q.p95)
	figs.measure("lateJoinFirstFrame", float64(firstFrame))
	lateLat := summarize(late.latencies(late.JoinAt, late.JoinAt+3000))
	figs.add("late joiner: glass-to-glass p50 in its first 3 s", "", secs(lateLat.p50))
	figs.add("flashes (emptied, src changes, black frames)", "0", fmt.Sprint(flashes))
	figs.add("stalls over "+window+" steady, 3 viewers (waiting ≥ 0.5 s)", figs.target("0", "0 (none > 0.5 s)"), fmt.Sprint(stalls))
	figs.add("  all 'waiting' events in that window", figs.target("", "≤ 1 per viewer"), fmt.Sprintf("%d (longest %d ms)", waits, longestStall))
	figs.add("longest freeze between frames, steady", "< 0.5 s", secs(float64(longestFreeze)))
	figs.add("frames shown per second, steady (slowest viewer)", "", fmt.Sprintf("%.1f", minFPS))
	sum.p50, sum.p95, sum.lateFirst, sum.freeze = q.p50, q.p95, float64(firstFrame), float64(longestFreeze)
	sum.stalls, sum.waits, sum.stallMax, sum.fps = stalls, waits, float64(longestStall), minFPS

	require.Greater(t, firstFrame, int64(0), "the late joiner showed no frame")
	// Generous bounds: they catch a player seconds behind, not a busy
	// machine (the targets are 0.6 s and 1 s; the figures say how close).
	assert.LessOrEqual(t, q.p50, 2500.0, "glass-to-glass p50")
	assert.LessOrEqual(t, q.p95, 4000.0, "glass-to-glass p95")
	assert.LessOrEqual(t, firstFrame, int64(2000), "late joiner's first frame")
	assert.LessOrEqual(t, longestStall, int64(2000), "a steady-state stall")
	assert.LessOrEqual(t, longestFreeze, int64(2000), "a steady-state freeze")

	// The publisher restarts its recorder (a new init mid-session): viewers
	// keep playing, with no flash, and show the new recorder's frames soon.
	restartAt := time.Now()
	eval[any](t, pub, "restartRecorder().then(() => true)")
	if os.Getenv("SEGRELAY_BROWSER_DEBUG") != "" {
		time.Sleep(3 * time.Second)
		t.Logf("publisher around the restart: %s", eval[string](t, pub, fmt.Sprintf(`JSON.stringify(report().events.filter(e => e[0] > %d).map(e => [e[0] - %d, e[1], e[2]]))`, unixMs(restartAt)-1000, unixMs(restartAt))))
	}
	sleepUntil(restartAt.Add(6 * time.Second))
	var newRecAt int64
	pr := eval[struct {
		Events [][]any `json:"events"`
	}](t, pub, "report()")
	for _, ev := range pr.Events {
		if ev[1] == "restart" {
			newRecAt = int64(ev[0].(float64))
		}
	}
	require.NotZero(t, newRecAt, "the publisher did not restart its recorder")
	figs.measure("recoveryRecorder", checkRecovery(t, figs, "publisher recorder restart", viewers, names, unixMs(restartAt), newRecAt, knownStartOvers))

	// The hub restarts: every connection drops; publisher and viewers
	// reconnect by themselves to the new hub on the same address.
	hubAt := time.Now()
	e.restartHub()
	sleepUntil(hubAt.Add(8 * time.Second))
	figs.measure("recoveryHubRestart", checkRecovery(t, figs, "hub restart (dropped connections)", viewers, names, unixMs(hubAt), unixMs(hubAt), knownStartOvers))
	waitPage(t, pub, "the publisher to be live again", `pub.status === "live" && pub.stats.reconnects >= 1`, 5*time.Second)
}

// checkRecovery checks that every viewer played on after a disruption at
// `at`: no flash, and a frame drawn at or after `since` shown soon. It
// returns the worst viewer's time to play again, in ms.
func checkRecovery(t *testing.T, figs *figures, what string, viewers []*page, names []string, at, since int64, knownStartOvers int) float64 {
	t.Helper()
	var worstAgain, worstFreeze int64
	startOvers := 0
	for i, v := range viewers {
		r := eval[viewerReport](t, v, "report()")
		now := unixMs(time.Now())
		again := r.liveAgain(since)
		if again >= 0 {
			again += since - at
		}
		// The freeze the disruption caused: from just before it until the
		// viewer is live again (later ones, if any, are the machine's).
		freeze := r.longestFreeze(at-500, at+max(again, 0)+500)
		t.Logf("%s after %s: live again after %d ms, longest freeze around it %d ms (%d ms in the %d s after), waiting %d, player %s %v",
			names[i], what, again, freeze, r.longestFreeze(at-500, now), (now-at)/1000, r.count("waiting", at, now), r.Status, r.Stats)
		if os.Getenv("SEGRELAY_BROWSER_DEBUG") != "" {
			for _, ev := range r.Events {
				if ts := int64(ev[0].(float64)); ts >= at-1000 && ts < at+4000 {
					t.Logf("  %s %+6d ms %v %v", names[i], ts-at, ev[1], ev[2])
				}
			}
			fr := r.frames(at-1000, at+4000)
			for k := 1; k < len(fr); k++ {
				if d := fr[k].t - fr[k-1].t; d > 100 {
					t.Logf("  %s %+6d ms frame gap %d ms (stamp %+d after)", names[i], fr[k-1].t-at, d, fr[k].stamp-at)
				}
			}
		}
		require.GreaterOrEqual(t, again, int64(0), "%s: no new frame shown after the %s", names[i], what)
		assert.LessOrEqual(t, again, int64(6000), "%s: playing again after the %s", names[i], what)
		emptied := r.count("emptied", 0, now)
		if emptied > 0 && emptied <= knownStartOvers {
			t.Logf("%s: started over with a new MediaSource %d time(s) by the %s (known: a Firefox decode error after Chromium's recorder restarts)", names[i], emptied, what)
			startOvers++
		}
		assert.LessOrEqual(t, emptied, knownStartOvers, "%s: emptied after the %s", names[i], what)
		assert.LessOrEqual(t, r.count("loadstart", 0, now), 1+knownStartOvers, "%s: src changed after the %s", names[i], what)
		assert.Equal(t, 0, r.blackFrames(at, now), "%s: black frames after the %s", names[i], what)
		worstAgain = max(worstAgain, again)
		worstFreeze = max(worstFreeze, freeze)
	}
	figs.add("playing again after "+what+" (worst viewer)", "≤ 2 s", fmt.Sprintf("%s (longest freeze %s)", secs(float64(worstAgain)), secs(float64(worstFreeze))))
	if knownStartOvers > 0 {
		figs.add("  viewers that started over (known Firefox decode error)", "0", fmt.Sprint(startOvers))
	}
	return float64(worstAgain)
}

// testBrowserLegacy: a legacy-framing publisher page, watched by a legacy
// viewer page and by relay.js, on a hub of its own.
func testBrowserLegacy(t *testing.T, pubB, viewB *browser, figs *figures) {
	e := newBrowserEnv(t, "testdata/browser")
	pub := pubB.open(t, "legacy-publisher", e.pageURL("legacy-publish.html?stream=legacy"))
	legacy := viewB.open(t, "legacy-viewer", e.pageURL("legacy-watch.html?stream=legacy"))
	modern := viewB.open(t, "relayjs-on-legacy", e.pageURL("watch.html?stream=legacy"))
	start := time.Now()
	waitPage(t, pub, "the legacy publisher to send 3 files", `report().sent.length >= 3`, 30*time.Second)
	sleepUntil(time.Now().Add(2 * time.Second))
	// A viewer that fell behind (Chromium plays Firefox's MediaRecorder VP8
	// slower than real time, and the machine may be busy) gets up to 20 s
	// more to show frames of a second file; a player stuck on one file
	// does not get there.
	const span = `(() => { const f = report().frames; let lo = 0, hi = 0; for (let i = 0; i + 2 < f.length; i += 3) { const s = f[i + 1]; if (s > 0) { if (!lo || s < lo) lo = s; hi = Math.max(hi, s); } } return hi - lo > 5000; })()`
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		l, _ := tryEval[bool](legacy, span)
		m, _ := tryEval[bool](modern, span)
		if l && m {
			break
		}
	}
	now := unixMs(time.Now())
	from := unixMs(start.Add(6 * time.Second)) // after the first file arrived

	lr := eval[viewerReport](t, legacy, "report()")
	mr := eval[viewerReport](t, modern, "report()")
	ll := summarize(lr.latencies(from, now))
	ml := summarize(mr.latencies(from, now))
	stamps := func(r viewerReport) (lo, hi int64) {
		for _, f := range r.frames(0, now) {
			if f.stamp > 0 {
				if lo == 0 || f.stamp < lo {
					lo = f.stamp
				}
				hi = max(hi, f.stamp)
			}
		}
		return
	}
	llo, lhi := stamps(lr)
	mlo, mhi := stamps(mr)
	t.Logf("legacy viewer: %d files, %d frames read, latency p50 %s, clock span %d ms, loadstart %d, emptied %d",
		len(lr.Files), ll.n, secs(ll.p50), lhi-llo, lr.count("loadstart", 0, now), lr.count("emptied", 0, now))
	t.Logf("relay.js on legacy: %d frames read, latency p50 %s, clock span %d ms, waiting %d, longest freeze %d ms, player %s %v",
		ml.n, secs(ml.p50), mhi-mlo, mr.count("waiting", from, now), mr.longestFreeze(from, now), mr.Status, mr.Stats)

	if os.Getenv("SEGRELAY_BROWSER_DEBUG") != "" {
		t0 := unixMs(start)
		for _, ev := range mr.Events {
			t.Logf("  relay.js on legacy %+6d ms %v %v", int64(ev[0].(float64))-t0, ev[1], ev[2])
		}
		fr := mr.frames(0, now)
		for k := 1; k < len(fr); k++ {
			if d := fr[k].t - fr[k-1].t; d > 150 {
				t.Logf("  relay.js on legacy %+6d ms frame gap %d ms", fr[k-1].t-t0, d)
			}
		}
		for k := 0; k+3 < len(mr.Latency); k += 4 {
			t.Logf("  relay.js on legacy %+6d ms latency %.3f target %.3f rate %.2f", int64(mr.Latency[k])-t0, mr.Latency[k+1], mr.Latency[k+2], mr.Latency[k+3])
		}
		t.Logf("publisher files: %v", eval[any](t, pub, "report().sent.map(s => [s[0] - "+fmt.Sprint(t0)+", s[1]])"))
		t.Logf("relay.js on legacy gaps: %v burst %v join %v", eval[any](t, modern, "player._ctl._gaps.map(g => [Math.round(performance.timeOrigin + g[0]) - "+fmt.Sprint(t0)+", g[1]])"), eval[any](t, modern, "player._ctl._burst"), eval[any](t, modern, "player._ctl._joinBurst"))
	}
	require.GreaterOrEqual(t, len(lr.Files), 2, "the legacy viewer received fewer than 2 files")
	require.Greater(t, ll.n, 20, "the legacy viewer showed too few frames")
	assert.Greater(t, lhi-llo, int64(5000), "the legacy viewer played only one file")
	// Chromium decodes Firefox's MediaRecorder VP8 slower than real time
	// (docs/browser-facts.md), the more so on a starved machine: 20 frames
	// at load 13. For that pair, playing across files is what is asserted.
	minFrames := 20
	if pubB.kind == "firefox" && viewB.kind == "chromium" {
		minFrames = 5
	}
	require.Greater(t, ml.n, minFrames, "relay.js showed too few frames of the legacy stream")
	assert.Greater(t, mhi-mlo, int64(5000), "relay.js played only one file of the legacy stream")
	assert.Equal(t, 0, mr.count("emptied", 0, now), "relay.js emptied the video on a legacy stream")
	assert.Equal(t, 1, mr.count("loadstart", 0, now), "relay.js changed the source on a legacy stream")

	figs.add("legacy publisher → legacy viewer (src swap per file)", "plays", fmt.Sprintf("%d files, latency p50 %s, %d src swaps", len(lr.Files), secs(ll.p50), lr.count("loadstart", 0, now)))
	figs.add("legacy publisher → relay.js viewer", "plays", fmt.Sprintf("latency p50 %s, 0 src swaps, longest freeze %s", secs(ml.p50), secs(float64(mr.longestFreeze(from, now)))))
}

// TestBrowserExamplePages runs the example's publisher page (fake camera
// and microphone: VP9 + Opus) and viewer page the way a person would: click
// Start on one, open the other, and see it play. With
// SEGRELAY_SCREENSHOTS=DIR it saves screenshots of both pages there.
func TestBrowserExamplePages(t *testing.T) {
	b := startBrowser(t, chromedp.WindowSize(820, 720)) // room for the whole page in a screenshot
	e := newBrowserEnv(t, "../examples/minimal/app/pages")
	pub := b.open(t, "example-publish", e.pageURL("publish.html?stream=demo"))
	ctx, cancel := context.WithTimeout(pub.ctx, 15*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("start"))))
	waitPage(t, pub, "the example publisher to be live", `segrelayPublisher() && segrelayPublisher().status === "live"`, 15*time.Second)

	watch := b.open(t, "example-watch", e.pageURL("watch.html?stream=demo"))
	waitPage(t, watch, "the example viewer to play", `segrelayPlayer().status === "live" && document.getElementById("video").currentTime > 2`, 20*time.Second)
	waitPage(t, pub, "the publisher page to show the viewer", `document.getElementById("text").textContent.includes("1 viewer")`, 10*time.Second)
	waitPage(t, watch, "the viewer page to show the latency", `/^live · latency \d/.test(document.getElementById("text").textContent)`, 10*time.Second)
	t.Logf("publisher page: %q", eval[string](t, pub, `document.getElementById("text").textContent`))
	t.Logf("viewer page: %q", eval[string](t, watch, `document.getElementById("text").textContent`))
	require.Contains(t, eval[string](t, pub, "segrelayPublisher().mimeType"), "opus", "the example publishes the microphone too")

	if dir := os.Getenv("SEGRELAY_SCREENSHOTS"); dir != "" {
		for name, p := range map[string]*page{"example-publish.png": pub, "example-watch.png": watch} {
			// Headless Chromium composites an idle window only on demand: the
			// first capture can show a video frame seconds old, so take one
			// to wake it up, then the real one. (Not FullScreenshot: its
			// re-layout shows a stale video frame too.)
			ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
			_, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			require.NoError(t, err)
			time.Sleep(500 * time.Millisecond)
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			cancel()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(dir+"/"+name, png, 0o644))
		}
	}

	// Stop: the viewer keeps its last picture and waits for the next publisher.
	ctx, cancel = context.WithTimeout(pub.ctx, 15*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("stop"))))
	waitPage(t, watch, "the viewer page to show the publisher left", `document.getElementById("text").textContent === "waiting for the publisher"`, 10*time.Second)
	// Start again with the screen and no microphone (getDisplayMedia; the
	// viewer's tracks change, so its player needs a new MediaSource).
	eval[bool](t, pub, `document.getElementById("source").value = "screen", document.getElementById("mic").checked = false, true`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("start"))))
	waitPage(t, pub, "the screen publisher to be live", `segrelayPublisher() && segrelayPublisher().status === "live"`, 15*time.Second)
	assert.Equal(t, "video/webm;codecs=vp9", eval[string](t, pub, "segrelayPublisher().mimeType"))
	waitPage(t, watch, "the viewer to play the next session", `segrelayPlayer().stats.sessions === 2 && segrelayPlayer().status === "live" && document.getElementById("video").currentTime > 1`, 20*time.Second)
	t.Logf("viewer page after the switch to the screen: %q, player %v", eval[string](t, watch, `document.getElementById("text").textContent`), eval[map[string]int](t, watch, "segrelayPlayer().stats"))
}

// TestBrowserPlayerSessions feeds one relay.js viewer a series of publisher
// sessions from Go: a type the browser cannot play (a clear error, then it
// waits), then the real MediaRecorder recordings of ../testdata/recordings one
// after another (VP8; VP9 + Opus, which needs a new MediaSource because the
// tracks change; VP9 with alpha in BlockGroups), each played in turn.
func TestBrowserPlayerSessions(t *testing.T) {
	b := startBrowser(t)
	e := newBrowserEnv(t, "testdata/browser")
	recs := map[string]webmtest.Recording{}
	for _, r := range webmtest.LoadRecordings(t, "../testdata/recordings") {
		recs[r.Name] = r
	}
	v := b.open(t, "viewer", e.pageURL("watch.html?stream=rec"))
	waitPage(t, v, "the viewer to connect", `player.status === "waiting"`, 10*time.Second)
	wsURL := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/live/rec/publish"
	// Not testCtx's 20 s: the sessions alone are 16 s of paced sending, and
	// a busy machine makes the whole test last a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A type this browser cannot play: an error that says so, and the
	// player waits for the next session.
	p, err := relay.DialPublish(ctx, wsURL, relay.PublishStart{MIME: "video/x-segrelay-unplayable", Mode: relay.ModeSegments}, nil)
	require.NoError(t, err)
	require.NoError(t, p.SendSegment(ctx, relay.Segment{Kind: relay.KindInit, Data: []byte("not media")}))
	waitPage(t, v, "the player to report the unplayable type", `player.status === "error"`, 10*time.Second)
	msg := eval[string](t, v, `report().events.filter(e => e[1] === "player-error").map(e => e[2]).join("; ")`)
	assert.Contains(t, msg, `cannot play "video/x-segrelay-unplayable"`)
	require.NoError(t, p.Close())

	sessions := []struct {
		rec    string
		resets int // new MediaSources so far
	}{
		{"canvas_vp8_100_opaque_kf1000", 0},
		{"camera_vp9-opus_250_kf1000", 1},  // audio appears: a SourceBuffer cannot add a track
		{"canvas_vp9_250_alpha_kf1000", 2}, // and disappears
		{"camera-video_vp8_250", 2},        // same tracks, another codec: changeType
	}
	for i, s := range sessions {
		rec, ok := recs[s.rec]
		require.True(t, ok, "recording %s", s.rec)
		before := eval[int](t, v, "report().frames.length / 3")
		p, err := relay.DialPublish(ctx, wsURL, relay.PublishStart{MIME: rec.Layout.MIME}, nil)
		require.NoError(t, err)
		pace := 4 * time.Second / time.Duration(len(rec.Blobs)) // recorded over 4 s
		for _, blob := range rec.Blobs {
			require.NoError(t, p.Send(ctx, blob))
			time.Sleep(pace)
		}
		waitPage(t, v, s.rec+" to play", fmt.Sprintf(`player.stats.sessions === %d && player.status === "live" && report().frames.length / 3 > %d`, i+2, before+20), 10*time.Second)
		require.NoError(t, p.Close())
		waitPage(t, v, "the session to end", `player.status === "waiting"`, 10*time.Second)
		st := eval[map[string]int](t, v, "player.stats")
		t.Logf("%s (%s): %d frames shown, player %v", s.rec, rec.Layout.MIME, eval[int](t, v, "report().frames.length / 3")-before, st)
		assert.Equal(t, s.resets, st["resets"], "%s: new MediaSources", s.rec)
	}
}

// throttledListener slows down reading from its connections while rate > 0
// (bytes per second): a slow uplink, as the server sees it. (The kernel's
// socket buffers still take a few MB before the sender notices; shrinking
// the receive buffer would not help, the sender's buffer holds them, and it
// would leave a zero window that takes seconds of probing to reopen.)
type throttledListener struct {
	net.Listener
	rate *atomic.Int64
}

func (l throttledListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &throttledConn{Conn: c, rate: l.rate}, nil
}

type throttledConn struct {
	net.Conn
	rate *atomic.Int64
}

func (c *throttledConn) Read(p []byte) (int, error) {
	rate := c.rate.Load()
	if rate > 0 && len(p) > 1024 {
		p = p[:1024]
	}
	n, err := c.Conn.Read(p)
	if rate > 0 {
		time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
	}
	return n, err
}

// TestBrowserPublisherBackpressure: the publisher's connection slows to a
// crawl (a noise picture at up to 8 Mbit/s against 20 KB/s). relay.js must
// notice it is seconds behind, stop recording instead of queueing, and once
// the connection is fast again start a new recorder; the hub gets valid WebM
// throughout (the session survives) and the viewer plays on.
func TestBrowserPublisherBackpressure(t *testing.T) {
	b := startBrowser(t)
	e := newBrowserEnv(t, "testdata/browser") // the viewer's server
	var rate atomic.Int64
	slow := httptest.NewUnstartedServer(e.srv.Config.Handler) // the publisher's: same hub
	slow.Listener = throttledListener{slow.Listener, &rate}
	slow.Start()
	t.Cleanup(slow.Close) // runs before the hub's shutdown: the hub closes its connections first

	pub := b.open(t, "publisher", slow.URL+`/publish.html?stream=bp&w=320&h=180&noise&opts={"videoBitsPerSecond":8000000}`)
	v := b.open(t, "viewer", e.pageURL("watch.html?stream=bp"))
	waitPage(t, v, "the viewer to play", `player.status === "live" && report().frames.length > 30`, 20*time.Second)

	rate.Store(20 << 10)
	slowAt := time.Now()
	waitPage(t, pub, "the publisher to notice it is behind", `pub.status === "congested"`, 60*time.Second)
	t.Logf("congested %v after the slowdown: %s", time.Since(slowAt).Round(100*time.Millisecond), eval[string](t, pub, "JSON.stringify(pub.stats)"))
	rate.Store(0)
	waitPage(t, pub, "the publisher to record again", `pub.status === "live" && pub.stats.restarts >= 1`, 60*time.Second)
	fastAt := unixMs(time.Now())
	require.Equal(t, 0, eval[int](t, pub, "pub.stats.reconnects"), "the session broke (the hub must have got bad WebM)")
	waitPage(t, v, "the viewer to show the new recording", fmt.Sprintf(`report().frames.some((x, i) => i %% 3 === 1 && x >= %d)`, fastAt), 20*time.Second)
	r := eval[viewerReport](t, v, "report()")
	t.Logf("publisher: %s", eval[string](t, pub, "JSON.stringify(report().events.filter(e => e[1] === 'restart' || e[1] === 'status'))"))
	t.Logf("viewer: %s, %v", r.Status, r.Stats)
	assert.Equal(t, 0, r.count("emptied", 0, 1<<62), "the viewer emptied its video")
	assert.GreaterOrEqual(t, r.Stats["inits"], 2, "the viewer saw the new recorder's init")
}

// TestBrowserPausedViewer: a viewer paused by its user stays paused while
// media keeps coming; with a 1 MB MSE buffer (a flag of Chromium's) the
// SourceBuffer fills and appends fail with QuotaExceededError, which the
// player survives by dropping media up to the next keyframe. Played again,
// it jumps back to live at once, on the same MediaSource.
func TestBrowserPausedViewer(t *testing.T) {
	b := startBrowser(t, chromedp.Flag("mse-video-buffer-size-limit-mb", "1"))
	e := newBrowserEnv(t, "testdata/browser")
	b.open(t, "publisher", e.pageURL("publish.html?stream=pause"))
	v := b.open(t, "viewer", e.pageURL("watch.html?stream=pause"))
	waitPage(t, v, "the viewer to play", `player.status === "live" && report().frames.length > 30`, 20*time.Second)

	eval[bool](t, v, "video.pause(), true")
	waitPage(t, v, "the buffer to overflow", `player.stats.droppedSegments + player.stats.quotaEvictions > 0`, 30*time.Second)
	time.Sleep(time.Second)
	require.True(t, eval[bool](t, v, "video.paused"), "the player resumed by itself a video its user paused")

	resumeAt := time.Now()
	eval[bool](t, v, "video.play().then(() => true)")
	waitPage(t, v, "the viewer to be live again", fmt.Sprintf(`report().frames.some((x, i) => i %% 3 === 1 && x >= %d)`, unixMs(resumeAt)-1000), 10*time.Second)
	r := eval[viewerReport](t, v, "report()")
	again := r.liveAgain(unixMs(resumeAt)-1000) - 1000
	t.Logf("live again %d ms after play(); player %v", again, r.Stats)
	assert.LessOrEqual(t, again, int64(5000))
	assert.Equal(t, 0, r.count("emptied", 0, 1<<62), "the viewer emptied its video")
	assert.Equal(t, 0, r.Stats["resets"], "the viewer needed a new MediaSource")
	assert.Positive(t, r.Stats["jumps"], "the viewer did not jump back to live")
}

// countKeyframes counts the keyframe segments of stream on hub from now on,
// with an in-process subscriber; the returned function stops counting and
// returns the count.
func countKeyframes(t *testing.T, hub *relay.Hub, stream string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	sub, err := hub.Subscribe(ctx, stream)
	require.NoError(t, err)
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			seg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if seg.Kind == relay.KindMedia && seg.Keyframe {
				n.Add(1)
			}
		}
	}()
	var once sync.Once
	stop := func() int {
		once.Do(func() {
			cancel()
			sub.Close()
			<-done
		})
		return int(n.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}
