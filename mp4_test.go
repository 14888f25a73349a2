package relay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/testutil"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fragmented MP4 through the hub (issue 21): the container chosen from the
// start's mime or the first bytes, live.mp4, the legacy refusal, the
// recorder's .mp4. The MP4 inputs are internal/mp4's testdata: files
// ffmpeg wrote (testdata/ffmpeg/make.sh) and Chromium's MediaRecorder
// blobs (testdata/recordings).

const mp4Testdata = "internal/mp4/testdata"

// mp4File reads an ffmpeg-written fragmented MP4 of internal/mp4's testdata.
func mp4File(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mp4Testdata, "ffmpeg", name))
	require.NoError(t, err)
	return b
}

// mp4Blobs reads a Chromium recording's blobs, as its page sent them.
func mp4Blobs(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(mp4Testdata, "recordings", dir, "[0-9][0-9][0-9][0-9][0-9].mp4"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var blobs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		blobs = append(blobs, b)
	}
	return blobs
}

// The first bytes say the container: WebM's EBML ID, or one of the box
// types an ISO BMFF stream starts with at bytes 4..8; a prefix that could
// still be either waits.
func TestSniffContainer(t *testing.T) {
	for _, typ := range bmffStart {
		c, ok := sniffContainer([]byte("\x00\x00\x00\x18" + typ))
		assert.True(t, ok, typ)
		assert.Equal(t, ContainerMP4, c, typ)
	}
	cases := []struct {
		in   string
		c    Container
		done bool
	}{
		{"\x1a\x45\xdf\xa3", ContainerWebM, true},
		{"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", ContainerWebM, true},
		{"\x1a\x45", ContainerUnknown, false},            // could be WebM
		{"\x00\x00\x00\x18ft", ContainerUnknown, false},  // could be ftyp
		{"\x00\x00\x00\x18xx", ContainerUnknown, true},   // no such start
		{"\x00\x00\x00\x18mdat", ContainerUnknown, true}, // mdat never starts a stream
		{"this is not", ContainerUnknown, true},
		{"\x1a\x45\xdf\xa4", ContainerUnknown, false}, // 4 bytes: an MP4 box size, maybe
		{"\x1a\x45\xdf\xa4ftyp", ContainerMP4, true},
	}
	for _, tc := range cases {
		c, ok := sniffContainer([]byte(tc.in))
		assert.Equal(t, tc.done, ok, "%q", tc.in)
		assert.Equal(t, tc.c, c, "%q", tc.in)
	}
	assert.Equal(t, ContainerMP4, ContainerOf(`video/mp4; codecs="avc1.42c01f"`))
	assert.Equal(t, ContainerMP4, ContainerOf("Audio/MP4"))
	assert.Equal(t, ContainerWebM, ContainerOf("video/webm;codecs=vp9,opus"))
	assert.Equal(t, ContainerWebM, ContainerOf("video/x-matroska;codecs=avc1"))
	assert.Equal(t, ContainerUnknown, ContainerOf("video/mp2t"))
	assert.Equal(t, ContainerUnknown, ContainerOf(""))
}

// A WebSocket publisher's container comes from its start's mime when that
// names one, else from the first bytes; the Start and StreamInfo say it,
// the MIME is the splitter's when the start's names no container; bytes of
// the other container, or of neither, are 1007 with a reason naming them.
func TestMP4ContainerChoice(t *testing.T) {
	file := mp4File(t, "h264_aac.mp4")
	webmData := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3}).Data
	const splitterMIME = `video/mp4; codecs="avc1.64000b,mp4a.40.2"`
	ok := []struct {
		name, mime, want string
	}{
		{"from the bytes", "", splitterMIME},
		{"from the mime", "video/mp4", "video/mp4"},
		{"a mime naming no container", "video/x-unknown", splitterMIME},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			sub := e.subscribe("s")
			p := e.publish("s", PublishStart{MIME: tc.mime})
			// As MediaRecorder sends it: a 1-byte first message, then any cut.
			for _, c := range append([][]byte{file[:1]}, cutEvery(file[1:], 1000)...) {
				require.NoError(t, p.Send(testCtx(t), c))
			}
			waitFor(t, "the stream's init", func() bool {
				st := e.hub.Streams()
				return len(st) == 1 && st[0].Segments > 0
			})
			info := e.hub.Streams()[0]
			assert.Equal(t, ContainerMP4, info.Container)
			assert.Equal(t, tc.want, info.MIME)
			require.NoError(t, p.Close())
			segs := readUntilEnd(t, sub)
			require.Equal(t, KindStart, segs[0].Kind)
			assert.Equal(t, tc.want, segs[0].MIME)
			assert.Equal(t, ContainerMP4, segs[0].Container())
			require.Equal(t, KindInit, segs[1].Kind)
			var got []byte
			for _, s := range segs {
				got = append(got, s.Data...)
			}
			assert.True(t, bytes.Equal(file, got), "the subscriber gets the stream byte for byte")
		})
	}
	bad := []struct {
		name, mime string
		data       []byte
		want       error
		reason     string
	}{
		{"neither", "", []byte("this is not a media stream"), ErrBadData, "neither WebM nor MP4"},
		{"MP4 bytes, a WebM mime", "video/webm;codecs=vp8", file, ErrBadData, "the start's mime says WebM, the stream's bytes are MP4"},
		{"WebM bytes, an MP4 mime", "video/mp4", webmData, ErrBadData, "the start's mime says MP4, the stream's bytes are WebM"},
		{"neither, an MP4 mime", "video/mp4", []byte("this is not a media stream"), ErrBadMP4, "bad MP4"},
		{"neither, a WebM mime", "video/webm", []byte("this is not a media stream"), ErrBadWebM, "bad WebM"},
		{"MP4 that does not parse", "", append([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x04moov"), file...), ErrBadMP4, "bad MP4"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.publish("s", PublishStart{MIME: tc.mime})
			p.Send(testCtx(t), tc.data)
			<-p.Done()
			wantClose(t, p.Err(), tc.want, 1007, tc.reason)
		})
	}
}

