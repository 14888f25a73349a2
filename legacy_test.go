package relay

import (
	"bytes"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm/webmtest"
)

// How a legacy publisher ends a file.
const (
	endShort = "short" // the last chunk is shorter than the chunk size
	endEmpty = "empty" // an exact multiple, then an empty message
	endIdle  = "idle"  // an exact multiple, then nothing until the idle timeout
)

// legacySend sends file in the legacy framing.
func legacySend(t *testing.T, c *websocket.Conn, file []byte, chunk int, end string) {
	t.Helper()
	ctx := testCtx(t)
	if end != endShort {
		require.Zero(t, len(file)%chunk, "the file must be an exact multiple")
	}
	for len(file) > 0 {
		n := min(chunk, len(file))
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, file[:n]))
		file = file[n:]
	}
	if end == endEmpty {
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, nil))
	}
}

// legacyRead reads one file in the legacy framing.
func legacyRead(t *testing.T, c *websocket.Conn, chunk int) []byte {
	t.Helper()
	ctx := testCtx(t)
	var file []byte
	for {
		typ, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, typ)
		require.LessOrEqual(t, len(b), chunk)
		file = append(file, b...)
		if len(b) < chunk {
			return file
		}
	}
}

// padToMultiple appends a Void element so the file's size is a multiple of
// chunk (a real file can be, by chance).
func padToMultiple(file []byte, chunk int) []byte {
	n := chunk - len(file)%chunk
	if n < 3 {
		n += chunk
	}
	pad := []byte{0xEC, 0x40 | byte((n-3)>>8), byte(n - 3)}
	pad = append(pad, make([]byte, n-3)...)
	return append(append([]byte(nil), file...), pad...)
}

func legacyFilesForTest() [][]byte {
	a := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	b := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2, FrameBytes: 2000})
	c := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 4, KeyEvery: 3})
	return [][]byte{a.Data, padToMultiple(b.Data, 5120), padToMultiple(c.Data, 5120)}
}

// The blog design's pages work unchanged: files arrive as they were sent,
// whatever way each file ended.
func TestLegacyToLegacy(t *testing.T) {
	// The idle end must not fire between two chunks of a busy test client
	// (assumption: it is never starved for 2 s between two writes).
	e := newEnv(t, WithLegacyFileTimeout(2*time.Second))
	viewers := []*websocket.Conn{e.dialRaw("room/subscribe"), e.dialRaw("room/subscribe")}
	pub := e.dialRaw("room/publish")
	files := legacyFilesForTest()
	for i, end := range []string{endShort, endEmpty, endIdle} {
		legacySend(t, pub, files[i], 5120, end)
		for _, v := range viewers {
			got := legacyRead(t, v, 5120)
			assert.True(t, bytes.Equal(files[i], got), "file %d (%s): got %d bytes, want %d", i, end, len(got), len(files[i]))
		}
	}

	// The sender never gets its own data back: the first thing it receives
	// is the hub's close.
	require.NoError(t, e.hub.Shutdown(testCtx(t)))
	_, _, err := pub.Read(testCtx(t))
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
}

// A legacy publisher watched by a protocol v1 subscriber: each file is an
// init and its Clusters; the media after each new init is a discontinuity.
func TestLegacyPublisherToV1Subscriber(t *testing.T) {
	// Each file ends with a short chunk: no idle-file timeout is needed,
	// and a 1 s one would split a file whose sender the machine starved.
	e := newEnv(t, WithLegacyFileTimeout(time.Minute))
	sub := e.subscribe("room")
	pub := e.dialRaw("room/publish")
	a := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	b := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2})
	legacySend(t, pub, a.Data, 5120, endShort)
	ctx := testCtx(t)

	next := func() Segment {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		return seg
	}
	start := next()
	require.Equal(t, KindStart, start.Kind)
	assert.Equal(t, a.MIME, start.MIME, "the mime is read from the file")
	var seq uint64
	for fi, l := range []webmtest.Layout{a, b} {
		if fi == 0 {
			// At once: a new init waits behind the file before it while
			// the subscriber's queue has room.
			legacySend(t, pub, b.Data, 5120, endShort)
		}
		init := next()
		require.Equal(t, KindInit, init.Kind)
		assert.Equal(t, l.Data[:l.InitLen], init.Data)
		if seq > 0 {
			assert.Equal(t, seq+1, init.Seq)
		}
		seq = init.Seq
		for ci, c := range l.Clusters {
			seg := next()
			require.Equal(t, KindMedia, seg.Kind)
			seq++
			assert.Equal(t, seq, seg.Seq)
			assert.Equal(t, c.Keyframe, seg.Keyframe)
			assert.Equal(t, fi > 0 && ci == 0, seg.Discontinuity, "file %d cluster %d", fi, ci)
			assert.Equal(t, l.Data[c.Offset:c.Offset+c.Len], seg.Data, "file %d cluster %d: exact bytes", fi, ci)
		}
	}
	require.NoError(t, pub.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, KindEnd, next().Kind)
}

