package webm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/ebml"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

const testMaxPiece = 16 << 20

// The real streams are the module's, shared with the relay package's tests.
const (
	recordingsDir = "../../testdata/recordings"
	ffmpegDir     = "../../testdata/ffmpeg"
)

// splitRun is what a splitter produced for one input.
type splitRun struct {
	pieces   []Piece
	starts   []int    // stream offset of each piece
	calls    []int    // which write call emitted each piece (len(chunks): end)
	mimes    []string // mime() when each piece was emitted
	err      error    // the first error of write or end
	maxHold  int      // the most bytes held between writes
	maxPiece int
}

func (r splitRun) data() []byte {
	var b []byte
	for _, p := range r.pieces {
		b = append(b, p.Data...)
	}
	return b
}

// marks lists the init and Cluster-start pieces as "kind@offset".
func (r splitRun) marks() []string {
	var m []string
	for i, p := range r.pieces {
		switch {
		case p.Init:
			m = append(m, fmt.Sprintf("init@%d", r.starts[i]))
		case p.ClusterStart:
			m = append(m, fmt.Sprintf("cluster@%d key=%v", r.starts[i], p.Keyframe))
		}
	}
	return m
}

// runSplitter writes chunks in order, then ends.
func runSplitter(maxPiece int, chunks ...[]byte) splitRun {
	s := NewSplitter(maxPiece)
	r := splitRun{maxPiece: maxPiece}
	off, call := 0, 0
	emit := func(p Piece) error {
		r.pieces = append(r.pieces, p)
		r.starts = append(r.starts, off)
		r.calls = append(r.calls, call)
		r.mimes = append(r.mimes, s.MIME())
		off += len(p.Data)
		return nil
	}
	for _, c := range chunks {
		if r.err = s.Write(c, emit); r.err != nil {
			return r
		}
		r.maxHold = max(r.maxHold, len(s.hold))
		call++
	}
	r.err = s.End(emit)
	return r
}