// publishMP4 publishes data in process in pieces of n bytes, without
// closing the session.
func publishMP4(t *testing.T, hub *Hub, stream string, data []byte, n int) *Publisher {
	t.Helper()
	p, err := hub.Publish(testCtx(t), stream, "")
	require.NoError(t, err)
	for _, c := range cutEvery(data, n) {
		_, err := p.Write(c)
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush())
	return p
}

// A late joiner of an MP4 stream gets the Start, the init and the media
// from the last keyframe fragment on, as for WebM: h264_fragdur.mp4 has
// fragments that start inside a GOP (not keyframes).
func TestMP4LateJoin(t *testing.T) {
	hub := NewHub()
	t.Cleanup(func() { hub.Shutdown(context.Background()) })
	ctx := testCtx(t)
	early, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	file := mp4File(t, "h264_fragdur.mp4")
	p := publishMP4(t, hub, "s", file, 4096)

	var all []Segment
	for len(all) == 0 || !bytes.Equal(file, concat(all)) {
		seg, err := early.Next(ctx)
		require.NoError(t, err)
		all = append(all, seg)
	}
	last := -1
	nonKey := 0
	for i, s := range all {
		if s.Kind == KindMedia && s.Keyframe {
			last = i
		}
		if s.Kind == KindMedia && !s.Keyframe {
			nonKey++
		}
	}
	require.Greater(t, last, 2, "a keyframe after the first")
	require.Less(t, last, len(all)-1, "media after the last keyframe")

	late, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	var got []Segment
	for len(got) < 2+len(all)-last {
		seg, err := late.Next(ctx)
		require.NoError(t, err)
		got = append(got, seg)
	}
	assert.Equal(t, KindStart, got[0].Kind)
	assert.Equal(t, ContainerMP4, got[0].Container())
	assert.Equal(t, all[1].Data, got[1].Data, "the init")
	assert.Equal(t, KindInit, got[1].Kind)
	for i, s := range got[2:] {
		want := all[last+i]
		assert.Equal(t, want.Seq, s.Seq)
		assert.Equal(t, want.Keyframe, s.Keyframe)
		assert.Equal(t, want.Data, s.Data)
	}
	assert.True(t, got[2].Keyframe)
	assert.False(t, got[2].Discontinuity)
	require.NoError(t, p.Close())
}

func concat(segs []Segment) []byte {
	var b []byte
	for _, s := range segs {
		b = append(b, s.Data...)
	}
	return b
}

