// Command recorder regenerates testdata/recordings: real Chromium and Firefox
// MediaRecorder output, one file per dataavailable blob, exactly as the
// browser delivered it.
//
//	go run ./tools/recorder -out testdata/recordings                    # Chromium's
//	go run ./tools/recorder -out testdata/recordings -browser firefox   # Firefox's (firefox_*)
//
// It serves a small page on 127.0.0.1 (random port), starts the browser
// headless with fake camera/microphone pointed at it, and the page records
// each configuration in turn (sequentially, in one visible page) and POSTs
// every blob back. The server writes <out>/<name>/00000.webm, 00001.webm, ...
// and <out>/<name>/meta.json. The browser is killed and the tool exits when
// the page reports it is done, or after -timeout.
//
// Chromium gets its settings as flags. Firefox is not driven at all: it
// starts with a fresh profile whose user.js sets the prefs (fake devices, no
// permission prompt, nothing that reaches out to the network) and the
// page's URL as its argument; the page does the rest by itself.
//
// After regenerating, run tools/expected/make_expected.sh to recompute the
// expected.json files (they are computed by mkvinfo, not by this tool).
//
// Standard library only.
package main

import (
	"context"
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
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// config is one recording. Field names are shared with the page's JavaScript.
type config struct {
	Name       string         `json:"name"`
	Source     string         `json:"source"`           // "camera", "canvas" or "mic" (the microphone alone)
	Audio      bool           `json:"audio"`            // camera only: also capture the fake microphone
	Alpha      bool           `json:"alpha"`            // canvas only: default 2D context (alpha) vs {alpha:false}
	Width      int            `json:"width,omitempty"`  // canvas only; default 640
	Height     int            `json:"height,omitempty"` // canvas only; default 480
	Mime       string         `json:"mime"`
	Timeslice  int            `json:"timeslice"`  // ms, passed to MediaRecorder.start
	DurationMs int            `json:"durationMs"` // how long to record
	Options    map[string]any `json:"options"`    // extra MediaRecorder options (besides mimeType)
}

var configs = []config{
	{
		Name: "camera_vp9-opus_250_kf1000", Source: "camera", Audio: true,
		Mime: "video/webm;codecs=vp9,opus", Timeslice: 250, DurationMs: 4000,
		Options: map[string]any{"videoKeyFrameIntervalDuration": 1000},
	},
	{
		Name: "canvas_vp9_250_alpha_kf1000", Source: "canvas", Alpha: true,
		Mime: "video/webm;codecs=vp9", Timeslice: 250, DurationMs: 4000,
		Options: map[string]any{"videoKeyFrameIntervalDuration": 1000},
	},
	{
		Name: "camera-video_vp8_250", Source: "camera",
		Mime: "video/webm;codecs=vp8", Timeslice: 250, DurationMs: 4000,
		Options: map[string]any{},
	},
	{
		Name: "canvas_vp8_100_opaque_kf1000", Source: "canvas", Alpha: false,
		Mime: "video/webm;codecs=vp8", Timeslice: 100, DurationMs: 4000,
		Options: map[string]any{"videoKeyFrameIntervalDuration": 1000},
	},
	{
		// Clusters mostly start without a keyframe: with audio, Chromium
		// starts Clusters far more often than keyframes come.
		Name: "camera_vp9-opus_100_kf3000", Source: "camera", Audio: true,
		Mime: "video/webm;codecs=vp9,opus", Timeslice: 100, DurationMs: 6000,
		Options: map[string]any{"videoKeyFrameIntervalDuration": 3000},
	},
}

// firefoxConfigs are Firefox's recordings: VP8 only (Firefox has no VP9
// encoder), and Firefox ignores videoKeyFrameIntervalDuration, so keyframes
// come every 6 s or so: 12 s holds two or three. Small pictures and low
// bitrates keep them small.
var firefoxConfigs = []config{
	{
		Name: "firefox_canvas_vp8_250", Source: "canvas", Width: 320, Height: 240,
		Mime: "video/webm;codecs=vp8", Timeslice: 250, DurationMs: 12000,
		Options: map[string]any{"videoBitsPerSecond": 150000},
	},
	{
		Name: "firefox_camera_vp8-opus_250", Source: "camera", Audio: true,
		Mime: "video/webm;codecs=vp8,opus", Timeslice: 250, DurationMs: 12000,
		Options: map[string]any{"videoBitsPerSecond": 120000, "audioBitsPerSecond": 32000},
	},
	{
		Name: "firefox_mic_opus_250", Source: "mic",
		Mime: "audio/webm;codecs=opus", Timeslice: 250, DurationMs: 10000,
		Options: map[string]any{"audioBitsPerSecond": 32000},
	},
}

// firefoxPrefs: fake camera and microphone without a prompt, and nothing
// that reaches out to the network (updates, telemetry, captive portal,
// Safe Browsing, Normandy/Nimbus, remote settings, add-on and GMP
// downloads). The same as e2e/firefox_test.go's, less what only the tests
// need.
var firefoxPrefs = map[string]any{
	"media.navigator.streams.fake":                    true,
	"media.navigator.permission.disabled":             true,
	"media.autoplay.default":                          0,
	"media.autoplay.blocking_policy":                  0,
	"app.update.disabledForTesting":                   true,
	"app.update.auto":                                 false,
	"app.normandy.enabled":                            false,
	"app.normandy.api_url":                            "",
	"app.shield.optoutstudies.enabled":                false,
	"messaging-system.rsexperimentloader.enabled":     false,
	"services.settings.server":                        "data:,#remote-settings-dummy/v1",
	"datareporting.policy.dataSubmissionEnabled":      false,
	"datareporting.healthreport.uploadEnabled":        false,
	"toolkit.telemetry.enabled":                       false,
	"toolkit.telemetry.unified":                       false,
	"toolkit.telemetry.server":                        "https://127.0.0.1:9/",
	"toolkit.telemetry.reportingpolicy.firstRun":      false,
	"browser.shell.checkDefaultBrowser":               false,
	"browser.startup.homepage_override.mstone":        "ignore",
	"browser.aboutwelcome.enabled":                    false,
	"browser.newtabpage.enabled":                      false,
	"browser.safebrowsing.malware.enabled":            false,
	"browser.safebrowsing.phishing.enabled":           false,
	"browser.safebrowsing.downloads.enabled":          false,
	"browser.safebrowsing.provider.google4.updateURL": "",
	"browser.safebrowsing.provider.mozilla.updateURL": "",
	"browser.search.update":                           false,
	"browser.region.network.url":                      "",
	"browser.region.update.enabled":                   false,
	"browser.sessionstore.resume_from_crash":          false,
	"network.captive-portal-service.enabled":          false,
	"network.connectivity-service.enabled":            false,
	"extensions.update.enabled":                       false,
	"extensions.getAddons.cache.enabled":              false,
	"extensions.blocklist.enabled":                    false,
	"media.gmp-manager.updateEnabled":                 false,
	"media.gmp-manager.url":                           "",
	"media.gmp-gmpopenh264.enabled":                   false,
}

var chromiumFlags = []string{
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--use-fake-ui-for-media-stream",
	"--use-fake-device-for-media-stream",
	"--autoplay-policy=no-user-gesture-required",
	"--window-size=800,600",
}

func main() {
	out := flag.String("out", "testdata/recordings", "output directory (one sub-directory per configuration)")
	browser := flag.String("browser", "chromium", "chromium or firefox: which browser records (and which configurations)")
	chromium := flag.String("chromium", "/usr/bin/chromium", "Chromium binary")
	firefox := flag.String("firefox", "/usr/bin/firefox-esr", "Firefox binary")
	timeout := flag.Duration("timeout", 100*time.Second, "give up (and kill Chromium) after this long")
	only := flag.String("only", "", "comma-separated configuration names to record (default: all)")
	verbose := flag.Bool("v", false, "copy Chromium's output to stderr")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	all, exe := configs, *chromium
	switch *browser {
	case "chromium":
	case "firefox":
		all, exe = firefoxConfigs, *firefox
	default:
		log.Fatalf("-browser %q: chromium or firefox", *browser)
	}
	sel := all
	if *only != "" {
		sel = nil
		for _, n := range strings.Split(*only, ",") {
			c, ok := findConfig(all, strings.TrimSpace(n))
			if !ok {
				log.Fatalf("unknown configuration %q", n)
			}
			sel = append(sel, c)
		}
	}
	if err := run(*out, *browser, exe, *timeout, sel, *verbose); err != nil {
		log.Fatal(err)
	}
}

func findConfig(cs []config, name string) (config, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return config{}, false
}

// recording collects one configuration's blobs in a staging directory until
// the page sends its meta data; then the files replace the old ones.
type recording struct {
	stage    string
	received map[int]blobInfo
}

type blobInfo struct {
	Size     int   `json:"size"`
	ServerMs int64 `json:"serverMs"` // Unix ms when the server had the whole POST body
}

type server struct {
	out    string
	cfgs   []config
	mu     sync.Mutex
	recs   map[string]*recording
	done   chan error // page finished (nil) or failed
	closed bool
}

func (s *server) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.done <- err
	}
}

