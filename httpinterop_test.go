package relay

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests drive real ffmpeg and ffprobe against the hub over loopback
// HTTP: ffmpeg publishes with PUT, ffprobe and ffmpeg read live.webm. They
// skip without the tools, and fail without them under CI=true.

// httpURL returns the plain HTTP URL of a route under the mount point.
func (e *testEnv) httpURL(route string) string { return e.srv.URL + "/live/" + route }

// testSource is ffmpeg's input arguments for secs seconds of a generated
// picture (testsrc2, 320x240 at 30 fps) and a sine tone; realtime paces it
// like a camera (-re) instead of as fast as ffmpeg can.
func testSource(secs float64, realtime bool) []string {
	var args []string
	if realtime {
		args = append(args, "-re")
	}
	d := strconv.FormatFloat(secs, 'f', -1, 64)
	return append(args,
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+d)
}

// liveEncode is the encoding of a live source, as the README gives it: VP8
// (or VP9) in realtime mode, a keyframe every 30 frames (1 s), Opus.
func liveEncode(vcodec string) []string {
	args := []string{"-c:v", vcodec, "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "500k", "-c:a", "libopus", "-f", "webm"}
	if vcodec == "libvpx-vp9" {
		args = append(args, "-row-mt", "1")
	}
	return args
}

// ffmpegPut starts ffmpeg publishing input with PUT to url, in VP8.
func ffmpegPut(t *testing.T, ctx context.Context, url string, input []string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return ffmpegPutCodec(t, ctx, url, input, "libvpx")
}

// ffmpegPutCodec is ffmpegPut with video codec vcodec (libvpx, libvpx-vp9).
func ffmpegPutCodec(t *testing.T, ctx context.Context, url string, input []string, vcodec string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ffmpeg := testutil.Tool(t, "ffmpeg")
	args := append([]string{"-hide_banner", "-nostdin", "-v", "error"}, input...)
	args = append(args, liveEncode(vcodec)...)
	args = append(args, "-method", "PUT", url)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, &out
}

// probe is what ffprobe read of a WebM source: frames decoded per stream
// type, whether the first video packet is a keyframe, and what ffprobe
// printed at level error (decode errors among it).
type probe struct {
	video, audio int
	firstKey     bool
	errors       string
}

// ffprobeFrames reads src (a file or URL) once with ffprobe, decoding every
// frame (-count_frames).
func ffprobeFrames(t *testing.T, ctx context.Context, src string) probe {
	t.Helper()
	ffprobe := testutil.Tool(t, "ffprobe")
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-count_frames",
		"-show_entries", "packet=codec_type,flags:stream=codec_type,nb_read_frames", "-of", "csv=p=0", src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	p := probe{errors: stderr.String()}
	if err != nil {
		p.errors += err.Error()
	}
	seenVideo := false
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.Atoi(f[1]); err == nil { // a stream: its decoded frames
			switch f[0] {
			case "video":
				p.video += n
			case "audio":
				p.audio += n
			}
			continue
		}
		if f[0] == "video" && !seenVideo { // a packet: its flags
			seenVideo = true
			p.firstKey = strings.HasPrefix(f[1], "K")
		}
	}
	return p
}

// toolCtx bounds a test that runs ffmpeg: wider than testCtx's, since a
// starved machine slows a realtime encoder and its decoders.
func toolCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// endLiveViewers ends the live.webm responses of stream name once its
// publisher left and every byte queued for its viewers was taken (and so
// written), instead of letting them wait WithLiveWait for the next
// publisher: tests set that wait long, so that a starved ffmpeg starting
// late does not find its viewers gone.
func endLiveViewers(t *testing.T, e *testEnv, name string) {
	t.Helper()
	waitFor(t, "the publisher to leave and the viewers to drain", func() bool {
		live := false
		e.hub.withStream(name, func(st *stream) { live = st.pub != nil })
		return !live && queuedBytes(e.hub, name) == 0
	})
	e.hub.CloseStream(name, "test over")
}

// ffmpeg publishes a generated source with PUT. A v1 WebSocket subscriber
// and ffprobe reading live.webm, both there before the publisher, and the
// recorder get every frame, decodable; the PUT gets 200 when the body ends.
func TestHTTPIngestFFmpeg(t *testing.T) {
	for _, codec := range []struct{ ffmpeg, webm string }{{"libvpx", "vp8"}, {"libvpx-vp9", "vp9"}} {
		t.Run(codec.webm, func(t *testing.T) { testHTTPIngestFFmpeg(t, codec.ffmpeg, codec.webm) })
	}
}