// chunksOf cuts data in pieces of n bytes.
func chunksOf(data []byte, n int) [][]byte {
	var out [][]byte
	for len(data) > n {
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// webmBoundaries returns the offsets where an element at level 0, 1 or 2 (a
// Cluster child) starts or ends: the only places a piece may end. They come
// from the tests' own EBML reader (webmtest/oracle.go), not the splitter's.
func webmBoundaries(t testing.TB, data []byte) map[int]bool {
	at := map[int]bool{0: true, len(data): true}
	for _, e := range webmtest.OracleWalk(t, data) {
		at[e.Start], at[e.End] = true, true
	}
	return at
}

// checkRun checks a splitter's pieces for one stream, or for several
// concatenated, against their layouts.
func checkRun(t *testing.T, r splitRun, data []byte, layouts []webmtest.Layout) {
	t.Helper()
	require.NoError(t, r.err)
	require.True(t, bytes.Equal(data, r.data()), "pieces are not the input")

	type want struct {
		init []byte
		mime string
		key  bool
	}
	starts := map[int]want{} // where init and Cluster pieces must start
	var clusterOffs []int
	var clusters []webmtest.Cluster // with offsets in data, when their Len is known
	base := 0
	for _, l := range layouts {
		starts[base] = want{init: l.Data[:l.InitLen], mime: l.MIME}
		for _, c := range l.Clusters {
			starts[base+c.Offset] = want{key: c.Keyframe}
			clusterOffs = append(clusterOffs, base+c.Offset)
			if c.Len > 0 && c.Len <= r.maxPiece {
				c.Offset += base
				clusters = append(clusters, c)
			}
		}
		base += len(l.Data)
	}
	// At most one piece per Cluster per write call (unless the Cluster is
	// cut for being larger than maxPiece).
	perCall := map[[2]int]int{}
	for i, start := range r.starts {
		for ci, c := range clusters {
			if c.Offset <= start && start < c.Offset+c.Len {
				perCall[[2]int{r.calls[i], ci}]++
				assert.Equal(t, 1, perCall[[2]int{r.calls[i], ci}], "second piece of the Cluster at %d in write %d", c.Offset, r.calls[i])
			}
		}
	}
	bounds := webmBoundaries(t, data)

	seen := map[int]bool{}
	for i, p := range r.pieces {
		start, end := r.starts[i], r.starts[i]+len(p.Data)
		require.NotEmpty(t, p.Data, "piece %d is empty", i)
		assert.True(t, bounds[end], "piece %d [%d,%d) does not end at an element boundary", i, start, end)
		w, ok := starts[start]
		switch {
		case p.Init:
			require.True(t, ok && w.init != nil, "init piece at %d, where no init starts", start)
			assert.Equal(t, w.init, p.Data, "init piece at %d", start)
			assert.Equal(t, w.mime, r.mimes[i], "mime when the init at %d is emitted", start)
		case p.ClusterStart:
			require.True(t, ok && w.init == nil, "Cluster piece at %d, where no Cluster starts", start)
			assert.Equal(t, w.key, p.Keyframe, "keyframe flag of the Cluster at %d", start)
		default:
			assert.False(t, ok, "piece at %d starts an init or Cluster but is not flagged", start)
			assert.False(t, p.Keyframe, "keyframe on a continuation piece at %d", start)
		}
		if ok {
			seen[start] = true
		}
		for _, c := range clusterOffs {
			assert.False(t, start < c && c < end, "piece [%d,%d) crosses the Cluster at %d", start, end, c)
		}
	}
	for off := range starts {
		assert.True(t, seen[off], "no piece starts at %d", off)
	}
	assert.Equal(t, layouts[len(layouts)-1].MIME, lastMIME(r))
}

func lastMIME(r splitRun) string {
	if len(r.mimes) == 0 {
		return ""
	}
	return r.mimes[len(r.mimes)-1]
}

var testSpecs = map[string]webmtest.Spec{
	"video":        {Clusters: 4},
	"audio+video":  {Audio: true, Clusters: 6},
	"blockgroups":  {BlockGroups: true, Clusters: 4, KeyEvery: 2},
	"alpha+audio":  {Audio: true, BlockGroups: true, Clusters: 6, KeyEvery: 3},
	"known sizes":  {KnownSizes: true, Clusters: 4},
	"known+audio":  {KnownSizes: true, Audio: true, Clusters: 5, KeyEvery: 2},
	"audio only":   {Audio: true, NoVideo: true, Clusters: 4},
	"key every 3":  {Audio: true, Clusters: 7, KeyEvery: 3},
	"one cluster":  {Clusters: 1, Frames: 1},
	"long cluster": {Audio: true, Clusters: 2, Frames: 40, FrameBytes: 20000},
}

func TestBuildWebM(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	assert.Equal(t, "video/webm;codecs=vp8,opus", l.MIME)
	require.Len(t, l.Clusters, 3)
	assert.Equal(t, l.InitLen, l.Clusters[0].Offset)
	assert.Equal(t, []bool{true, false, true}, []bool{l.Clusters[0].Keyframe, l.Clusters[1].Keyframe, l.Clusters[2].Keyframe})
	assert.Equal(t, len(l.Data), l.Clusters[2].Offset+l.Clusters[2].Len)
	// Like Chrome: EBML header (36 bytes here too), unknown-size Segment.
	assert.Equal(t, []byte{0x1A, 0x45, 0xDF, 0xA3}, l.Data[:4])
	assert.Equal(t, []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, l.Data[36:48])
	webmBoundaries(t, l.Data)

	k := webmtest.Build(webmtest.Spec{KnownSizes: true, Clusters: 2})
	assert.Equal(t, "video/webm;codecs=vp8", k.MIME)
	webmBoundaries(t, k.Data)
	a := webmtest.Build(webmtest.Spec{Audio: true, NoVideo: true, Clusters: 2})
	assert.Equal(t, "audio/webm;codecs=opus", a.MIME)
}

func TestWebMSplitterProperties(t *testing.T) {
	for name, spec := range testSpecs {
		t.Run(name, func(t *testing.T) {
			l := webmtest.Build(spec)
			layouts := []webmtest.Layout{l}
			t.Run("whole", func(t *testing.T) {
				r := runSplitter(testMaxPiece, l.Data)
				checkRun(t, r, l.Data, layouts)
				// Whole input: one init, then one piece per Cluster (and Cues).
				assert.LessOrEqual(t, len(r.pieces), 2+len(l.Clusters))
			})
			t.Run("5120", func(t *testing.T) {
				checkRun(t, runSplitter(testMaxPiece, chunksOf(l.Data, 5120)...), l.Data, layouts)
			})
			t.Run("64K", func(t *testing.T) {
				checkRun(t, runSplitter(testMaxPiece, chunksOf(l.Data, 64<<10)...), l.Data, layouts)
			})
		})
	}
}

// TestWebMSplitterEveryOffset cuts small streams in two at every byte, and in
// 1-byte writes.
func TestWebMSplitterEveryOffset(t *testing.T) {
	specs := map[string]webmtest.Spec{
		"video":       {Clusters: 3, Frames: 3, FrameBytes: 300},
		"audio+video": {Audio: true, Clusters: 3, Frames: 3, FrameBytes: 300, KeyEvery: 2},
		"blockgroups": {Audio: true, BlockGroups: true, Clusters: 3, Frames: 3, FrameBytes: 300, KeyEvery: 2},
		"known sizes": {KnownSizes: true, Audio: true, Clusters: 3, Frames: 3, FrameBytes: 300},
		"audio only":  {Audio: true, NoVideo: true, Clusters: 3, Frames: 3},
		"key every 3": {Clusters: 4, Frames: 2, FrameBytes: 200, KeyEvery: 3},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			l := webmtest.Build(spec)
			layouts := []webmtest.Layout{l}
			want := runSplitter(testMaxPiece, l.Data).marks()
			for cut := 0; cut <= len(l.Data); cut++ {
				r := runSplitter(testMaxPiece, l.Data[:cut], l.Data[cut:])
				checkRun(t, r, l.Data, layouts)
				require.Equal(t, want, r.marks(), "cut at %d", cut)
				if t.Failed() {
					t.Fatalf("cut at %d", cut)
				}
			}
			r := runSplitter(testMaxPiece, chunksOf(l.Data, 1)...)
			checkRun(t, r, l.Data, layouts)
		})
	}
}

