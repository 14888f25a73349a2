package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay"
	"github.com/segrelay/relay/internal/testutil"
)

// The browser and player side of HTTP interop: ffmpeg publishes with PUT
// and browsers play it (relay.js, a plain <video src=live.webm>); a browser
// publishes and ffprobe reads live.webm; and what every player does with a
// live.webm response that spans two publisher sessions.

// tool is a command-line tool (ffmpeg, ffprobe) running for a test; it is
// killed when the test ends.
type tool struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer // read them only after wait
	done           chan struct{}
	err            error
}

func startTool(t *testing.T, name string, args ...string) *tool {
	t.Helper()
	c := &tool{cmd: exec.Command(testutil.Tool(t, name), args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// wait waits for the tool to exit, at most timeout (then the test fails),
// and returns how it exited.
func (c *tool) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("%s did not exit within %v: %s", c.cmd.Path, timeout, c.stderr.String())
		return nil
	}
}

// ffmpegPublish starts ffmpeg publishing secs seconds of a generated
// picture (testsrc2, 320x240 at 30 fps) and a tone with PUT to url, paced
// like a camera (-re), encoded like a live source: VP8 in realtime mode with
// a keyframe a second, Opus; muxer are more WebM muxer options.
func ffmpegPublish(t *testing.T, url string, secs int, muxer ...string) *tool {
	t.Helper()
	d := strconv.Itoa(secs)
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=" + d,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + d,
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "500k",
		"-c:a", "libopus", "-f", "webm"}
	args = append(args, muxer...)
	return startTool(t, "ffmpeg", append(args, "-method", "PUT", url)...)
}

// probe is what ffprobe read of a live.webm response or a file: frames
// decoded per stream type, whether the first video packet is a keyframe,
// how often the video times went back (a new publisher session starts
// again at 0), how many video packets had the time of the one before, and
// what ffprobe printed at level error.
type probe struct {
	video, audio   int
	firstKey       bool
	rewinds, stuck int
	errors         string
}

// startProbe starts ffprobe reading url to its end, decoding every frame.
func startProbe(t *testing.T, url string) *tool {
	t.Helper()
	return startTool(t, "ffprobe", "-v", "error", "-count_frames",
		"-show_entries", "packet=codec_type,pts_time,flags:stream=codec_type,nb_read_frames", "-of", "csv=p=0", url)
}

// probeResult waits for ffprobe to end and parses what it printed.
func probeResult(t *testing.T, c *tool, timeout time.Duration) probe {
	t.Helper()
	err := c.wait(t, timeout)
	p := probe{errors: c.stderr.String()}
	if err != nil {
		p.errors += err.Error()
	}
	seenVideo, last := false, -1.0
	for _, line := range strings.Split(strings.TrimSpace(c.stdout.String()), "\n") {
		f := strings.Split(line, ",")
		switch len(f) {
		case 2: // a stream: its decoded frames
			n, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "video":
				p.video += n
			case "audio":
				p.audio += n
			}
		case 3: // a video packet: its time and flags
			if f[0] != "video" {
				continue
			}
			if !seenVideo {
				seenVideo = true
				p.firstKey = strings.HasPrefix(f[2], "K")
			}
			if pts, err := strconv.ParseFloat(f[1], 64); err == nil {
				switch {
				case pts < last:
					p.rewinds++
				case pts == last:
					p.stuck++
				}
				last = pts
			}
		}
	}
	return p
}

// waitLive waits for stream to have a live publisher session on e's hub.
func waitLive(t *testing.T, e *browserEnv, stream string) {
	t.Helper()
	waitFor(t, stream+" to be live", func() bool {
		for _, s := range e.currentHub().Streams() {
			if s.Name == stream && s.Live && s.MIME != "" {
				return true
			}
		}
		return false
	})
}

// mediaErrors returns the error events a viewer page recorded: the video
// element's (MediaError code and message) and relay.js's.
func mediaErrors(r viewerReport) []string {
	var errs []string
	for _, ev := range r.Events {
		if ev[1] == "error" || ev[1] == "player-error" {
			errs = append(errs, fmt.Sprint(ev[1], " ", ev[2]))
		}
	}
	return errs
}

