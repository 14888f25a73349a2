package relay

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/testutil"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// The recorder's tests publish real WebM (ffmpeg's files, Chromium's and
// Firefox's MediaRecorder blobs) through a real hub and check its files
// with ffmpeg and ffprobe: decoded end to end without an error, the same
// frames as the source, its duration, a seek.

// recordEvents returns the options of a recording hub, and the channel of
// its recording events.
func recordEvents(dir string, record func(string) bool) ([]Option, chan Event) {
	ch := make(chan Event, 64)
	return []Option{
		WithRecording(dir, record),
		WithEvents(func(ev Event) {
			if ev.Kind == EventRecordStart || ev.Kind == EventRecordEnd {
				ch <- ev
			}
		}),
	}, ch
}

// recordingHub is a hub that records every stream to dir.
func recordingHub(t *testing.T, dir string, record func(string) bool, opts ...Option) (*Hub, chan Event) {
	ropts, ch := recordEvents(dir, record)
	hub := NewHub(append(ropts, opts...)...)
	t.Cleanup(func() { assert.NoError(t, hub.Shutdown(context.Background())) })
	return hub, ch
}

// nextRecordEvent waits for the next recording event.
func nextRecordEvent(t *testing.T, ch chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-testCtx(t).Done():
		t.Fatal("no recording event")
		return Event{}
	}
}