// TestWebMSplitterChromeBlobs feeds a stream the way MediaRecorder delivers
// it: a first blob of 1 byte (0x1A), then blobs that each end 1 byte into the
// next element.
func TestWebMSplitterChromeBlobs(t *testing.T) {
	for _, spec := range []webmtest.Spec{
		{Audio: true, Clusters: 8, Frames: 8, FrameBytes: 4000, KeyEvery: 3},
		{BlockGroups: true, Clusters: 4, Frames: 10},
		{Clusters: 3, Frames: 20, FrameBytes: 9000},
	} {
		l := webmtest.Build(spec)
		bounds := webmBoundaries(t, l.Data)
		var cuts []int
		for off := range bounds {
			cuts = append(cuts, off)
		}
		slices.Sort(cuts)
		blobs := [][]byte{l.Data[:1]}
		from := 1
		for _, c := range cuts {
			// A blob every ~10 KB, ending 1 byte into an element.
			if c+1 < len(l.Data) && c+1-from >= 10000 {
				blobs = append(blobs, l.Data[from:c+1])
				from = c + 1
			}
		}
		blobs = append(blobs, l.Data[from:])
		require.Greater(t, len(blobs), 3)
		r := runSplitter(testMaxPiece, blobs...)
		checkRun(t, r, l.Data, []webmtest.Layout{l})

		// Media is forwarded as soon as it is whole: what is held back
		// after a write is at most the element it ends in, except for a
		// Cluster's first piece waiting for its first video block.
		assert.Less(t, r.maxHold, 2*spec.FrameBytes+1000)
	}
}

func TestWebMSplitterRealStreams(t *testing.T) {
	type stream struct {
		name   string
		blobs  [][]byte // as delivered; nil for a file
		layout webmtest.Layout
	}
	var streams []stream
	for _, rec := range webmtest.LoadRecordings(t, recordingsDir) {
		streams = append(streams, stream{rec.Name, rec.Blobs, rec.Layout})
	}
	for name, l := range webmtest.LoadFFmpegFiles(t, ffmpegDir) {
		streams = append(streams, stream{name, nil, l})
	}
	for _, st := range streams {
		t.Run(st.name, func(t *testing.T) {
			l := st.layout
			layouts := []webmtest.Layout{l}
			if st.blobs != nil {
				checkRun(t, runSplitter(testMaxPiece, st.blobs...), l.Data, layouts)
			}
			checkRun(t, runSplitter(testMaxPiece, l.Data), l.Data, layouts)
			checkRun(t, runSplitter(testMaxPiece, chunksOf(l.Data, 5120)...), l.Data, layouts)
			checkRun(t, runSplitter(testMaxPiece, chunksOf(l.Data, 1)...), l.Data, layouts)
		})
	}
}

// TestWebMSplitterForwardsFast checks when a Cluster's first piece leaves:
// as soon as the first video block's flags byte is in (a SimpleBlock), and
// with everything before that block in it.
func TestWebMSplitterForwardsFast(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2, Frames: 3, FrameBytes: 500})
	c := l.Clusters[0] // starts with audio blocks, then a video keyframe
	// Find the first video SimpleBlock: the first on track 2.
	video := -1
	for _, e := range webmtest.OracleWalk(t, l.Data) {
		if e.Level == 2 && e.Start > c.Offset && e.ID == 0xA3 && l.Data[e.Data] == 0x82 { // SimpleBlock, track 2
			video = e.Start
			break
		}
	}
	require.Greater(t, video, c.Offset+20, "the Cluster must start with audio")
	flagsAt := video + 1 + 2 + 1 + 2 // ID 0xA3, 2-byte size, track, timecode

	s := NewSplitter(testMaxPiece)
	var got *Piece
	for i := 0; i < len(l.Data) && got == nil; i++ {
		require.NoError(t, s.Write(l.Data[i:i+1], func(p Piece) error {
			if p.ClusterStart {
				got = &p
				assert.Equal(t, flagsAt, i, "first piece emitted when the flags byte came")
			}
			return nil
		}))
	}
	require.NotNil(t, got)
	assert.True(t, got.Keyframe)
	assert.Equal(t, l.Data[c.Offset:video], got.Data)
}