func testHTTPIngestFFmpeg(t *testing.T, vcodec, webmCodec string) {
	ropts, recordings := recordEvents(t.TempDir(), nil)
	e := newEnv(t, append(ropts, WithLiveWait(time.Minute))...)
	ctx := toolCtx(t)
	sub := e.subscribe("room1")

	probed := make(chan probe, 1)
	go func() { probed <- ffprobeFrames(t, ctx, e.httpURL("room1/live.webm")) }()
	waitFor(t, "live.webm's viewer", func() bool { return len(e.hub.Streams()) == 1 && e.hub.Streams()[0].Subscribers == 2 })

	cmd, out := ffmpegPutCodec(t, ctx, e.httpURL("room1/publish"), testSource(3, false), vcodec)
	require.NoError(t, cmd.Wait(), "ffmpeg: %s", out)

	segs := readUntilEnd(t, sub)
	endLiveViewers(t, e, "room1")
	var webm []byte
	for _, s := range segs {
		if s.Kind == KindStart {
			assert.Equal(t, "video/webm;codecs="+webmCodec+",opus", s.MIME)
		}
		webm = append(webm, s.Data...)
	}
	f := filepath.Join(t.TempDir(), "ws.webm")
	require.NoError(t, os.WriteFile(f, webm, 0o644))
	ws := ffprobeFrames(t, ctx, f)
	assert.Equal(t, 90, ws.video, "video frames over the WebSocket")
	assert.InDelta(t, 150, ws.audio, 2, "audio frames (20 ms) over the WebSocket")
	assert.True(t, ws.firstKey)
	assert.Empty(t, ws.errors)

	live := <-probed
	t.Logf("WebSocket subscriber: %+v; live.webm: %+v", ws, live)
	assert.Equal(t, 90, live.video, "video frames from live.webm")
	assert.InDelta(t, 150, live.audio, 2, "audio frames from live.webm")
	assert.True(t, live.firstKey)
	assert.Empty(t, live.errors)

	// The recorder's file: the session's frames, its duration, seekable.
	checkRecording(t, recorded(t, recordings, "room1", 1)[0], webm)
}

// A viewer of live.webm that comes after the first GOP of a live ffmpeg
// session starts at a keyframe: ffprobe's first video packet is one, and every frame after it
// decodes without error.
func TestHTTPLiveLateJoinFFmpeg(t *testing.T) {
	e := newEnv(t, WithLiveWait(time.Minute))
	ctx := toolCtx(t)
	cmd, out := ffmpegPut(t, ctx, e.httpURL("room1/publish"), testSource(5, true))
	// Late: the cache a viewer starts from no longer holds the first GOP.
	waitFor(t, "a keyframe after the first", func() bool {
		st := e.hub.Streams()
		return len(st) == 1 && st[0].Live && st[0].GOPBytes > 0 && st[0].BytesIn > uint64(st[0].GOPBytes)+16<<10
	})
	probed := make(chan probe, 1)
	go func() { probed <- ffprobeFrames(t, ctx, e.httpURL("room1/live.webm")) }()
	require.NoError(t, cmd.Wait(), "ffmpeg: %s", out)
	endLiveViewers(t, e, "room1")
	late := <-probed
	t.Logf("late viewer: %+v", late)
	assert.True(t, late.firstKey, "the late viewer starts at a keyframe")
	assert.Empty(t, late.errors)
	assert.Greater(t, late.video, 0)
	assert.Less(t, late.video, 150, "not the whole session: it came late")
}

// ffmpeg killed mid-stream ends the session like a WebSocket publisher that
// dropped its connection: subscribers get End, EventUnpublish comes, and
// the stream takes the next publisher at once.
func TestHTTPIngestFFmpegKilled(t *testing.T) {
	var log eventLog
	e := newEnv(t, WithEvents(log.add))
	ctx := toolCtx(t)
	sub := e.subscribe("room1")
	cmd, _ := ffmpegPut(t, ctx, e.httpURL("room1/publish"), testSource(60, true))
	waitFor(t, "the live session", func() bool {
		st := e.hub.Streams()
		return len(st) == 1 && st[0].Live && st[0].Segments > 2
	})
	require.NoError(t, cmd.Process.Kill())
	segs := readUntilEnd(t, sub)
	assert.Equal(t, KindStart, segs[0].Kind)
	assert.Equal(t, KindEnd, segs[len(segs)-1].Kind)
	waitFor(t, "EventUnpublish", func() bool {
		for _, ev := range log.events() {
			if ev.Kind == EventUnpublish {
				return true
			}
		}
		return false
	})

	cmd2, out := ffmpegPut(t, ctx, e.httpURL("room1/publish"), testSource(1, false))
	require.NoError(t, cmd2.Wait(), "the next publisher: %s", out)
}

// The README's command for a file: ffmpeg -re -i FILE -c copy -f webm
// -method PUT. The file's every frame reaches a subscriber, decodable.
func TestHTTPIngestFFmpegFileCopy(t *testing.T) {
	e := newEnv(t)
	ctx := toolCtx(t)
	sub := e.subscribe("room1")
	ffmpeg := testutil.Tool(t, "ffmpeg")
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-re",
		"-i", "testdata/ffmpeg/vp9_opus.webm", "-c", "copy", "-f", "webm", "-method", "PUT", e.httpURL("room1/publish"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	var webm []byte
	for _, s := range readUntilEnd(t, sub) {
		webm = append(webm, s.Data...)
	}
	f := filepath.Join(t.TempDir(), "copy.webm")
	require.NoError(t, os.WriteFile(f, webm, 0o644))
	got := ffprobeFrames(t, ctx, f)
	src := ffprobeFrames(t, ctx, "testdata/ffmpeg/vp9_opus.webm")
	assert.Equal(t, src.video, got.video)
	assert.Equal(t, src.audio, got.audio)
	assert.True(t, got.firstKey)
	assert.Empty(t, got.errors)
}