// A protocol v1 publisher watched by a legacy subscriber: standalone files,
// each the init and one keyframe-to-keyframe run of Clusters.
func TestV1PublisherToLegacySubscriber(t *testing.T) {
	e := newEnv(t)
	viewer := e.dialRaw("room/subscribe")
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 6, KeyEvery: 2})
	pub := e.publish("room", PublishStart{MIME: l.MIME})
	for _, m := range chromeLike(l) {
		require.NoError(t, pub.Send(testCtx(t), m))
	}
	require.NoError(t, pub.Close()) // the last run is passed on at the end

	init := l.Data[:l.InitLen]
	cl := l.Clusters
	want := [][]byte{
		append(append([]byte{}, init...), l.Data[cl[0].Offset:cl[2].Offset]...),
		append(append([]byte{}, init...), l.Data[cl[2].Offset:cl[4].Offset]...),
		append(append([]byte{}, init...), l.Data[cl[4].Offset:]...),
	}
	for i, w := range want {
		got := legacyRead(t, viewer, 5120)
		assert.True(t, bytes.Equal(w, got), "file %d: got %d bytes, want %d", i, len(got), len(w))
	}
}

// Real ffmpeg files (known sizes, Cues) through the legacy framing.
func TestLegacyFFmpegFiles(t *testing.T) {
	e := newEnv(t, WithLegacyFileTimeout(time.Minute)) // files end with a short chunk

	viewer := e.dialRaw("f/subscribe")
	sub := e.subscribe("f")
	pub := e.dialRaw("f/publish")
	for name, l := range webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg") {
		legacySend(t, pub, l.Data, 5120, endShort)
		got := legacyRead(t, viewer, 5120)
		assert.True(t, bytes.Equal(l.Data, got), name)
		ctx := testCtx(t)
		var seg Segment
		var err error
		for seg.Kind != KindInit {
			seg, err = sub.Next(ctx)
			require.NoError(t, err)
		}
		assert.Equal(t, l.Data[:l.InitLen], seg.Data, name)
		ends := webmtest.OracleClusterEnds(t, l.Data) // known sizes: independent of the splitter
		for _, c := range l.Clusters {
			seg, err = sub.Next(ctx)
			require.NoError(t, err)
			assert.Equal(t, c.Keyframe, seg.Keyframe, name)
			assert.True(t, bytes.Equal(l.Data[c.Offset:ends[c.Offset]], seg.Data), "%s: Cluster at %d: %d bytes, want %d", name, c.Offset, len(seg.Data), ends[c.Offset]-c.Offset)
		}
	}
}

func TestLegacyBadFileCloses1007(t *testing.T) {
	e := newEnv(t)
	c := e.dialRaw("room/publish")
	ctx := testCtx(t)
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("not a webm file")))
	_, _, err := c.Read(ctx)
	assert.Equal(t, websocket.StatusInvalidFramePayloadData, websocket.CloseStatus(err), "%v", err)
}

func TestLegacyFileTooBigCloses1009(t *testing.T) {
	e := newEnv(t, WithMaxSegmentBytes(12000))
	c := e.dialRaw("room/publish")
	ctx := testCtx(t)
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		err = c.Write(ctx, websocket.MessageBinary, make([]byte, 5120))
	}
	_, _, err = c.Read(ctx)
	assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err), "%v", err)
}

func TestLegacyAssembler(t *testing.T) {
	a := legacyAssembler{chunkSize: 4, maxFile: 100}
	for _, step := range []struct {
		msg  string
		file string
	}{
		{"abcd", ""}, {"efgh", ""}, {"ij", "abcdefghij"},
		{"", ""}, // an empty message with nothing pending ends nothing
		{"klmn", ""}, {"", "klmn"},
		{"x", "x"},
	} {
		f, err := a.add([]byte(step.msg))
		require.NoError(t, err)
		assert.Equal(t, step.file, string(f), "after %q", step.msg)
	}
	_, err := a.add([]byte("abcd"))
	require.NoError(t, err)
	assert.Equal(t, "abcd", string(a.flush()), "idle timeout")
	assert.Nil(t, a.flush())
	_, err = a.add(make([]byte, 101))
	assert.ErrorIs(t, err, ErrSegmentTooBig)
}

