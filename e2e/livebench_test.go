package e2e

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------------
// The live scenario: one publisher page, two relay.js viewers and a plain
// MSE control viewer from the start, and a relay.js viewer that joins late,
// all reading the clock drawn into every frame. TestLiveBench runs it for
// builds and browser pairs side by side; TestBrowserPlayerVsControl holds
// the player against the control in one run.

// liveScenario says what to run.
type liveScenario struct {
	base string // the server: pages at /, the hub at /live/
	// pubBase and viewBase, when set, are where the publisher's and the
	// viewers' pages open instead of base (a weak link in front of it).
	pubBase, viewBase string
	mic               bool          // the clock with the fake microphone (video + Opus)
	ffmpeg            []string      // not nil: ffmpeg publishes the clock (livestamp_test.go), with these muxer options
	warmup            time.Duration // after the viewers open, before the steady window
	steady            time.Duration // the steady window
	lateAt            time.Duration // when the late viewer joins, after the viewers open
}

// viewerFigures is what one viewer showed in its steady window.
type viewerFigures struct {
	Name        string    `json:"name"`
	Latencies   []float64 `json:"-"`
	P50         float64   `json:"p50Ms"`
	P95         float64   `json:"p95Ms"`
	Waits       int       `json:"waits"`       // every "waiting" event
	Stalled     int64     `json:"stalledMs"`   // from each "waiting" to the next frame shown
	FPS         float64   `json:"fps"`         // frames shown a second
	Flashes     int       `json:"flashes"`     // emptied, a new source, black frames after the first picture
	MediaErrors int       `json:"mediaErrors"` // "error" events of the video element
	FirstFrame  int64     `json:"firstFrameMs,omitempty"`
	Target      float64   `json:"targetMs,omitempty"` // the player's target latency (median of its reports)
	GapSkips    int       `json:"gapSkips"`           // seeks over a hole in what was buffered (player and control count them)
	WindowS     float64   `json:"windowS"`
}

// liveResult is one run of the scenario.
type liveResult struct {
	Player   []viewerFigures `json:"player"` // relay.js: viewer1, viewer2, late-viewer
	Control  viewerFigures   `json:"control"`
	Mime     string          `json:"mime"`
	LoadFrom [3]float64      `json:"loadBefore"`
	LoadTo   [3]float64      `json:"loadAfter"`
}

// pooled returns the relay.js viewers' figures taken together: latency
// quantiles over every frame, waits and stalled time per viewer (mean), the
// slowest viewer's fps, flashes and errors in all.
func (r liveResult) pooled() (p50, p95, waits, stalled, fps float64, flashes, errors int) {
	var all []float64
	fps = -1
	for _, v := range r.Player {
		all = append(all, v.Latencies...)
		waits += float64(v.Waits) / float64(len(r.Player))
		stalled += float64(v.Stalled) / float64(len(r.Player))
		if fps < 0 || v.FPS < fps {
			fps = v.FPS
		}
		flashes += v.Flashes
		errors += v.MediaErrors
	}
	q := summarize(all)
	return q.p50, q.p95, waits, stalled, fps, flashes, errors
}

func figuresOf(name string, r viewerReport, from, to int64) viewerFigures {
	lat := r.latencies(from, to)
	q := summarize(lat)
	f := viewerFigures{Name: name, Latencies: lat, P50: q.p50, P95: q.p95, WindowS: float64(to-from) / 1000}
	for _, d := range r.stallTimes(from, to) {
		f.Waits++
		f.Stalled += d
	}
	f.FPS = float64(len(r.frames(from, to))) / f.WindowS
	f.Flashes = r.count("emptied", 0, to) + r.blackFrames(0, to) + max(0, r.count("loadstart", 0, to)-1)
	f.MediaErrors = r.count("error", 0, to)
	f.GapSkips = r.Stats["gapSkips"]
	if r.FirstFrameAt > 0 {
		f.FirstFrame = r.FirstFrameAt - r.JoinAt
	}
	var targets []float64
	for i := 0; i+3 < len(r.Latency); i += 4 {
		if at := int64(r.Latency[i]); at >= from && at < to {
			targets = append(targets, r.Latency[i+2]*1000)
		}
	}
	if len(targets) > 0 {
		f.Target = summarize(targets).p50
	}
	return f
}