func TestWebMSplitterConcatenated(t *testing.T) {
	cases := map[string][2]webmtest.Spec{
		"unknown sizes":    {{Clusters: 3}, {Audio: true, Clusters: 3, KeyEvery: 2}},
		"known then live":  {{KnownSizes: true, Clusters: 2}, {Audio: true, Clusters: 2}},
		"live then known":  {{Audio: true, NoVideo: true, Clusters: 2}, {KnownSizes: true, BlockGroups: true, Clusters: 2}},
		"both known sizes": {{KnownSizes: true, Clusters: 2}, {KnownSizes: true, Audio: true, Clusters: 2}},
	}
	for name, specs := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := webmtest.Build(specs[0]), webmtest.Build(specs[1])
			data := append(append([]byte(nil), a.Data...), b.Data...)
			for _, chunks := range [][][]byte{{data}, chunksOf(data, 5120), chunksOf(data, 7)} {
				r := runSplitter(testMaxPiece, chunks...)
				checkRun(t, r, data, []webmtest.Layout{a, b})
				inits := 0
				for _, p := range r.pieces {
					if p.Init {
						inits++
					}
				}
				assert.Equal(t, 2, inits)
			}
		})
	}

	// The recorder restarts in the middle of a Cluster (at an element
	// boundary): the Cluster ends there.
	a, b := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2}), webmtest.Build(webmtest.Spec{Clusters: 2})
	cut := a.Clusters[1].Offset + 12 + 3 + 200 // into the second Cluster
	bounds := webmBoundaries(t, a.Data)
	for !bounds[cut] {
		cut++
	}
	data := append(append([]byte(nil), a.Data[:cut]...), b.Data...)
	r := runSplitter(testMaxPiece, chunksOf(data, 1000)...)
	require.NoError(t, r.err)
	assert.Equal(t, data, r.data())
	assert.Equal(t, []string{
		"init@0",
		fmt.Sprintf("cluster@%d key=true", a.Clusters[0].Offset),
		fmt.Sprintf("cluster@%d key=true", a.Clusters[1].Offset),
		fmt.Sprintf("init@%d", cut),
		fmt.Sprintf("cluster@%d key=true", cut+b.Clusters[0].Offset),
		fmt.Sprintf("cluster@%d key=true", cut+b.Clusters[1].Offset),
	}, r.marks())
	assert.Equal(t, "video/webm;codecs=vp8", lastMIME(r))
}

// A Cluster without any video block in a stream with video cannot be
// started at: keyframe false. Without a video track every Cluster is a key.
func TestWebMSplitterClusterWithoutVideo(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 1, Frames: 1})
	audioOnly := ebml.Element(ebml.IDCluster, ebml.Uint(ebml.IDTimecode, 1000),
		ebml.Element(ebml.IDSimpleBlock, []byte{0x81, 0, 0, 0x80, 0xFC, 1, 2, 3}))
	data := append(append([]byte(nil), l.Data...), audioOnly...)
	for _, n := range []int{1, 5, len(data)} {
		r := runSplitter(testMaxPiece, chunksOf(data, n)...)
		require.NoError(t, r.err)
		assert.Equal(t, []string{"init@0", fmt.Sprintf("cluster@%d key=true", l.Clusters[0].Offset),
			fmt.Sprintf("cluster@%d key=false", len(l.Data))}, r.marks(), "chunks of %d", n)
	}

	// No Tracks at all: keyframes everywhere.
	header := webmtest.Build(webmtest.Spec{}).Data[:36]
	seg := ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDSegment))
	cl := ebml.Element(ebml.IDCluster, ebml.Uint(ebml.IDTimecode, 0), ebml.Element(ebml.IDSimpleBlock, []byte{0x81, 0, 0, 0x00, 1}))
	data = bytes.Join([][]byte{header, seg, cl}, nil)
	r := runSplitter(testMaxPiece, data)
	require.NoError(t, r.err)
	assert.Equal(t, []string{"init@0", "cluster@48 key=true"}, r.marks())
	assert.Equal(t, "video/webm", lastMIME(r))
}

func TestWebMSplitterEmptyAndInitOnly(t *testing.T) {
	r := runSplitter(testMaxPiece)
	require.NoError(t, r.err)
	assert.Empty(t, r.pieces)
	r = runSplitter(testMaxPiece, nil, []byte{})
	require.NoError(t, r.err)
	assert.Empty(t, r.pieces)

	s := NewSplitter(testMaxPiece)
	assert.Equal(t, "", s.MIME())

	// No Cluster ever came: the init is emitted at end.
	l := webmtest.Build(webmtest.Spec{Audio: true})
	r = runSplitter(testMaxPiece, l.Data[:l.InitLen])
	require.NoError(t, r.err)
	require.Len(t, r.pieces, 1)
	assert.True(t, r.pieces[0].Init)
	assert.Equal(t, l.Data[:l.InitLen], r.pieces[0].Data)
	assert.Equal(t, l.MIME, lastMIME(r))
}

func TestWebMSplitterPiecesAreFresh(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3})
	buf := append([]byte(nil), l.Data...)
	r := runSplitter(testMaxPiece, chunksOf(buf, 3000)...)
	require.NoError(t, r.err)
	for i := range buf { // the caller reuses its buffer
		buf[i] = 0
	}
	assert.Equal(t, l.Data, r.data())
	for _, p := range r.pieces {
		assert.Equal(t, len(p.Data), cap(p.Data))
	}
}