func run(out, browser, exe string, timeout time.Duration, sel []config, verbose bool) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := &server{out: out, cfgs: sel, recs: map[string]*recording{}, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("POST /blob", s.blob)
	mux.HandleFunc("POST /meta", s.meta)
	mux.HandleFunc("POST /log", s.logMsg)
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
		if len(msg) > 0 {
			s.finish(fmt.Errorf("page failed: %s", msg))
			return
		}
		s.finish(nil)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/"
	log.Printf("serving %s", url)

	profile, err := os.MkdirTemp("", "recorder-"+browser+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)

	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+profile, url)
	if browser == "firefox" {
		if err := writeUserJS(profile, firefoxPrefs); err != nil {
			return err
		}
		args = []string{"--headless", "--no-remote", "--profile", profile, url}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	setProcessGroup(cmd)
	var chromeLog strings.Builder
	if verbose {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	} else {
		w := &limitedWriter{b: &chromeLog, n: 64 << 10}
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", browser, err)
	}
	log.Printf("%s pid %d", browser, cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		killProcessGroup(cmd)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			log.Printf("%s did not exit after kill", browser)
		}
	}()

	var result error
	select {
	case result = <-s.done:
	case err := <-exited:
		exited <- err // for the deferred wait
		result = fmt.Errorf("%s exited early: %v\n%s", browser, err, chromeLog.String())
	case <-ctx.Done():
		result = fmt.Errorf("timed out after %v\n%s", timeout, chromeLog.String())
	}
	s.cleanupStages()
	if result == nil {
		log.Printf("done in %v; now run tools/expected/make_expected.sh", time.Since(start).Round(time.Millisecond))
	}
	return result
}