// runLiveScenario runs sc with the publisher in pubB and the viewers in viewB.
func runLiveScenario(t *testing.T, pubB, viewB *browser, sc liveScenario) liveResult {
	t.Helper()
	res := liveResult{LoadFrom: loadAvg()}
	if sc.ffmpeg != nil {
		res.Mime = publishStampedFFmpeg(t, sc.base+"/live/clock/publish", sc.ffmpeg)
	} else {
		pubURL := cmp.Or(sc.pubBase, sc.base) + "/publish.html?stream=clock"
		if sc.mic {
			pubURL += "&mic"
		}
		pub := pubB.open(t, "publisher", pubURL)
		waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
		res.Mime = eval[string](t, pub, "pub.mimeType")
	}

	names := []string{"viewer1", "viewer2", "control", "late-viewer"}
	pages := make([]*page, len(names))
	view := cmp.Or(sc.viewBase, sc.base)
	pages[0] = viewB.open(t, names[0], view+"/watch.html?stream=clock")
	pages[1] = viewB.open(t, names[1], view+"/watch.html?stream=clock")
	pages[2] = viewB.open(t, names[2], view+"/control.html?stream=clock")
	t0 := time.Now()
	sleepUntil(t0.Add(sc.lateAt))
	pages[3] = viewB.open(t, names[3], view+"/watch.html?stream=clock")
	from := unixMs(t0.Add(sc.warmup))
	sleepUntil(t0.Add(sc.warmup + sc.steady))
	to := unixMs(time.Now())
	for i, p := range pages {
		r := eval[viewerReport](t, p, "report()")
		wfrom := from
		if names[i] == "late-viewer" {
			wfrom = r.JoinAt + 3000
		}
		f := figuresOf(names[i], r, wfrom, to)
		if names[i] == "control" {
			res.Control = f
		} else {
			res.Player = append(res.Player, f)
		}
		t.Logf("%s: %d frames read over %.0f s (%.1f fps): p50 %s p95 %s; waiting %d (%d ms); flashes %d; media errors %d; first frame %d ms; stats %v",
			names[i], len(f.Latencies), f.WindowS, f.FPS, secs(f.P50), secs(f.P95), f.Waits, f.Stalled, f.Flashes, f.MediaErrors, f.FirstFrame, r.Stats)
	}
	res.LoadTo = loadAvg()
	return res // the pages close with t

}