// live.webm answers 406 for an MP4 stream and live.mp4 406 for a WebM
// stream, GET and HEAD; live.mp4 of an MP4 stream is the stream's init
// and fragments under its MIME type.
func TestHTTPLiveMP4Routes(t *testing.T) {
	e := newEnv(t, WithLiveWait(time.Minute))
	ctx := testCtx(t)
	file := mp4File(t, "h264_aac.mp4")
	mp4Pub := publishMP4(t, e.hub, "m", file, 8192)
	webmPub, err := e.hub.Publish(ctx, "w", "")
	require.NoError(t, err)
	_, err = webmPub.Write(webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2}).Data)
	require.NoError(t, err)
	waitFor(t, "both streams live", func() bool {
		st := e.hub.Streams()
		return len(st) == 2 && st[0].MIME != "" && st[1].MIME != ""
	})

	head := func(route string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.httpURL(route), nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	for _, tc := range []struct {
		route  string
		status int
		ctype  string
	}{
		{"m/live.mp4", 200, "video/mp4"},
		{"m/live.webm", 406, ""},
		{"w/live.webm", 200, "video/webm"},
		{"w/live.mp4", 406, ""},
	} {
		status, ctype := head(tc.route)
		assert.Equal(t, tc.status, status, "HEAD %s", tc.route)
		assert.True(t, strings.HasPrefix(ctype, tc.ctype), "HEAD %s: %q", tc.route, ctype)
		if tc.status != 406 {
			continue
		}
		resp := e.getLive(ctx, tc.route)
		text, _ := io.ReadAll(resp.Body)
		assert.Equal(t, 406, resp.StatusCode, "GET %s", tc.route)
		assert.Contains(t, string(text), "serves", "GET %s", tc.route)
	}

	read, done := e.readLive(ctx, "m/live.mp4")
	resp := e.getLive(ctx, "m/live.mp4")
	assert.Equal(t, `video/mp4; codecs="avc1.64000b,mp4a.40.2"`, resp.Header.Get("Content-Type"))
	resp.Body.Close()
	waitFor(t, "live.mp4's init", func() bool { return read.Load() > 0 })
	require.NoError(t, mp4Pub.Close()) // live.mp4 ends with its session
	body := <-done
	// It joined at the last keyframe fragment: the init, then a tail of the file.
	init := mp4Init(t, file)
	require.True(t, bytes.HasPrefix(body, init))
	assert.True(t, bytes.HasSuffix(file, body[len(init):]), "the media from a keyframe fragment on")
	assert.Greater(t, len(body), len(init))
	require.NoError(t, webmPub.Close())
}

// mp4Init is the init a hub makes of data.
func mp4Init(t *testing.T, data []byte) []byte {
	var init []byte
	sp := newMP4Splitter(0, func(s *Segment) error {
		if s.Kind == KindInit && init == nil {
			init = s.Data
		}
		return nil
	})
	require.NoError(t, sp.Append(data))
	require.NoError(t, sp.End())
	return init
}

// A legacy subscriber (the framing of standalone WebM files) of an MP4
// stream is closed with 1003 and a reason saying so; one of a WebM stream
// on the same hub goes on.
func TestLegacySubscriberOfMP4(t *testing.T) {
	e := newEnv(t)
	c := e.dialRaw("m/subscribe")
	p := publishMP4(t, e.hub, "m", mp4File(t, "h264_aac.mp4"), 8192)
	defer p.Close()
	_, _, err := c.Read(testCtx(t))
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(err), "%v", err)
	assert.Contains(t, err.Error(), "the legacy framing carries WebM only")

	// A legacy publisher sending MP4 gets the WebM error it always got.
	pub := e.dialRaw("x/publish")
	require.NoError(t, pub.Write(testCtx(t), websocket.MessageBinary, mp4File(t, "h264_aac.mp4")[:100]))
	_, _, err = pub.Read(testCtx(t))
	assert.Equal(t, websocket.StatusInvalidFramePayloadData, websocket.CloseStatus(err), "%v", err)
	assert.Contains(t, err.Error(), "bad WebM")
}

// ffmpegPutMP4 starts ffmpeg publishing input with PUT to url as fragmented
// MP4 (H.264 + AAC), as the README gives the command.
func ffmpegPutMP4(t *testing.T, ctx context.Context, url string, input []string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ffmpeg := testutil.Tool(t, "ffmpeg")
	args := append([]string{"-hide_banner", "-nostdin", "-v", "error"}, input...)
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-b:v", "500k",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-method", "PUT", url)
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

// ffmpeg publishes fragmented MP4 with PUT. A v1 WebSocket subscriber and
// ffprobe reading live.mp4, both there before the publisher, get every
// frame, decodable; the recorder's .mp4 has them all, its duration, and
// seeks; the PUT gets 200.
func TestHTTPIngestFFmpegMP4(t *testing.T) {
	ropts, recordings := recordEvents(t.TempDir(), nil)
	e := newEnv(t, append(ropts, WithLiveWait(time.Minute))...)
	ctx := toolCtx(t)
	sub := e.subscribe("room1")

	probed := make(chan probe, 1)
	go func() { probed <- ffprobeFrames(t, ctx, e.httpURL("room1/live.mp4")) }()
	waitFor(t, "live.mp4's viewer", func() bool { return len(e.hub.Streams()) == 1 && e.hub.Streams()[0].Subscribers == 2 })

	cmd, out := ffmpegPutMP4(t, ctx, e.httpURL("room1/publish"), testSource(3, false))
	require.NoError(t, cmd.Wait(), "ffmpeg: %s", out)

	segs := readUntilEnd(t, sub)
	var data []byte
	for _, s := range segs {
		if s.Kind == KindStart {
			assert.True(t, strings.HasPrefix(s.MIME, `video/mp4; codecs="avc1.`), s.MIME)
			assert.Equal(t, ContainerMP4, s.Container())
		}
		data = append(data, s.Data...)
	}
	f := filepath.Join(t.TempDir(), "ws.mp4")
	require.NoError(t, os.WriteFile(f, data, 0o644))
	ws := ffprobeFrames(t, ctx, f)
	assert.Equal(t, 90, ws.video, "video frames over the WebSocket")
	assert.InDelta(t, 141, ws.audio, 2, "audio frames (1024 samples at 48 kHz) over the WebSocket")
	assert.True(t, ws.firstKey)
	assert.Empty(t, ws.errors)

	live := <-probed // live.mp4 ends with the session
	t.Logf("WebSocket subscriber: %+v; live.mp4: %+v", ws, live)
	assert.Equal(t, ws.video, live.video, "video frames from live.mp4")
	assert.Equal(t, ws.audio, live.audio, "audio frames from live.mp4")
	assert.True(t, live.firstKey)
	assert.Empty(t, live.errors)

	path := recorded(t, recordings, "room1", 1)[0]
	assert.Equal(t, ".mp4", filepath.Ext(path))
	checkRecording(t, path, data)
}