// The MIME type read from real recordings matches the browser's.
func TestRealRecordingsMIME(t *testing.T) {
	for _, rec := range webmtest.LoadRecordings(t, recordingsDir) {
		sp := NewSplitter(testMaxPiece)
		for _, b := range rec.Blobs {
			require.NoError(t, sp.Write(b, func(Piece) error { return nil }))
		}
		assert.Equal(t, rec.Layout.MIME, sp.MIME(), rec.Name)
	}
}

func TestWebMMIME(t *testing.T) {
	tr := func(n, kind uint64, codec string) track { return track{number: n, kind: kind, codec: codec} }
	cases := []struct {
		in   initSegment
		want string
	}{
		{initSegment{"webm", []track{tr(1, 2, "A_OPUS"), tr(2, 1, "V_VP9")}}, "video/webm;codecs=vp9,opus"},
		{initSegment{"webm", []track{tr(1, 1, "V_VP8")}}, "video/webm;codecs=vp8"},
		{initSegment{"webm", []track{tr(1, 2, "A_VORBIS")}}, "audio/webm;codecs=vorbis"},
		{initSegment{"webm", []track{tr(1, 1, "V_AV1"), tr(2, 2, "A_OPUS")}}, "video/webm;codecs=av1,opus"},
		{initSegment{"matroska", []track{tr(1, 1, "V_MPEG4/ISO/AVC"), tr(2, 2, "A_AAC")}}, "video/x-matroska;codecs=avc1,mp4a.40.2"},
		{initSegment{"matroska", []track{tr(1, 1, "V_MPEGH/ISO/HEVC")}}, "video/x-matroska;codecs=hev1"},
		{initSegment{"matroska", []track{tr(1, 1, "V_THEORA"), tr(2, 2, "A_FLAC")}}, "video/x-matroska;codecs=theora,flac"},
		{initSegment{"webm", []track{tr(1, 0, "V_VP8"), tr(2, 0, "A_OPUS")}}, "video/webm;codecs=vp8,opus"}, // no TrackType
		{initSegment{"webm", nil}, "video/webm"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, mimeOf(c.in))
	}
}