// ---------------------------------------------------------------------------
// TestLiveBench: the live benchmark command.
//
//	cd e2e && SEGRELAY_LIVEBENCH=1 go test -run '^TestLiveBench$' -v -timeout 0 .
//
// runs, for every browser pair and build, the live scenario (a Chromium or
// Firefox publisher of the canvas clock, 30 fps VP9 or VP8 at relay.js's
// defaults; two relay.js viewers and a control from the start, a relay.js
// viewer joining late) and prints one row per run: the relay.js viewers'
// glass-to-glass p50 and p95, waiting events per viewer and stalled time,
// the slowest viewer's fps, the late joiner's first frame, flashes and
// media errors, and the control viewer's p50, p95 and waits in the same
// run. Each hub is a livehub process of its own. Settings, all optional:
//
//	SEGRELAY_LIVEBENCH_PAIRS   chromium-chromium,chromium-firefox,firefox-chromium,firefox-firefox
//	                           (a "+mic" suffix adds the fake microphone to the clock;
//	                           ffmpeg-chromium, ffmpeg-firefox: ffmpeg publishes the clock)
//	SEGRELAY_LIVEBENCH_FFMPEG_MUXER  WebM muxer options for ffmpeg, e.g. "-cluster_time_limit 100"
//	SEGRELAY_LIVEBENCH_BUILDS  "." (the working tree); a revision (its hub and relay.js);
//	                           HUB/JS (one revision's hub serving another's relay.js), e.g.
//	                           ".,3cc3d94,./3cc3d94". In each round and pair the builds run
//	                           one after the other, so they see the same machine.
//	SEGRELAY_LIVEBENCH_ROUNDS  1
//	SEGRELAY_LIVEBENCH_STEADY  30s (after a 5 s warm-up; the late viewer joins at 8 s)
//	SEGRELAY_LIVEBENCH_OUT     a file to append one JSON line per run to
func TestLiveBench(t *testing.T) {
	if os.Getenv("SEGRELAY_LIVEBENCH") == "" {
		t.Skip("the live benchmark runs with SEGRELAY_LIVEBENCH=1")
	}
	pairs := strings.Split(envOr("SEGRELAY_LIVEBENCH_PAIRS", "chromium-chromium,chromium-firefox,firefox-chromium,firefox-firefox"), ",")
	builds := strings.Split(envOr("SEGRELAY_LIVEBENCH_BUILDS", "."), ",")
	rounds, err := strconv.Atoi(envOr("SEGRELAY_LIVEBENCH_ROUNDS", "1"))
	require.NoError(t, err, "SEGRELAY_LIVEBENCH_ROUNDS")
	steady := envDuration(t, "SEGRELAY_LIVEBENCH_STEADY", 30*time.Second)
	hubs, scripts := prepareBuilds(t, builds)
	var out *os.File
	if path := os.Getenv("SEGRELAY_LIVEBENCH_OUT"); path != "" {
		out, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		defer out.Close()
	}
	var table strings.Builder
	table.WriteString("| round | pair | hub | relay.js | p50 | p95 | waiting / viewer | stalled / viewer | fps (min) | late join | flashes | media errors | control p50 | control p95 | control waiting | load before → after |\n")
	table.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pair := range pairs {
		kinds, mic := strings.CutSuffix(pair, "+mic")
		pubKind, viewKind, ok := strings.Cut(kinds, "-")
		require.True(t, ok, "pair %q: want PUBLISHER-VIEWER", pair)
		var ffmpeg []string
		if pubKind == "ffmpeg" {
			ffmpeg = append([]string{}, strings.Fields(os.Getenv("SEGRELAY_LIVEBENCH_FFMPEG_MUXER"))...)
			require.False(t, mic, "pair %q: the ffmpeg publisher has no microphone", pair)
		}
		t.Run(pair, func(t *testing.T) {
			var pubB *browser
			if ffmpeg == nil {
				pubB = startBrowserKind(t, pubKind)
			}
			viewB := pubB
			if viewKind != pubKind {
				viewB = startBrowserKind(t, viewKind)
			}
			for round := 1; round <= rounds; round++ {
				for _, b := range builds {
					hub, js := splitBuild(b)
					t.Run(fmt.Sprintf("%d/%s", round, strings.ReplaceAll(b, "/", "+")), func(t *testing.T) {
						base := startLiveHub(t, hubs[hub], scripts[js])
						res := runLiveScenario(t, pubB, viewB, liveScenario{base: base, mic: mic, ffmpeg: ffmpeg, warmup: 5 * time.Second, steady: steady, lateAt: 8 * time.Second})
						p50, p95, waits, stalled, fps, flashes, errs := res.pooled()
						late := res.Player[len(res.Player)-1].FirstFrame
						row := fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %.1f | %.2f s | %.1f | %s | %d | %d | %s | %s | %d | %.2f → %.2f |",
							round, pair, hub, js, secs(p50), secs(p95), waits, stalled/1000, fps, secs(float64(late)), flashes, errs,
							secs(res.Control.P50), secs(res.Control.P95), res.Control.Waits, res.LoadFrom[0], res.LoadTo[0])
						fmt.Println("livebench:", row)
						table.WriteString(row + "\n")
						if out != nil {
							line, err := json.Marshal(map[string]any{
								"time": time.Now().UTC().Format(time.RFC3339), "commit": gitCommit(), "round": round, "pair": pair,
								"hub": hub, "relayjs": js, "steadyS": steady.Seconds(), "mime": res.Mime,
								"p50Ms": p50, "p95Ms": p95, "waitsPerViewer": waits, "stalledMsPerViewer": stalled, "minFPS": fps,
								"lateJoinMs": late, "flashes": flashes, "mediaErrors": errs, "viewers": res.Player, "control": res.Control,
								"loadBefore": res.LoadFrom, "loadAfter": res.LoadTo,
							})
							require.NoError(t, err)
							_, err = out.Write(append(line, '\n'))
							require.NoError(t, err)
						}
					})
				}
			}
		})
	}
	fmt.Printf("livebench (steady %v, %d round(s)):\n%s", steady, rounds, table.String())
}