// writeUserJS writes prefs as the user.js of a Firefox profile.
func writeUserJS(dir string, prefs map[string]any) error {
	var b strings.Builder
	for k, v := range prefs {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, j)
	}
	return os.WriteFile(filepath.Join(dir, "user.js"), []byte(b.String()), 0o644)
}

func (s *server) cleanupStages() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		os.RemoveAll(r.stage)
	}
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	cj, _ := json.Marshal(s.cfgs)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, strings.Replace(pageHTML, "__CONFIGS__", string(cj), 1))
}

func (s *server) cfgAndRec(name string) (config, *recording, error) {
	c, ok := findConfig(s.cfgs, name)
	if !ok {
		return config{}, nil, fmt.Errorf("unknown configuration %q", name)
	}
	rec := s.recs[name]
	if rec == nil {
		stage := filepath.Join(s.out, "."+name+".partial")
		if err := os.RemoveAll(stage); err != nil {
			return c, nil, err
		}
		if err := os.MkdirAll(stage, 0o755); err != nil {
			return c, nil, err
		}
		rec = &recording{stage: stage, received: map[int]blobInfo{}}
		s.recs[name] = rec
	}
	return c, rec, nil
}

func (s *server) blob(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
	now := time.Now().UnixMilli()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	if err != nil || i < 0 || i > 99999 {
		http.Error(w, "bad index", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, rec, err := s.cfgAndRec(r.URL.Query().Get("cfg"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, dup := rec.received[i]; dup {
		http.Error(w, "duplicate blob index", http.StatusBadRequest)
		return
	}
	if err := os.WriteFile(filepath.Join(rec.stage, fmt.Sprintf("%05d.webm", i)), body, 0o644); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rec.received[i] = blobInfo{Size: len(body), ServerMs: now}
	w.WriteHeader(http.StatusNoContent)
}

// meta receives the page's description of a finished recording, checks it
// against the blobs received, and moves the recording into place.
func (s *server) meta(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.URL.Query().Get("cfg")
	_, rec, err := s.cfgAndRec(name)
	if err == nil {
		err = s.commit(name, rec, m)
	}
	if err != nil {
		log.Printf("%s: %v", name, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) commit(name string, rec *recording, m map[string]any) error {
	blobs, _ := m["blobs"].([]any)
	if len(blobs) != len(rec.received) {
		return fmt.Errorf("page reports %d blobs, server received %d", len(blobs), len(rec.received))
	}
	total := 0
	for i, b := range blobs {
		bm, _ := b.(map[string]any)
		got, ok := rec.received[i]
		if !ok {
			return fmt.Errorf("blob %d missing", i)
		}
		if size, _ := bm["size"].(float64); int(size) != got.Size {
			return fmt.Errorf("blob %d: page size %v, received %d bytes", i, bm["size"], got.Size)
		}
		bm["serverMs"] = got.ServerMs
		total += got.Size
	}
	m["totalBytes"] = total
	mj, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rec.stage, "meta.json"), append(mj, '\n'), 0o644); err != nil {
		return err
	}

	// Replace the old blobs and meta.json (other files, e.g. expected.json, stay).
	dst := filepath.Join(s.out, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dst, "[0-9][0-9][0-9][0-9][0-9].webm"))
	for _, f := range append(old, filepath.Join(dst, "meta.json")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	files, _ := os.ReadDir(rec.stage)
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.Rename(filepath.Join(rec.stage, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	os.Remove(rec.stage)
	delete(s.recs, name)
	log.Printf("%s: %d blobs, %d bytes, recorder.mimeType %v", name, len(blobs), total, m["recMime"])
	return nil
}

func (s *server) logMsg(w http.ResponseWriter, r *http.Request) {
	msg, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	log.Printf("page: %s", msg)
	w.WriteHeader(http.StatusNoContent)
}

type limitedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rem := l.n - l.b.Len(); rem > 0 {
		if len(p) > rem {
			l.b.Write(p[:rem])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

const pageHTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>segrelay recorder</title></head>
<body style="margin:0;background:#222;color:#eee;font:14px sans-serif">
<div id="status">starting</div>
<canvas id="c" width="640" height="480"></canvas>
<script>
"use strict";
const CONFIGS = __CONFIGS__;
const sleep = ms => new Promise(r => setTimeout(r, ms));
const status = s => { document.getElementById("status").textContent = s; };
const post = (path, body) => fetch(path, {method: "POST", body}).then(r => {
  if (!r.ok) return r.text().then(t => { throw new Error(path + ": " + r.status + " " + t); });
});
const plog = s => post("/log", String(s)).catch(() => {});

// Animated canvas: something changes in every frame (moving shapes, frame
// counter, timestamp). With alpha, the background is cleared to transparent
// and shapes are translucent, so the alpha plane is real.
function startCanvas(alpha, W, H) {
  const old = document.getElementById("c");
  const canvas = document.createElement("canvas"); // fresh canvas: the context type is fixed per canvas
  canvas.width = W; canvas.height = H; canvas.id = "c";
  old.replaceWith(canvas);
  const ctx = alpha ? canvas.getContext("2d") : canvas.getContext("2d", {alpha: false});
  let n = 0, running = true;
  function draw() {
    if (!running) return;
    ctx.setTransform(W / 640, 0, 0, H / 480, 0, 0); // drawn for 640x480, scaled to the canvas
    const t = performance.now() / 1000;
    if (alpha) {
      ctx.clearRect(0, 0, 640, 480);
      ctx.fillStyle = "rgba(40, 80, 160, 0.35)";
      ctx.fillRect(0, 0, 640, 480 * (0.5 + 0.5 * Math.sin(t)));
    } else {
      ctx.fillStyle = "hsl(" + ((t * 40) % 360) + ", 40%, 25%)";
      ctx.fillRect(0, 0, 640, 480);
    }
    ctx.fillStyle = alpha ? "rgba(255, 200, 0, 0.7)" : "#fc0";
    ctx.beginPath();
    ctx.arc(320 + 220 * Math.cos(t * 2), 240 + 160 * Math.sin(t * 3), 50, 0, 2 * Math.PI);
    ctx.fill();
    ctx.save();
    ctx.translate(320, 240); ctx.rotate(t);
    ctx.fillStyle = alpha ? "rgba(0, 220, 120, 0.8)" : "#0d8";
    ctx.fillRect(-80, -20, 160, 40);
    ctx.restore();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 40px monospace";
    ctx.fillText("frame " + n + "  " + Date.now(), 20, 60);
    n++;
    requestAnimationFrame(draw);
  }
  draw();
  return {stream: canvas.captureStream(30), stop: () => { running = false; }};
}

async function record(cfg) {
  status("recording " + cfg.name);
  let src;
  if (cfg.source === "camera" || cfg.source === "mic") {
    const video = cfg.source === "camera";
    const stream = await navigator.mediaDevices.getUserMedia({video, audio: !video || !!cfg.audio});
    src = {stream, stop: () => {}};
  } else {
    src = startCanvas(!!cfg.alpha, cfg.width || 640, cfg.height || 480);
  }
  const options = Object.assign({mimeType: cfg.mime}, cfg.options || {});
  const rec = new MediaRecorder(src.stream, options);
  const blobs = [];
  let chain = Promise.resolve(); // POST blobs one after another, in order
  let t0 = 0;
  rec.ondataavailable = e => {
    const now = Date.now();
    const i = blobs.length;
    blobs.push({i, size: e.data.size, t: now, tMs: now - t0, timecode: e.timecode});
    const data = e.data;
    chain = chain.then(() => post("/blob?cfg=" + encodeURIComponent(cfg.name) + "&i=" + i, data));
  };
  const stopped = new Promise((resolve, reject) => {
    rec.onstop = resolve;
    rec.onerror = e => reject(new Error("MediaRecorder error: " + (e.error || e)));
  });
  t0 = Date.now();
  rec.start(cfg.timeslice);
  await sleep(cfg.durationMs);
  rec.stop();
  await stopped;
  await chain;
  src.stop();
  const tracks = src.stream.getTracks().map(t => ({kind: t.kind, label: t.label, settings: t.getSettings()}));
  src.stream.getTracks().forEach(t => t.stop());
  const meta = {
    name: cfg.name,
    source: cfg.source,
    audio: !!cfg.audio,
    alpha: cfg.source === "canvas" ? !!cfg.alpha : undefined,
    mime: cfg.mime,
    recMime: rec.mimeType,
    timeslice: cfg.timeslice,
    durationMs: cfg.durationMs,
    options,
    videoBitsPerSecond: rec.videoBitsPerSecond,
    audioBitsPerSecond: rec.audioBitsPerSecond,
    startedAt: t0,
    userAgent: navigator.userAgent,
    tracks,
    blobsNote: "t: Date.now() at dataavailable; tMs: t - startedAt; timecode: BlobEvent.timecode; serverMs: when the server had the POST body",
    blobs,
  };
  await post("/meta?cfg=" + encodeURIComponent(cfg.name), JSON.stringify(meta));
}

(async () => {
  try {
    for (const cfg of CONFIGS) {
      if (!MediaRecorder.isTypeSupported(cfg.mime)) throw new Error(cfg.mime + " not supported");
      await record(cfg);
      await sleep(300);
    }
    status("done");
    await post("/done", "");
  } catch (e) {
    status("failed: " + e);
    await post("/done", String(e && e.stack || e)).catch(() => {});
  }
})();
</script>
</body></html>
`