// Streams for the error tests, made of raw elements.
func errStream(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWebMSplitterErrors(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Clusters: 1, Frames: 2, FrameBytes: 100})
	k := webmtest.Build(webmtest.Spec{KnownSizes: true, Clusters: 1, Frames: 2, FrameBytes: 100})
	header := l.Data[:36]
	seg := l.Data[36:48]
	initPart := l.Data[:l.InitLen]
	clusterHdr := ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDCluster))
	tc := ebml.Uint(ebml.IDTimecode, 0)
	block := ebml.Element(ebml.IDSimpleBlock, []byte{0x81, 0, 0, 0x80, 1, 2, 3})
	media := len(initPart) + len(clusterHdr) + len(tc) // where a Cluster child starts
	knownCluster := ebml.Element(ebml.IDCluster, tc, block)

	cases := []struct {
		name     string
		data     []byte
		maxPiece int
		is       error
		msg      string // what the message must say, with the offset
	}{
		{"invalid ID", errStream(initPart, clusterHdr, tc, []byte{0x00, 0x81, 0}), 0, ErrInvalid,
			fmt.Sprintf("relay: bad WebM: invalid element ID at offset %d", media)},
		{"reserved ID", errStream(initPart, clusterHdr, tc, []byte{0xFF, 0x81, 0}), 0, ErrInvalid,
			fmt.Sprintf("invalid element ID at offset %d", media)},
		{"ID longer than 4 bytes", errStream(initPart, clusterHdr, tc, []byte{0x08, 1, 2, 3, 4, 0x81, 0}), 0, ErrInvalid,
			fmt.Sprintf("element ID longer than 4 bytes at offset %d", media)},
		{"invalid size", errStream(initPart, clusterHdr, tc, []byte{0xA3, 0x00, 1, 2}), 0, ErrInvalid,
			fmt.Sprintf("relay: bad WebM: invalid element size at offset %d", media)},
		// An element held whole that is over maxPiece is ErrTooBig
		// (as relay.go documents it, close code 1009), not bad WebM; it
		// is refused at its header, before any of its bytes are held.
		{"block larger than maxPiece", errStream(initPart, clusterHdr, tc, []byte{0xA3, 0x1F, 0xFF, 0xFF, 0xF0}), 1 << 20, ErrTooBig,
			fmt.Sprintf("SimpleBlock of 268435445 bytes is larger than the limit of 1048576 at offset %d", media)},
		{"Tracks larger than maxPiece", errStream(header, seg, []byte{0x16, 0x54, 0xAE, 0x6B, 0x1F, 0xFF, 0xFF, 0xFE}), 1 << 20, ErrTooBig,
			"Tracks of 268435462 bytes is larger than the limit of 1048576 at offset 48"},
		{"unknown size for a SimpleBlock", errStream(initPart, clusterHdr, tc, []byte{0xA3, 0xFF, 1, 2}), 0, ErrInvalid,
			fmt.Sprintf("unknown size is not allowed for SimpleBlock at offset %d", media)},
		{"unknown size for Info", errStream(header, seg, []byte{0x15, 0x49, 0xA9, 0x66, 0xFF}), 0, ErrInvalid,
			"unknown size is not allowed for Info at offset 48"},
		{"unknown size for the EBML header", []byte{0x1A, 0x45, 0xDF, 0xA3, 0xFF, 0x42, 0x82}, 0, ErrInvalid,
			"unknown size is not allowed for EBML header at offset 0"},
		{"child overruns a known-size Cluster", errStream(initPart, ebml.AppendID(nil, ebml.IDCluster), []byte{0x85}, tc, block), 0, ErrInvalid,
			fmt.Sprintf("SimpleBlock of 9 bytes overruns its parent by 7 bytes at offset %d", len(initPart)+4+1+len(tc))},
		{"Cluster overruns a known-size Segment", errStream(header, ebml.AppendID(nil, ebml.IDSegment), []byte{0x84}, knownCluster), 0, ErrInvalid,
			fmt.Sprintf("Cluster of %d bytes overruns its parent by %d bytes at offset 41", len(knownCluster), len(knownCluster)-4)},
		{"does not start with EBML", errStream(seg, l.Data[48:]), 0, ErrInvalid,
			"stream does not start with an EBML header (found Segment) at offset 0"},
		{"Cluster before any init", l.Data[l.InitLen:], 0, ErrInvalid,
			"Cluster before any init segment at offset 0"},
		{"Info at top level", errStream(k.Data, l.Data[48:l.InitLen]), 0, ErrInvalid,
			fmt.Sprintf("unexpected Info at top level at offset %d", len(k.Data))},
		{"Cluster at top level", errStream(k.Data, clusterHdr), 0, ErrInvalid,
			fmt.Sprintf("Cluster outside a Segment at offset %d", len(k.Data))},
		{"second Segment", errStream(k.Data, seg), 0, ErrInvalid,
			fmt.Sprintf("second Segment in one EBML document at offset %d", len(k.Data))},
		{"Segment in a Segment", errStream(header, seg, seg), 0, ErrInvalid,
			"Segment inside a Segment at offset 48"},
		{"Info inside a known-size Cluster", errStream(initPart, ebml.AppendID(nil, ebml.IDCluster), []byte{0x90}, l.Data[48:64]), 0, ErrInvalid,
			fmt.Sprintf("Info inside a Cluster at offset %d", len(initPart)+5)},
		{"bad DocType", errStream(ebml.Element(ebml.IDEBML, ebml.String(ebml.IDDocType, "mp4")), seg), 0, ErrInvalid,
			"unsupported DocType \"mp4\" at offset 5"},
		{"SimpleBlock too short", errStream(initPart, clusterHdr, tc, []byte{0xA3, 0x82, 0x81, 0}), 0, ErrInvalid,
			fmt.Sprintf("SimpleBlock of 4 bytes is too short for its header at offset %d", media)},
		{"init larger than maxPiece", l.Data, l.InitLen - 10, ErrTooBig,
			"relay: segment too big: init segment held back is more than"},
		{"truncated SimpleBlock", l.Data[:len(l.Data)-10], 0, ErrInvalid,
			"relay: bad WebM: truncated SimpleBlock: have "},
		{"truncated header", errStream(initPart, clusterHdr, tc, []byte{0xA3}), 0, ErrInvalid,
			fmt.Sprintf("truncated SimpleBlock: input ends 1 bytes into its header at offset %d", media)},
		{"truncated ID", errStream(initPart, clusterHdr, tc, []byte{0x1F, 0x43}), 0, ErrInvalid,
			fmt.Sprintf("truncated element header (input ends 2 bytes into it) at offset %d", media)},
		{"truncated known-size Cluster", errStream(initPart, ebml.AppendID(nil, ebml.IDCluster), []byte{0x90}, tc), 0, ErrInvalid,
			fmt.Sprintf("truncated Cluster: its size says it ends at offset %d, input ends at offset %d", len(initPart)+5+16, len(initPart)+5+len(tc))},
		{"truncated known-size Segment", k.Data[:k.Clusters[0].Offset], 0, ErrInvalid,
			fmt.Sprintf("truncated Segment: its size says it ends at offset %d, input ends at offset %d", len(k.Data), k.Clusters[0].Offset)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.maxPiece == 0 {
				c.maxPiece = testMaxPiece
			}
			for _, n := range []int{len(c.data), 1, 3} {
				r := runSplitter(c.maxPiece, chunksOf(c.data, n)...)
				require.Error(t, r.err, "chunks of %d", n)
				assert.ErrorIs(t, r.err, c.is, "chunks of %d", n)
				assert.Contains(t, r.err.Error(), c.msg, "chunks of %d", n)
				// Whatever was emitted is the start of the input.
				assert.True(t, bytes.HasPrefix(c.data, r.data()))
			}
		})
	}
}