// prepareBuilds builds the hubs and writes the relay.js files that builds
// (SEGRELAY_LIVEBENCH_BUILDS's syntax) name, by revision.
func prepareBuilds(t *testing.T, builds []string) (hubs, scripts map[string]string) {
	work := t.TempDir()
	hubs = map[string]string{}    // revision -> livehub binary
	scripts = map[string]string{} // revision -> relay.js
	for _, b := range builds {
		hub, js := splitBuild(b)
		if hubs[hub] == "" {
			hubs[hub] = buildLiveHub(t, work, hub)
		}
		if scripts[js] == "" {
			scripts[js] = relayJSOf(t, work, js)
		}
	}
	return hubs, scripts
}

// splitBuild splits HUB/JS; a lone revision is both.
func splitBuild(b string) (hub, js string) {
	hub, js, ok := strings.Cut(b, "/")
	if !ok {
		js = hub
	}
	return hub, js
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// buildLiveHub builds livehub against the library of revision rev ("." is
// the working tree) and returns the binary.
func buildLiveHub(t *testing.T, work, rev string) string {
	t.Helper()
	bin := filepath.Join(work, "livehub-"+safeName(rev))
	if rev == "." {
		run(t, ".", nil, "go", "build", "-o", bin, "./livehub")
		return bin
	}
	src := filepath.Join(work, "src-"+safeName(rev))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "livehub"), 0o755))
	run(t, ".", nil, "sh", "-c", fmt.Sprintf("git -C .. archive %s | tar -x -C %s", shellQuote(rev), shellQuote(src)))
	main, err := os.ReadFile("livehub/main.go")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(src, "livehub", "main.go"), main, 0o644))
	run(t, src, []string{"GOWORK=off"}, "go", "build", "-o", bin, "./livehub")
	return bin
}

// relayJSOf writes revision rev's relay.js ("." the working tree's) to a file.
func relayJSOf(t *testing.T, work, rev string) string {
	t.Helper()
	if rev == "." {
		p, err := filepath.Abs("../relay.js")
		require.NoError(t, err)
		return p
	}
	js, err := exec.Command("git", "show", rev+":relay.js").Output()
	require.NoError(t, err, "git show %s:relay.js", rev)
	p := filepath.Join(work, "relay-"+safeName(rev)+".js")
	require.NoError(t, os.WriteFile(p, js, 0o644))
	return p
}

// startLiveHub runs a livehub binary serving testdata/browser and relayJS,
// and returns its base URL; the process ends with the test.
func startLiveHub(t *testing.T, bin, relayJS string) string {
	t.Helper()
	cmd := exec.Command(bin, "-pages", "testdata/browser", "-relayjs", relayJS)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "livehub's address")
	return "http://" + strings.TrimSpace(line)
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