// An ffmpeg-written fragmented MP4 over a WebSocket (stream mode, no mime,
// a message per 16 KiB) reaches a v1 subscriber with every frame.
func TestMP4OverWebSocketFFmpegFile(t *testing.T) {
	for _, name := range []string{"h264_aac.mp4", "vp9_opus.mp4", "h264_fragdur.mp4", "aac_only.mp4", "two_inits.mp4"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := toolCtx(t)
			sub := e.subscribe("s")
			p := e.publish("s", PublishStart{})
			file := mp4File(t, name)
			for _, c := range cutEvery(file, 16<<10) {
				require.NoError(t, p.Send(ctx, c))
			}
			require.NoError(t, p.Close())
			segs := readUntilEnd(t, sub)
			inits := 0
			for _, s := range segs {
				if s.Kind == KindInit {
					inits++
				}
			}
			if name == "two_inits.mp4" {
				assert.Equal(t, 2, inits, "a moov mid-stream is a new init")
			}
			got := filepath.Join(t.TempDir(), "got.mp4")
			require.NoError(t, os.WriteFile(got, concat(segs), 0o644))
			src := filepath.Join(mp4Testdata, "ffmpeg", name)
			want, have := ffprobeFrames(t, ctx, src), ffprobeFrames(t, ctx, got)
			assert.Equal(t, want.video, have.video)
			assert.Equal(t, want.audio, have.audio)
			if name != "two_inits.mp4" { // one file, two moovs: ffmpeg's h264 decoder complains of the source too
				assert.Empty(t, have.errors)
			}
		})
	}
}

// The recorder writes an MP4 session as a fragmented .mp4: ffmpeg decodes
// every frame, finds the duration, seeks to a keyframe; the event's
// Duration is the fragments'. ffmpeg's files in 5 KiB writes, and
// Chromium's recordings blob by blob.
func TestRecordMP4(t *testing.T) {
	inputs := map[string][][]byte{}
	for _, name := range []string{"h264_aac.mp4", "vp9_opus.mp4", "aac_only.mp4", "h264_fragdur.mp4"} {
		inputs[name] = cutEvery(mp4File(t, name), 5<<10)
	}
	dirs, err := filepath.Glob(filepath.Join(mp4Testdata, "recordings", "*"))
	require.NoError(t, err)
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			inputs[filepath.Base(d)] = mp4Blobs(t, filepath.Base(d))
		}
	}
	require.Len(t, inputs, 8)
	for name, blobs := range inputs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			hub, ch := recordingHub(t, dir, nil)
			publishBlobs(t, hub, "s", blobs)
			var start, end Event
			for end.Kind != EventRecordEnd {
				ev := nextRecordEvent(t, ch)
				if ev.Kind == EventRecordStart {
					start = ev
				} else {
					end = ev
				}
			}
			require.NoError(t, end.Err)
			require.Equal(t, start.Path, end.Path)
			assert.Equal(t, ".mp4", filepath.Ext(end.Path))
			var source []byte
			for _, b := range blobs {
				source = append(source, b...)
			}
			if strings.HasSuffix(name, ".mp4") {
				checkRecording(t, end.Path, source)
			} else {
				// Chromium's blobs: ffmpeg's complaints of the source (the
				// canvas recording repeats a dts; seeking in the Opus-only one
				// finds no frame) are its own, so the file must be the source.
				got, err := os.ReadFile(end.Path)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(source, got), "the file is the session's bytes as they came")
			}
			p := ffprobeOf(t, end.Path, "error")
			assert.InDelta(t, p.duration, end.Session.Duration.Seconds(), 0.1, "the event's Duration (ffprobe's %.3f s)", p.duration)
		})
	}
}