func TestWebMSplitterBadTrackEntry(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{})
	tracks := ebml.Element(ebml.IDTracks, ebml.Element(ebml.IDTrackEntry, []byte{0xD7, 0x85, 1}))
	data := errStream(l.Data[:48], tracks)
	r := runSplitter(testMaxPiece, data)
	require.ErrorIs(t, r.err, ErrInvalid)
	assert.Equal(t, "relay: bad WebM: TrackNumber of 7 bytes overruns its parent by 4 bytes at offset 55", r.err.Error())
}

func TestWebMSplitterTooMuchHeldBack(t *testing.T) {
	// A Cluster that starts with many audio blocks before its first
	// video block: its first piece cannot leave before that block.
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 1, Frames: 1, FrameBytes: 100})
	var audio [][]byte
	for i := 0; i < 50; i++ {
		audio = append(audio, ebml.Element(ebml.IDSimpleBlock, []byte{0x81, 0, byte(i), 0x80}, make([]byte, 100)))
	}
	cluster := append(ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDCluster)), ebml.Uint(ebml.IDTimecode, 5000)...)
	cluster = append(cluster, bytes.Join(audio, nil)...)
	cluster = append(cluster, ebml.Element(ebml.IDSimpleBlock, []byte{0x82, 0, 0, 0x80}, make([]byte, 100))...)
	data := append(append([]byte(nil), l.Data...), cluster...)

	r := runSplitter(4096, chunksOf(data, 512)...)
	require.ErrorIs(t, r.err, ErrTooBig)
	assert.Contains(t, r.err.Error(), "Cluster before its first video block held back is more than 4096 bytes at offset")
	assert.LessOrEqual(t, r.maxHold, 4096+32)

	// With room for it, fine: one Cluster piece, keyframe.
	r = runSplitter(8192, chunksOf(data, 512)...)
	require.NoError(t, r.err)
	assert.Contains(t, r.marks(), fmt.Sprintf("cluster@%d key=true", len(l.Data)))

	// A long Cluster in one write is cut in pieces of at most maxPiece at
	// element boundaries.
	long := webmtest.Build(webmtest.Spec{Clusters: 2, Frames: 30, FrameBytes: 1000})
	r = runSplitter(5000, long.Data)
	checkRun(t, r, long.Data, []webmtest.Layout{long})
	for _, p := range r.pieces {
		assert.LessOrEqual(t, len(p.Data), 5000)
	}
}

func TestWebMSplitterStickyErrors(t *testing.T) {
	s := NewSplitter(testMaxPiece)
	nop := func(Piece) error { return nil }
	err := s.Write([]byte{0x00}, nop)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, err, s.Write(webmtest.Build(webmtest.Spec{}).Data, nop))
	assert.Equal(t, err, s.End(nop))

	// An error from emit is returned as is, and sticks.
	boom := errors.New("boom")
	s = NewSplitter(testMaxPiece)
	l := webmtest.Build(webmtest.Spec{Clusters: 2})
	calls := 0
	err = s.Write(l.Data, func(Piece) error { calls++; return boom })
	assert.Same(t, boom, err)
	assert.Equal(t, 1, calls)
	assert.Same(t, boom, s.Write(nil, nop))
	assert.Same(t, boom, s.End(nop))

	// After end: a second end is a no-op, a write is an error.
	s = NewSplitter(testMaxPiece)
	require.NoError(t, s.Write(l.Data, nop))
	require.NoError(t, s.End(nop))
	require.NoError(t, s.End(nop))
	require.Error(t, s.Write([]byte{1}, nop))
}