// playback is a sample of a video element's progress.
type playback struct {
	Time    float64 `json:"time"`
	Decoded int     `json:"decoded"`
	Shown   int     `json:"shown"`
}

const playbackJS = `({time: video.currentTime, decoded: video.getVideoPlaybackQuality().totalVideoFrames, shown: report().frames.length / 3})`

// waitPlays waits until v's video has played 2 s of media, decoded 30
// frames and shown some more than at from, and returns the last sample.
func waitPlays(t *testing.T, v *page, from playback) playback {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := tryEval[playback](v, playbackJS)
		// Decoded frames and time say it plays; frames shown need only
		// advance: a starved headless Firefox presents few of them (15 of
		// 302 decoded with two CPU hogs beside the suite).
		if err == nil && s.Time >= from.Time+2 && s.Decoded >= from.Decoded+30 && s.Shown > from.Shown {
			return s
		}
		if time.Now().After(deadline) {
			r, _ := tryEval[viewerReport](v, "report()")
			t.Fatalf("%s: the video did not play 2 s more within 30 s: %+v, then %+v (%v); events %v, player %s %v", v.name, from, s, err, r.Events, r.Status, r.Stats)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHTTPFFmpegRelayJS: ffmpeg publishes with PUT, a relay.js viewer in
// Chromium, there before the publisher, plays it: its video's time
// advances, frames are decoded and shown, no error. With ffmpeg's default
// WebM muxer options, and with one Cluster per GOP (each Cluster starts
// with a keyframe, as a browser's MediaRecorder makes them).
//
// ffmpeg-defaults is the regression test of a relay.js bug: ffmpeg writing
// to a stream (not a file) closes a Cluster at 32 KB, mostly without a
// keyframe after it, and gives every Cluster its size. relay.js's
// WebMAppender folds a Cluster that does not start with a keyframe into the
// one before by dropping its header, which left its blocks after the end
// of a Cluster of known size: Chromium's SourceBuffer failed the append
// ("Unexpected element ID 0xa3"), the player started over and over, then
// gave up. It now makes the size of a Cluster it keeps unknown.
func TestHTTPFFmpegRelayJS(t *testing.T) {
	for _, c := range []struct {
		name  string
		muxer []string
	}{
		{"ffmpeg-defaults", nil},
		{"cluster-per-gop", []string{"-cluster_size_limit", "2M", "-cluster_time_limit", "5100"}},
		{"ffmpeg-defaults-firefox", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind := "chromium"
			if strings.HasSuffix(c.name, "-firefox") {
				kind = "firefox"
			}
			b := startBrowserKind(t, kind)
			e := newBrowserEnv(t, "testdata/browser")
			v := b.open(t, "viewer", e.pageURL("watch.html?stream=ff"))
			waitPage(t, v, "the viewer to wait for the publisher", `player.status === "waiting"`, 15*time.Second)

			// Longer than the test needs: a busy machine may take seconds
			// to start the browser's player; the cleanup stops ffmpeg.
			ffmpegPublish(t, e.srv.URL+"/live/ff/publish", 30, c.muxer...)
			waitPage(t, v, "the viewer to start playing", `player.status === "live" && video.currentTime > 0`, 20*time.Second)
			start := eval[playback](t, v, playbackJS)
			end := waitPlays(t, v, start)
			r := eval[viewerReport](t, v, "report()")
			t.Logf("relay.js in %s: %+v, then %+v; player %s %v", kind, start, end, r.Status, r.Stats)
			assert.Empty(t, mediaErrors(r))
			assert.True(t, eval[bool](t, v, "video.error === null"), "MediaError: %v", eval[any](t, v, "video.error && video.error.message"))
			assert.Equal(t, "live", eval[string](t, v, "player.status"))
			assert.Zero(t, r.Stats["reconnects"], "the player started over")
			assert.Contains(t, eval[string](t, v, "JSON.stringify(report().events.filter(e => e[1] === 'player-session'))"), "video/webm;codecs=vp8,opus")
		})
	}
}

// TestHTTPFFmpegVideoSrc: ffmpeg publishes with PUT, and a page with a
// plain <video src=".../live.webm"> and no relay.js plays it, in Chromium
// and in Firefox: its time advances, frames are decoded and shown, no
// error. When the publisher leaves, the response ends (WithLiveWait later)
// and the video ends where it was, without an error.
func TestHTTPFFmpegVideoSrc(t *testing.T) {
	for _, kind := range []string{"chromium", "firefox"} {
		t.Run(kind, func(t *testing.T) {
			b := startBrowserKind(t, kind)
			e := newBrowserEnv(t, "testdata/browser", relay.WithLiveWait(2*time.Second))
			ff := ffmpegPublish(t, e.srv.URL+"/live/ff/publish", 10)
			waitLive(t, e, "ff")
			v := b.open(t, "video-src", e.pageURL("src.html?src=/live/ff/live.webm"))
			waitPage(t, v, "the video to start playing", `video.currentTime > 0`, 20*time.Second)
			start := eval[playback](t, v, playbackJS)
			end := waitPlays(t, v, start)
			t.Logf("<video src=live.webm> in %s: %+v, then %+v", kind, start, end)

			require.NoError(t, ff.wait(t, 30*time.Second), "ffmpeg: %s", &ff.stderr)
			waitPage(t, v, "the video to end with the response", `video.ended`, 20*time.Second)
			r := eval[viewerReport](t, v, "report()")
			t.Logf("after the publisher left: %s; events %v", eval[string](t, v, `JSON.stringify({ended: video.ended, time: video.currentTime, networkState: video.networkState, readyState: video.readyState})`), r.Events)
			assert.Empty(t, mediaErrors(r))
			assert.True(t, eval[bool](t, v, "video.error === null"), "MediaError: %v", eval[any](t, v, "video.error && video.error.message"))
		})
	}
}

// TestHTTPBrowserPublisherFFprobe: a browser publishes its (fake) camera
// and microphone with relay.js; ffprobe, joining when the publisher has
// been live 2 s, reads live.webm until the publisher stops: it starts at a
// keyframe and decodes video and audio frames without an error.
func TestHTTPBrowserPublisherFFprobe(t *testing.T) {
	for _, kind := range []string{"chromium", "firefox"} {
		t.Run(kind, func(t *testing.T) {
			b := startBrowserKind(t, kind)
			events := make(chan relay.Event, 64)
			e := newBrowserEnv(t, "testdata/browser", relay.WithLiveWait(time.Second),
				relay.WithRecording(t.TempDir(), nil),
				relay.WithEvents(func(ev relay.Event) {
					if ev.Kind == relay.EventRecordEnd || ev.Kind == relay.EventUnpublish {
						events <- ev
					}
				}))
			pub := b.open(t, "publisher", e.pageURL("publish.html?stream=cam&source=camera"))
			waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
			mime := eval[string](t, pub, "pub.mimeType")
			time.Sleep(2 * time.Second) // a late join: mid-GOP

			fp := startProbe(t, e.srv.URL+"/live/cam/live.webm")
			waitFor(t, "ffprobe to subscribe", func() bool {
				s := e.currentHub().Streams()
				return len(s) == 1 && s[0].Subscribers == 1
			})
			time.Sleep(3 * time.Second) // what ffprobe gets to read
			eval[bool](t, pub, "pub.stop().then(() => true)")
			p := probeResult(t, fp, 30*time.Second)
			t.Logf("ffprobe of a %s publisher (%s, encoder %s): %+v", kind, mime, eval[string](t, pub, "pub.encoder"), p)
			assert.Positive(t, p.video, "video frames")
			assert.Positive(t, p.audio, "audio frames")
			assert.True(t, p.firstKey, "the first video packet is a keyframe")
			assert.Empty(t, p.errors)

			// The recorder's file of the session: decoded end to end with
			// no error, as long as the session was (its media runs from the
			// first blob to the last: up to a second less than the session
			// on the hub's clock, which starts at the connection).
			var rec, session relay.Event
			for rec.Kind == 0 || session.Kind == 0 {
				select {
				case ev := <-events:
					if ev.Kind == relay.EventRecordEnd {
						rec = ev
					} else {
						session = ev
					}
				case <-time.After(30 * time.Second):
					t.Fatal("no EventRecordEnd and EventUnpublish")
				}
			}
			require.NoError(t, rec.Err, rec.Path)
			decoded := probeResult(t, startProbe(t, rec.Path), 30*time.Second)
			assert.Empty(t, decoded.errors, "ffprobe decoding the recording")
			assert.Positive(t, decoded.video)
			assert.Positive(t, decoded.audio)
			assert.True(t, decoded.firstKey)
			out := startTool(t, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", rec.Path)
			require.NoError(t, out.wait(t, 30*time.Second), "%s", &out.stderr)
			duration, err := strconv.ParseFloat(strings.TrimSpace(out.stdout.String()), 64)
			require.NoError(t, err, "ffprobe's duration: %q", out.stdout.String())
			t.Logf("recording of a %s session of %v: %s, %.3f s, %+v", kind, session.Session.Duration, rec.Path, duration, decoded)
			assert.InDelta(t, session.Session.Duration.Seconds()-0.5, duration, 1.0, "the file lasts as long as the session")
		})
	}
}

// TestHTTPDiscontinuity measures what players do with a live.webm response
// that spans two publisher sessions: ffmpeg publishes 6 s, leaves, and
// publishes 6 s more within WithLiveWait, so the response carries a second
// EBML header and Segment (whose times start at 0 again). Readers, all
// there during the first session: ffprobe, ffmpeg copying the response to a
// file, and a plain <video src> in Chromium and in Firefox.
func TestHTTPDiscontinuity(t *testing.T) {
	chromium := startBrowser(t)
	firefox := startFirefox(t)
	e := newBrowserEnv(t, "testdata/browser", relay.WithLiveWait(5*time.Second))
	live := e.srv.URL + "/live/ff/live.webm"

	first := ffmpegPublish(t, e.srv.URL+"/live/ff/publish", 6)
	waitLive(t, e, "ff")
	fp := startProbe(t, live)
	copied := filepath.Join(t.TempDir(), "copy.webm")
	cp := startTool(t, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", live, "-c", "copy", "-f", "webm", copied)
	pages := []*page{
		chromium.open(t, "chromium", e.pageURL("src.html?src=/live/ff/live.webm")),
		firefox.open(t, "firefox", e.pageURL("src.html?src=/live/ff/live.webm")),
	}
	for _, v := range pages {
		waitPage(t, v, "the video to play", `video.currentTime > 0`, 20*time.Second)
	}
	waitFor(t, "the four readers", func() bool {
		s := e.currentHub().Streams()
		return len(s) == 1 && s[0].Subscribers == 4
	})
	require.NoError(t, first.wait(t, 30*time.Second), "ffmpeg: %s", &first.stderr)
	secondAt := time.Now()
	second := ffmpegPublish(t, e.srv.URL+"/live/ff/publish", 6)
	require.NoError(t, second.wait(t, 30*time.Second), "ffmpeg: %s", &second.stderr)

	// ffmpeg's demuxer reads on: the second Segment, of unknown length,
	// inside the first one (also of unknown length) is an error it resyncs
	// after, with one line on stderr.
	const resync = "Found unknown-length element with ID 0x18538067"
	p := probeResult(t, fp, 30*time.Second)
	t.Logf("ffprobe: %+v", p)
	assert.Greater(t, p.video, 180, "video frames: more than the second session's")
	assert.Equal(t, 1, p.rewinds, "the video times start again once")
	assert.True(t, p.firstKey)
	assertOnly(t, p.errors, resync, "ffprobe")

	// ffmpeg copies every packet, but gives those of the second session,
	// whose times went back, the last time of the first (ffmpeg 5.1: the
	// copy's second half lasts no time at all; logged, not asserted: it is
	// ffmpeg's business).
	require.NoError(t, cp.wait(t, 30*time.Second), "ffmpeg -c copy: %s", &cp.stderr)
	assertOnly(t, cp.stderr.String(), resync, "ffmpeg -c copy")
	cpp := probeResult(t, startProbe(t, copied), 30*time.Second)
	t.Logf("ffprobe of ffmpeg's copy: %+v", cpp)
	assert.Equal(t, p.video, cpp.video, "the copy's video frames")
	assert.Empty(t, cpp.errors)

	// The browsers: no error, and the video ends when the response does;
	// what they show of the second session is logged (docs/http-interop.md).
	for _, v := range pages {
		waitPage(t, v, "the video to end", `video.ended || video.error`, 30*time.Second)
		r := eval[viewerReport](t, v, "report()")
		assert.Empty(t, mediaErrors(r), v.name)
		assert.True(t, eval[bool](t, v, "video.ended"), v.name)
		var evs []string
		for _, ev := range r.Events {
			evs = append(evs, fmt.Sprintf("%+d %v", int64(ev[0].(float64))-unixMs(secondAt), ev[1]))
		}
		t.Logf("%s <video src> (ms after the second session began): events %v", v.name, evs)
		// Per second from 3 s before the second session: the media time,
		// and the frames shown in that second.
		times := eval[[]float64](t, v, "report().times")
		var line []string
		for i := 0; i+3 < len(times); i += 4 * 4 {
			at := int64(times[i])
			if at < unixMs(secondAt)-3000 {
				continue
			}
			line = append(line, fmt.Sprintf("%+.0fs: %.2f (%d)", float64(at-unixMs(secondAt))/1000, times[i+1], len(r.frames(at-1000, at))))
		}
		t.Logf("%s media time (frames shown): %s", v.name, strings.Join(line, ", "))
	}
}

// assertOnly asserts that every line of stderr contains want.
func assertOnly(t *testing.T, stderr, want, what string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" {
			assert.Contains(t, l, want, "%s: an unexpected error", what)
		}
	}
}

// TestHTTPVideoSrcLatency measures how far behind live a plain <video src>
// plays: a Chromium page publishes the canvas clock, and <video src> pages
// in Chromium and Firefox read the clock from the frames they show. Nothing
// in live.webm asks a browser to keep up (relay.js changes the playback
// rate for that): the figures are logged for docs/http-interop.md; the test
// asserts only that both play the clock.
func TestHTTPVideoSrcLatency(t *testing.T) {
	chromium := startBrowser(t)
	firefox := startFirefox(t)
	e := newBrowserEnv(t, "testdata/browser")
	pub := chromium.open(t, "publisher", e.pageURL("publish.html?stream=clock"))
	waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
	pages := []*page{
		chromium.open(t, "chromium", e.pageURL("src.html?src=/live/clock/live.webm")),
		firefox.open(t, "firefox", e.pageURL("src.html?src=/live/clock/live.webm")),
	}
	for _, v := range pages {
		waitPage(t, v, "the video to show the clock", `report().frames.some((x, i) => i % 3 === 1 && x > 0)`, 20*time.Second)
	}
	from := time.Now()
	time.Sleep(8 * time.Second)
	for _, v := range pages {
		r := eval[viewerReport](t, v, "report()")
		q := summarize(r.latencies(unixMs(from), unixMs(time.Now())))
		t.Logf("%s <video src>: first frame %d ms after opening; over %v: %d frames with a readable clock, glass-to-glass p50 %s p95 %s max %s; waiting %d",
			v.name, r.FirstFrameAt-r.JoinAt, 8*time.Second, q.n, secs(q.p50), secs(q.p95), secs(q.max), r.count("waiting", unixMs(from), 1<<62))
		assert.Positive(t, q.n, "%s: frames with a readable clock", v.name)
		assert.Empty(t, mediaErrors(r), v.name)
	}
}