// recorded waits for n files' start and end events and returns their
// paths, oldest first (a session's recorder may still write when the
// next one's begins: their events interleave).
func recorded(t *testing.T, ch chan Event, stream string, n int) []string {
	t.Helper()
	started := map[string]bool{}
	var paths []string
	for len(paths) < n {
		ev := nextRecordEvent(t, ch)
		require.NoError(t, ev.Err, "%s %s", ev.Kind, ev.Path)
		assert.Equal(t, stream, ev.Stream)
		if ev.Kind == EventRecordStart {
			started[ev.Path] = true
			continue
		}
		require.True(t, started[ev.Path], "%s ended before it started", ev.Path)
		assert.Equal(t, stream, filepath.Base(filepath.Dir(ev.Path)), "<dir>/<stream>/<start>.webm")
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z(-\d+)?\.(webm|mp4)$`, filepath.Base(ev.Path))
		info, err := os.Stat(ev.Path)
		require.NoError(t, err)
		assert.Equal(t, int64(ev.Session.Bytes), info.Size())
		paths = append(paths, ev.Path)
	}
	sort.Strings(paths) // named after their start
	return paths
}

// publishBlobs publishes blobs in process, one Write each, as a browser's
// dataavailable blobs come, and ends the session.
func publishBlobs(t *testing.T, hub *Hub, stream string, blobs [][]byte) {
	t.Helper()
	pub, err := hub.Publish(testCtx(t), stream, "")
	require.NoError(t, err)
	for _, b := range blobs {
		_, err := pub.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, pub.Close())
}

// fileProbe is what ffprobe says of a file (read three times, so not for
// a live URL: ffprobeFrames reads one once).
type fileProbe struct {
	frames   map[string]int // decoded frames by codec type (video, audio)
	end      float64        // the end of its last packet, s
	duration float64        // the format's duration, s; NaN when it has none
	keys     []float64      // video keyframes' times, s
}

// ffprobeOf probes path; level is ffprobe's -v, "error" unless the file
// is known to end inside an element ("fatal").
func ffprobeOf(t *testing.T, path, level string) fileProbe {
	t.Helper()
	ffprobe := testutil.Tool(t, "ffprobe")
	p := fileProbe{frames: map[string]int{}, duration: math.NaN()}
	out := run(t, ffprobe, "-v", level, "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames", "-of", "csv=p=0", path)
	for _, line := range strings.Fields(out) {
		kind, n, _ := strings.Cut(line, ",")
		frames, err := strconv.Atoi(n)
		require.NoError(t, err, line)
		p.frames[kind] += frames
	}
	out = run(t, ffprobe, "-v", level, "-show_entries", "packet=codec_type,pts_time,duration_time,flags", "-of", "csv=p=0", path)
	for _, line := range strings.Fields(out) {
		f := strings.Split(line, ",") // codec_type, pts_time, duration_time, flags[, side data]
		require.GreaterOrEqual(t, len(f), 4, line)
		pts, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, line)
		d, _ := strconv.ParseFloat(f[2], 64) // N/A: 0
		p.end = max(p.end, pts+d)
		if f[0] == "video" && strings.Contains(f[3], "K") {
			p.keys = append(p.keys, pts)
		}
	}
	out = strings.TrimSpace(run(t, ffprobe, "-v", level, "-show_entries", "format=duration", "-of", "csv=p=0", path))
	if d, err := strconv.ParseFloat(out, 64); err == nil {
		p.duration = d
	}
	return p
}

// run runs a tool and returns its standard output; it fails the test on an
// exit status other than 0 or anything on standard error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t), name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), stderr.String())
	require.Empty(t, stderr.String(), "%s %s", name, strings.Join(args, " "))
	return stdout.String()
}

// decodes checks that ffmpeg decodes the whole file with no error: it
// prints nothing at -v error and exits 0.
func decodes(t *testing.T, path string) {
	t.Helper()
	run(t, testutil.Tool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-")
}

// checkRecording checks the file the recorder made of source: decoded end to
// end with no error; every frame of the source, no more; a Duration; a
// seek to 90% of it starts at a keyframe before that point.
func checkRecording(t *testing.T, path string, source []byte) {
	t.Helper()
	decodes(t, path)
	src := filepath.Join(t.TempDir(), "source.webm")
	require.NoError(t, os.WriteFile(src, source, 0o644))
	want, got := ffprobeOf(t, src, "error"), ffprobeOf(t, path, "error")
	assert.Equal(t, want.frames, got.frames, "frames by codec type")
	assert.InDelta(t, want.end, got.end, 0.001, "the end of the last packet")
	// The Duration is the last block's time plus the interval before it
	// (a SimpleBlock has no duration): at most a frame off the end of the
	// last packet as ffprobe has it, which is 20 ms for Opus and 50 ms for
	// the slowest video of testdata (20 fps); ffmpeg's own files differ
	// from ffprobe's end by as much.
	require.False(t, math.IsNaN(got.duration), "ffprobe -show_format has no duration")
	assert.InDelta(t, want.end, got.duration, 0.06, "Duration")

	// Seeking: ffprobe reads from the CuePoint before 90% of the file, at
	// the last keyframe before it (every keyframe of testdata starts a
	// Cluster, so every one has a CuePoint); without video, at the last
	// Cluster before it.
	at := 0.9 * got.duration
	stream := "v:0"
	if got.frames["video"] == 0 {
		stream = "a:0"
	}
	out := run(t, testutil.Tool(t, "ffprobe"), "-v", "error", "-read_intervals", strconv.FormatFloat(at, 'f', 3, 64)+"%+#1",
		"-select_streams", stream, "-show_entries", "frame=key_frame,pts_time", "-of", "csv=p=0", path)
	key, pts, _ := strings.Cut(strings.TrimSpace(out), ",")
	assert.Equal(t, "1", key, "the first frame after a seek is a keyframe")
	first, err := strconv.ParseFloat(pts, 64)
	require.NoError(t, err, out)
	assert.LessOrEqual(t, first, at+0.001)
	if stream == "v:0" {
		key := 0.0
		for _, k := range want.keys {
			if k <= at {
				key = k
			}
		}
		assert.InDelta(t, key, first, 0.001, "the seek to %.3f s starts at the keyframe before it", at)
	} else {
		assert.Greater(t, first, 0.0, "the seek to %.3f s read from the start", at)
	}
	run(t, testutil.Tool(t, "ffmpeg"), "-v", "error", "-ss", strconv.FormatFloat(at, 'f', 3, 64), "-i", path, "-f", "null", "-")
	t.Logf("frames %v (source %v), Duration %.3f s (source's last packet ends at %.3f s), seek to %.3f s starts at %.3f s",
		got.frames, want.frames, got.duration, want.end, at, first)
}

// ffmpeg's files (known sizes, SeekHead, Cues of their own), written 5 KiB
// at a time: the recorder's file has the same frames and duration.
func TestRecordFFmpegFiles(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	for name, l := range webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg") {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			hub, ch := recordingHub(t, dir, nil)
			publishBlobs(t, hub, "ff", cutEvery(l.Data, 5120))
			checkRecording(t, recorded(t, ch, "ff", 1)[0], l.Data)
		})
	}
}

// Chromium's and Firefox's MediaRecorder blobs, one Write each.
func TestRecordBrowserRecordings(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	for _, rec := range webmtest.LoadRecordings(t, "testdata/recordings") {
		t.Run(rec.Name, func(t *testing.T) {
			dir := t.TempDir()
			hub, ch := recordingHub(t, dir, nil)
			publishBlobs(t, hub, "cam", rec.Blobs)
			checkRecording(t, recorded(t, ch, "cam", 1)[0], rec.Layout.Data)
		})
	}
}

// A browser session over a real WebSocket, as relay.js sends it.
func TestRecordWebSocketPublisher(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	rec := recording(t, "camera_vp9-opus_250_kf1000")
	dir := t.TempDir()
	opts, ch := recordEvents(dir, nil)
	var logs logRecords
	e := newEnv(t, append(opts, WithLogger(slog.New(&logs)))...)
	pub := e.publish("cam", PublishStart{MIME: rec.Layout.MIME})
	for _, b := range rec.Blobs {
		require.NoError(t, pub.Send(testCtx(t), b))
	}
	require.NoError(t, pub.Close())
	path := recorded(t, ch, "cam", 1)[0]
	checkRecording(t, path, rec.Layout.Data)
	for _, msg := range []string{"segrelay: recording started", "segrelay: recording ended"} {
		line := logs.find(msg, map[string]string{"stream": "cam", "path": path, "level": "INFO"})
		assert.NotNil(t, line, msg)
	}
}

func recording(t *testing.T, name string) webmtest.Recording {
	for _, rec := range webmtest.LoadRecordings(t, "testdata/recordings") {
		if rec.Name == name {
			return rec
		}
	}
	t.Fatalf("no recording %s", name)
	return webmtest.Recording{}
}

// The hook decides per stream; a relayed publisher is never recorded; two
// sessions make two files.
func TestRecordHookAndSessions(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	l := webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg")["vp8.webm"]
	dir := t.TempDir()
	hub, ch := recordingHub(t, dir, func(stream string) bool { return stream != "private" })
	// A session that publishes nothing: its recorder leaves with it.
	silent, err := hub.Publish(testCtx(t), "silent", "")
	require.NoError(t, err)
	assert.True(t, isRecording(hub, "silent"), "StreamInfo.Recording")
	assert.Equal(t, 0, hub.SubscriberCount("silent"), "the recorder is no viewer")
	assert.Equal(t, 0, hub.Stats().Subscribers, "the recorder is no viewer")
	assert.Equal(t, 0, silent.Subscribers(), "not a viewer the publisher is told of")
	require.NoError(t, silent.Close())
	waitFor(t, "the recorder to leave", func() bool { return !isRecording(hub, "silent") })
	// A session with an init and no media: its file is removed.
	cam := recording(t, "camera_vp9-opus_250_kf1000").Layout // a Segment of unknown size: its init is whole
	publishBlobs(t, hub, "empty", [][]byte{cam.Data[:cam.InitLen]})
	assert.Equal(t, EventRecordStart, nextRecordEvent(t, ch).Kind)
	end := nextRecordEvent(t, ch)
	assert.Equal(t, EventRecordEnd, end.Kind)
	assert.NoError(t, end.Err)
	assert.Zero(t, end.Session.Bytes)
	assert.NoFileExists(t, end.Path)
	publishBlobs(t, hub, "private", [][]byte{l.Data})
	relayed, err := hub.PublishRelayed(testCtx(t), "relayed", "")
	require.NoError(t, err)
	_, err = relayed.Write(l.Data)
	require.NoError(t, err)
	require.NoError(t, relayed.Close())
	publishBlobs(t, hub, "room", [][]byte{l.Data})
	publishBlobs(t, hub, "room", [][]byte{l.Data})
	for _, path := range recorded(t, ch, "room", 2) {
		checkRecording(t, path, l.Data)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "the streams the hook accepted that had an init have a directory")
	assert.Equal(t, "empty", entries[0].Name())
	assert.Equal(t, "room", entries[1].Name())
	empty, err := os.ReadDir(filepath.Join(dir, "empty"))
	require.NoError(t, err)
	assert.Empty(t, empty, "a file without media is removed")
	select {
	case ev := <-ch:
		t.Fatalf("an event too many: %v %s", ev.Kind, ev.Path)
	default:
	}
}

// An encoder restart (a new EBML header within the session) starts a new
// file.
func TestRecordEncoderRestart(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	l := webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg")["vp9_opus.webm"]
	dir := t.TempDir()
	hub, ch := recordingHub(t, dir, nil)
	publishBlobs(t, hub, "cam", append(cutEvery(l.Data, 5120), cutEvery(l.Data, 5120)...))
	for _, path := range recorded(t, ch, "cam", 2) {
		checkRecording(t, path, l.Data)
	}
}

// Shutdown in the middle of a session waits for the file, which is
// finished: decodable, with every frame published, a Duration.
func TestRecordShutdownMidSession(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	rec := recording(t, "camera_vp9-opus_250_kf1000")
	dir := t.TempDir()
	opts, ch := recordEvents(dir, nil)
	hub := NewHub(opts...)
	pub, err := hub.Publish(testCtx(t), "cam", "")
	require.NoError(t, err)
	half := rec.Blobs[:len(rec.Blobs)/2]
	var sent []byte
	for _, b := range half {
		_, err := pub.Write(b)
		require.NoError(t, err)
		sent = append(sent, b...)
	}
	// Whole elements held back to coalesce them go out now, as when the
	// browser pauses (Shutdown would drop them: Publisher.end's splitter.End
	// fails on the block the input stopped in, before its flush).
	require.NoError(t, pub.Flush())
	require.NoError(t, hub.Shutdown(testCtx(t)))
	assert.ErrorIs(t, pub.Close(), nil)
	// Shutdown returned: the events were delivered, the file is finished.
	require.Len(t, ch, 2)
	path := recorded(t, ch, "cam", 1)[0]
	decodes(t, path)
	src := filepath.Join(t.TempDir(), "source.webm")
	require.NoError(t, os.WriteFile(src, sent, 0o644))
	// The source is cut in the middle of a block: ffprobe says so.
	want, got := ffprobeOf(t, src, "fatal"), ffprobeOf(t, path, "error")
	assert.Equal(t, want.frames, got.frames, "every frame of the whole elements published")
	assert.False(t, math.IsNaN(got.duration), "a Duration")
}

// A recording that cannot be written (a file where the stream's directory
// should be) ends with an event; the stream is not affected: its subscriber
// gets every segment, the publisher never sees an error.
func TestRecordWriteError(t *testing.T) {
	l := webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg")["vp8.webm"]
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cam"), []byte("not a directory"), 0o644))
	var logs logRecords
	hub, ch := recordingHub(t, dir, nil, WithLogger(slog.New(&logs)))
	sub, err := hub.Subscribe(testCtx(t), "cam")
	require.NoError(t, err)
	defer sub.Close()
	publishBlobs(t, hub, "cam", cutEvery(l.Data, 5120))
	ev := nextRecordEvent(t, ch)
	require.Equal(t, EventRecordEnd, ev.Kind, "no start: the file could not begin")
	require.Error(t, ev.Err)
	assert.Contains(t, ev.Err.Error(), `relay: recording stream "cam"`)
	assert.Equal(t, filepath.Join(dir, "cam"), filepath.Dir(ev.Path))
	line := logs.find("segrelay: recording ended", map[string]string{"stream": "cam", "path": ev.Path})
	require.NotNil(t, line, "the log line")
	assert.Equal(t, "WARN", line["level"])
	assert.Equal(t, ev.Err.Error(), line["err"])
	got := sessionBytes(t, testCtx(t), sub)
	assert.True(t, bytes.Equal(l.Data, got), "the subscriber got every byte")
	waitFor(t, "the recorder to leave", func() bool { return !isRecording(hub, "cam") })
}

// Files begun in the same millisecond get different names.
func TestRecordFileNamesNeverCollide(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().UTC().Format(recordTimeLayout)
	var names []string
	for range 3 {
		f, path, err := createFile(filepath.Join(dir, "s"), base, ".webm")
		require.NoError(t, err)
		require.NoError(t, f.Close())
		names = append(names, filepath.Base(path))
	}
	assert.Equal(t, []string{base + ".webm", base + "-1.webm", base + "-2.webm"}, names)
}

// stallDisk makes files whose writes wait while the disk is stalled.
type stallDisk struct {
	mu    sync.RWMutex // held by stall
	path  atomic.Pointer[string]
	files chan *os.File
}

func (d *stallDisk) create(dir, base, ext string) (recordFile, string, error) {
	f, path, err := createFile(dir, base, ext)
	if err != nil {
		return nil, path, err
	}
	d.path.Store(&path)
	return &stallFile{File: f.(*os.File), disk: d}, path, nil
}

func (d *stallDisk) stall()  { d.mu.Lock() }
func (d *stallDisk) resume() { d.mu.Unlock() }

// written is the size of the file on the disk.
func (d *stallDisk) written() int64 {
	p := d.path.Load()
	if p == nil {
		return 0
	}
	info, err := os.Stat(*p)
	if err != nil {
		return 0
	}
	return info.Size()
}

type stallFile struct {
	*os.File
	disk *stallDisk
}

func (f *stallFile) WriteAt(p []byte, off int64) (int, error) {
	f.disk.mu.RLock()
	defer f.disk.mu.RUnlock()
	return f.File.WriteAt(p, off)
}

// A disk that stalls once the file has its first Cluster: the recorder's
// queue (4 × 16 KiB here) overflows and its file skips to the next
// keyframe; stalled longer, the recording ends as too slow. Either way the
// file decodes with no error, the stream's viewer gets every byte and the
// publisher never waits.
func TestRecordSlowDisk(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	rec := recording(t, "camera_vp9-opus_100_kf3000") // 100 ms blobs of at most 15.1 KiB
	for _, tc := range []struct {
		name    string
		skips   uint64 // the stream's overflows when the disk comes back
		wantErr error
	}{
		{"skip", 1, nil},
		{"too slow", 3, ErrTooSlow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hub, ch := recordingHub(t, dir, nil, WithSubscriberQueueBytes(16<<10))
			var disk stallDisk
			hub.cfg.recording.create = disk.create
			stalled := false
			t.Cleanup(func() { // before the hub's Shutdown, which waits for the recorder
				if stalled {
					disk.resume()
				}
			})

			// A viewer that keeps up: the publisher waits for it (the test
			// does, the hub does not) so that only the recorder overflows.
			sub, err := hub.Subscribe(testCtx(t), "cam")
			require.NoError(t, err)
			defer sub.Close()
			var got []byte
			read := func(upTo int64) {
				for int64(len(got)) < upTo {
					seg, err := sub.Next(testCtx(t))
					require.NoError(t, err)
					got = append(got, seg.Data...)
				}
			}

			pub, err := hub.Publish(testCtx(t), "cam", "")
			require.NoError(t, err)
			once := false
			for _, b := range rec.Blobs {
				_, err := pub.Write(b)
				require.NoError(t, err)
				require.NoError(t, pub.Flush()) // one segment per blob, whatever the timers
				read(pub.Published())
				switch {
				case !once && pub.Published() > int64(rec.Layout.InitLen):
					// Media was published: once the recorder wrote it, the
					// file is longer than its header (under 1 KB here).
					waitFor(t, "the file's first Cluster", func() bool { return disk.written() > 1024 })
					disk.stall()
					stalled, once = true, true
				case stalled && streamSkips(hub, "cam") >= tc.skips:
					disk.resume()
					stalled = false
				case once && !stalled:
					// The disk is back: a publisher at the pace of a
					// camera gives the recorder the time to catch up.
					waitFor(t, "the recorder to catch up", func() bool { return recorderQueued(hub, "cam") == 0 })
				}
			}
			require.False(t, stalled, "the recorder overflowed %d times, not %d", streamSkips(hub, "cam"), tc.skips)
			require.NoError(t, pub.Close())
			read(int64(len(rec.Layout.Data)))
			assert.True(t, bytes.Equal(rec.Layout.Data, got), "the viewer got every byte")

			start := nextRecordEvent(t, ch)
			require.Equal(t, EventRecordStart, start.Kind)
			end := nextRecordEvent(t, ch)
			require.Equal(t, EventRecordEnd, end.Kind)
			if tc.wantErr != nil {
				require.ErrorIs(t, end.Err, tc.wantErr)
			} else {
				require.NoError(t, end.Err)
			}
			assert.Positive(t, end.Session.Drops, "media skipped")
			decodes(t, end.Path)
			src := filepath.Join(t.TempDir(), "source.webm")
			require.NoError(t, os.WriteFile(src, rec.Layout.Data, 0o644))
			want, have := ffprobeOf(t, src, "error"), ffprobeOf(t, end.Path, "error")
			assert.Less(t, have.frames["video"], want.frames["video"])
			assert.Positive(t, have.frames["video"])
			t.Logf("%d of %d video frames, %d drops, duration %.3f s of %.3f", have.frames["video"], want.frames["video"], end.Session.Drops, have.duration, want.end)
		})
	}
}

// recorderQueued is what the live session's recorder has not written yet
// (0 once it ended).
func recorderQueued(hub *Hub, name string) int {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	st := hub.streams[name]
	if st == nil {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rec == nil {
		return 0
	}
	st.rec.mu.Lock()
	defer st.rec.mu.Unlock()
	return st.rec.queued
}

func streamSkips(hub *Hub, name string) uint64 {
	for _, info := range hub.Streams() {
		if info.Name == name {
			return info.Skips
		}
	}
	return 0
}

// fullDisk makes files that take limit bytes, then fail as a full disk does.
type fullDisk struct{ limit int64 }

func (d fullDisk) create(dir, base, ext string) (recordFile, string, error) {
	f, path, err := createFile(dir, base, ext)
	if err != nil {
		return nil, path, err
	}
	return &fullFile{File: f.(*os.File), limit: d.limit}, path, nil
}

type fullFile struct {
	*os.File
	limit int64
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

// A disk that fills up in the middle of a session ends the recording with
// the error, and nothing else: the viewer gets every byte, the publisher
// never sees it.
func TestRecordDiskFull(t *testing.T) {
	l := webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg")["vp9_opus.webm"]
	dir := t.TempDir()
	hub, ch := recordingHub(t, dir, nil)
	hub.cfg.recording.create = fullDisk{limit: 40 << 10}.create
	sub, err := hub.Subscribe(testCtx(t), "cam")
	require.NoError(t, err)
	defer sub.Close()
	publishBlobs(t, hub, "cam", cutEvery(l.Data, 5120))
	got := sessionBytes(t, testCtx(t), sub)
	assert.True(t, bytes.Equal(l.Data, got), "the viewer got every byte")
	start := nextRecordEvent(t, ch)
	require.Equal(t, EventRecordStart, start.Kind)
	end := nextRecordEvent(t, ch)
	require.Equal(t, EventRecordEnd, end.Kind)
	require.ErrorIs(t, end.Err, syscall.ENOSPC)
	assert.Contains(t, end.Err.Error(), `relay: recording stream "cam"`)
	assert.Equal(t, start.Path, end.Path)
	// The file stops where the disk did, after a whole piece (each is less
	// than the writer's 64 KiB buffer here, so written at once): a live
	// WebM (its last Cluster's size and the Segment's unknown) that plays
	// from start to there.
	decodes(t, end.Path)
	waitFor(t, "the recorder to leave", func() bool { return !isRecording(hub, "cam") })
}

// Shutdown whose context ends while a recorder waits for a stalled disk:
// the recorder ends its file with what it wrote instead of writing what it
// has queued, and Shutdown returns the context's error.
func TestRecordShutdownDeadline(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	rec := recording(t, "camera_vp9-opus_250_kf1000")
	dir := t.TempDir()
	opts, ch := recordEvents(dir, nil)
	hub := NewHub(opts...)
	var disk stallDisk
	hub.cfg.recording.create = disk.create
	pub, err := hub.Publish(testCtx(t), "cam", "")
	require.NoError(t, err)
	stalled := false
	for _, b := range rec.Blobs {
		_, err := pub.Write(b)
		require.NoError(t, err)
		require.NoError(t, pub.Flush())
		if !stalled && pub.Published() > int64(rec.Layout.InitLen) {
			waitFor(t, "the file's first Cluster", func() bool { return disk.written() > 1024 })
			disk.stall()
			stalled = true
		}
	}
	require.True(t, stalled)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- hub.Shutdown(ctx) }()
	<-hub.recording.Done() // Shutdown gave up waiting for the recorder
	disk.resume()
	require.ErrorIs(t, <-shut, context.DeadlineExceeded)

	require.Len(t, ch, 2, "Shutdown returned: the events were delivered")
	<-ch
	end := <-ch
	require.Equal(t, EventRecordEnd, end.Kind)
	require.ErrorIs(t, end.Err, context.Canceled)
	decodes(t, end.Path)
	src := filepath.Join(t.TempDir(), "source.webm")
	require.NoError(t, os.WriteFile(src, rec.Layout.Data, 0o644))
	want, have := ffprobeOf(t, src, "error"), ffprobeOf(t, end.Path, "error")
	assert.Positive(t, have.frames["video"])
	assert.Less(t, have.frames["video"], want.frames["video"], "what was queued is not written")
}

// Segments that do not parse as the session's container (here an MP4 init
// cut short) are not recorded: the event says why, no file is left, the
// stream goes on.
func TestRecordBadInit(t *testing.T) {
	dir := t.TempDir()
	hub, ch := recordingHub(t, dir, nil)
	pub, err := hub.Publish(testCtx(t), "mp4", "video/mp4")
	require.NoError(t, err)
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("\x00\x00\x00\x18ftypmp42")}))
	ev := nextRecordEvent(t, ch)
	require.Equal(t, EventRecordEnd, ev.Kind)
	require.ErrorIs(t, ev.Err, ErrBadMP4)
	assert.NoFileExists(t, ev.Path)
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("moof")}))
	require.NoError(t, pub.Close())
}

// isRecording reports StreamInfo.Recording of stream name.
func isRecording(hub *Hub, name string) bool {
	for _, st := range hub.Streams() {
		if st.Name == name {
			return st.Recording
		}
	}
	return false
}

// The recorder is no viewer: it takes no subscriber slot, and every count
// the hub reports leaves it out (StreamInfo.Recording shows it).
func TestRecorderIsNoViewer(t *testing.T) {
	hub, _ := recordingHub(t, t.TempDir(), nil, WithMaxSubscribers(1), WithMaxSubscribersPerStream(1))
	pub, err := hub.Publish(testCtx(t), "cam", "")
	require.NoError(t, err)
	defer pub.Close()
	require.True(t, isRecording(hub, "cam"))
	sub, err := hub.Subscribe(testCtx(t), "cam")
	require.NoError(t, err, "the recorder took no slot")
	defer sub.Close()
	_, err = hub.Subscribe(testCtx(t), "cam")
	require.ErrorIs(t, err, ErrTooManySubscribers)
	assert.Equal(t, 1, hub.Stats().Subscribers)
	assert.Equal(t, 1, hub.SubscriberCount("cam"))
	assert.Equal(t, 1, pub.Subscribers())
	assert.Equal(t, 1, hub.Streams()[0].Subscribers)
}

// A recorder that ends on its own (its file cannot begin) while the
// session goes on gives back no subscriber slot: it never took one.
func TestRecorderEndingOnItsOwnKeepsTheSlots(t *testing.T) {
	l := webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg")["vp8.webm"]
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cam"), []byte("not a directory"), 0o644))
	hub, ch := recordingHub(t, dir, nil, WithMaxSubscribers(1))
	sub, err := hub.Subscribe(testCtx(t), "cam")
	require.NoError(t, err)
	defer sub.Close()
	pub, err := hub.Publish(testCtx(t), "cam", "")
	require.NoError(t, err)
	defer pub.Close()
	_, err = pub.Write(l.Data)
	require.NoError(t, err)
	ev := nextRecordEvent(t, ch)
	require.Equal(t, EventRecordEnd, ev.Kind)
	waitFor(t, "the recorder to leave", func() bool { return !isRecording(hub, "cam") })
	_, err = hub.Subscribe(testCtx(t), "cam")
	require.ErrorIs(t, err, ErrTooManySubscribers, "the one slot is still the subscriber's")
}