func FuzzLegacyAssembler(f *testing.F) {
	f.Add(uint8(4), []byte("abcdefghij"), []byte{4, 4, 2})
	f.Add(uint8(5), []byte("0123456789"), []byte{5, 5, 0})
	f.Add(uint8(1), []byte(""), []byte{0, 0})
	f.Fuzz(func(t *testing.T, chunk uint8, data []byte, cuts []byte) {
		if chunk == 0 {
			return
		}
		a := legacyAssembler{chunkSize: int(chunk), maxFile: 1 << 20}
		var files, rest []byte
		for _, c := range cuts {
			n := min(int(c), len(data))
			msg := data[:n]
			data = data[n:]
			f, err := a.add(msg)
			require.NoError(t, err)
			if len(msg) < int(chunk) {
				require.Equal(t, len(a.buf), 0, "a short message ends the file")
			} else {
				require.Nil(t, f, "a full chunk ends nothing")
			}
			files = append(files, f...)
			rest = append(rest, msg...)
		}
		files = append(files, a.flush()...)
		require.Equal(t, rest, files, "no byte lost or added")
	})
}

// A legacy subscriber of a stream whose publisher has gone keeps waiting
// and gets the next session's files.
func TestLegacySubscriberAcrossSessions(t *testing.T) {
	e := newEnv(t)
	viewer := e.dialRaw("room/subscribe")
	for range 2 {
		pub := e.dialRaw("room/publish")
		file := webmtest.Build(webmtest.Spec{Clusters: 2}).Data
		legacySend(t, pub, file, 5120, endShort)
		assert.Equal(t, file, legacyRead(t, viewer, 5120))
		require.NoError(t, pub.Close(websocket.StatusNormalClosure, ""))
		waitFor(t, "the publisher to leave", func() bool { return e.hub.Stats().Publishers == 0 })
	}
}

// A burst of legacy files (what a page flushes after its socket stalled for
// a few seconds: five files back to back, sizes as a page makes them) costs
// its viewers nothing while their queues have room: a legacy viewer gets
// every file, in order, and a protocol v1 viewer every segment, neither is
// closed and nothing counts as a skip.
func TestLegacyBurstCostsNothing(t *testing.T) {
	e := newEnv(t, WithLegacyFileTimeout(time.Minute))
	legacyViewer := e.dialRaw("room/subscribe")
	v1 := e.subscribe("room")
	pub := e.dialRaw("room/publish")
	var files [][]byte
	var clusters int
	for i, spec := range []webmtest.Spec{
		{Audio: true, Clusters: 2, FrameBytes: 1000},
		{Audio: true, Clusters: 3, FrameBytes: 1500},
		{Audio: true, Clusters: 1, FrameBytes: 1200},
		{Audio: true, Clusters: 4, FrameBytes: 1800},
		{Audio: true, Clusters: 3, FrameBytes: 2400},
	} {
		l := webmtest.Build(spec)
		require.NotZero(t, len(l.Data)%5120, "file %d ends with a short chunk", i)
		files = append(files, l.Data)
		clusters += len(l.Clusters)
	}
	for _, f := range files { // back to back, before anyone reads
		legacySend(t, pub, f, 5120, endShort)
	}
	for i, f := range files {
		got := legacyRead(t, legacyViewer, 5120)
		assert.True(t, bytes.Equal(f, got), "file %d: got %d bytes, want %d", i, len(got), len(f))
	}
	ctx := testCtx(t)
	inits, media := 0, 0
	for inits+media < len(files)+clusters {
		seg, err := v1.Next(ctx)
		require.NoError(t, err, "the v1 viewer is not closed")
		switch seg.Kind {
		case KindInit:
			inits++
		case KindMedia:
			media++
		}
	}
	assert.Equal(t, len(files), inits)
	assert.Equal(t, clusters, media)
	st := e.hub.Streams()[0]
	assert.Zero(t, st.Skips, "no init replaced, no skip")
	assert.Zero(t, st.SlowClosed)
}