// splitBySeed cuts data into chunks chosen by seed (a splitmix64 stream):
// mostly small, some empty, sometimes a 1-byte first chunk.
func splitBySeed(data []byte, seed uint64) [][]byte {
	next := func() uint64 {
		seed += 0x9E3779B97F4A7C15
		z := seed
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		return z ^ z>>31
	}
	var out [][]byte
	if next()%4 == 0 && len(data) > 0 {
		out = append(out, data[:1])
		data = data[1:]
	}
	for len(data) > 0 {
		n := int(next() % 300)
		if next()%8 == 0 {
			n = int(next() % 5)
		}
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func fuzzSeeds() map[string][]byte {
	small := func(s webmtest.Spec) []byte {
		s.FrameBytes, s.Frames = max(s.FrameBytes, 40), max(s.Frames, 2)
		return webmtest.Build(s).Data
	}
	av := small(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	known := small(webmtest.Spec{KnownSizes: true, Audio: true, Clusters: 2})
	return map[string][]byte{
		"video":       small(webmtest.Spec{Clusters: 2}),
		"audio_video": av,
		"alpha":       small(webmtest.Spec{Audio: true, BlockGroups: true, Clusters: 3, KeyEvery: 2}),
		"known_sizes": known,
		"audio_only":  small(webmtest.Spec{Audio: true, NoVideo: true, Clusters: 2}),
		"concat":      append(append([]byte(nil), known...), av...),
		"truncated":   av[:len(av)-17],
		"init_only":   av[:webmtest.Build(webmtest.Spec{Audio: true}).InitLen],
		"one_byte":    av[:1],
	}
}

func FuzzWebMSplitter(f *testing.F) {
	for _, data := range fuzzSeeds() {
		f.Add(data, uint64(0))
		f.Add(data, uint64(7)) // an odd seed: a small maxPiece
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		maxPiece := 1 << 20
		if seed&1 == 1 {
			maxPiece = 16 + int(seed>>1%2048)
		}
		whole := runSplitter(maxPiece, data)
		split := runSplitter(maxPiece, splitBySeed(data, seed)...)
		runs := []splitRun{whole, split}
		if len(data) <= 2048 {
			runs = append(runs, runSplitter(maxPiece, chunksOf(data, 1)...))
		}
		for i, r := range runs {
			got := r.data()
			require.True(t, bytes.HasPrefix(data, got), "run %d: pieces are not the input", i)
			if r.err == nil {
				require.Equal(t, len(data), len(got), "run %d: lossless", i)
			} else {
				require.True(t, errors.Is(r.err, ErrInvalid) || errors.Is(r.err, ErrTooBig), "run %d: %v", i, r.err)
			}
			require.LessOrEqual(t, r.maxHold, maxPiece+32, "run %d: held back", i)
			for j, p := range r.pieces { // plain ifs: testify is slow in a hot loop
				if len(p.Data) == 0 || len(p.Data) > max(maxPiece, 12) || p.Keyframe && !p.ClusterStart {
					t.Fatalf("run %d piece %d: %d bytes (maxPiece %d), clusterStart %v keyframe %v",
						i, j, len(p.Data), maxPiece, p.ClusterStart, p.Keyframe)
				}
			}
			if i == 0 {
				continue
			}
			// The same input gives the same result however it is cut.
			require.Equal(t, errString(whole.err), errString(r.err), "run %d", i)
			wm, rm := whole.marks(), r.marks()
			if whole.err == nil {
				require.Equal(t, wm, rm, "run %d", i)
				require.Equal(t, lastMIME(whole), lastMIME(r), "run %d", i)
			} else {
				n := min(len(wm), len(rm))
				require.Equal(t, wm[:n], rm[:n], "run %d", i)
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestWriteWebMFuzzCorpus writes the generated seeds as corpus files:
// WEBM_WRITE_CORPUS=1 go test -run TestWriteWebMFuzzCorpus
func TestWriteWebMFuzzCorpus(t *testing.T) {
	if os.Getenv("WEBM_WRITE_CORPUS") == "" {
		t.Skip("set WEBM_WRITE_CORPUS=1 to write testdata/fuzz/FuzzWebMSplitter")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzWebMSplitter")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	// A seed whose split starts with a 1-byte write, like MediaRecorder's
	// first blob.
	chrome := uint64(2)
	for len(splitBySeed([]byte("0123456789"), chrome)[0]) != 1 {
		chrome += 2 // even: the default maxPiece
	}
	seeds := fuzzSeeds()
	// The start of a real recording: Chrome's own init and blocks.
	if real, err := os.ReadFile(filepath.Join(recordingsDir, "camera_vp9-opus_250_kf1000", "00000.webm")); err == nil {
		seeds["real_head"] = real[:min(len(real), 3000)]
	}
	for name, data := range seeds {
		for _, seed := range []uint64{0, chrome, 7} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint64(%d)\n", strconv.Quote(string(data)), seed)
			file := filepath.Join(dir, fmt.Sprintf("seed_%s_%d", strings.ReplaceAll(name, " ", "_"), seed))
			require.NoError(t, os.WriteFile(file, []byte(body), 0o644))
		}
	}
}

// benchStream is MediaRecorder-like: Opus and VP8, frames of 5 to 50 KB
// (four recorder runs back to back).
func benchStream() []byte {
	var data []byte
	for _, fb := range []int{5000, 12000, 25000, 50000} {
		data = append(data, webmtest.Build(webmtest.Spec{Audio: true, Clusters: 10, Frames: 30, FrameBytes: fb, KeyEvery: 2}).Data...)
	}
	return data
}

func BenchmarkWebMSplitter(b *testing.B) {
	data := benchStream()
	for _, size := range []int{5120, 64 << 10} {
		chunks := chunksOf(data, size)
		b.Run(fmt.Sprintf("msg=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			pieces := 0
			emit := func(p Piece) error { pieces++; return nil }
			for b.Loop() {
				s := NewSplitter(testMaxPiece)
				for _, c := range chunks {
					if err := s.Write(c, emit); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.End(emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(pieces)/float64(b.N), "pieces/op")
		})
	}
}
