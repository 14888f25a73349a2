package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm"
)

const testMaxPiece = 16 << 20

// splitRun is what a splitter produced for one input.
type splitRun struct {
	pieces  []Piece
	starts  []int64 // stream offset of each piece
	mimes   []string
	err     error
	maxHold int
}

func runSplitter(maxPiece int, chunks ...[]byte) splitRun {
	s := NewSplitter(maxPiece)
	var r splitRun
	var off int64
	emit := func(p Piece) error {
		r.pieces = append(r.pieces, p)
		r.starts = append(r.starts, off)
		r.mimes = append(r.mimes, s.MIME())
		off += int64(len(p.Data))
		return nil
	}
	for _, c := range chunks {
		if r.err = s.Write(c, emit); r.err != nil {
			return r
		}
		r.maxHold = max(r.maxHold, len(s.hold))
	}
	r.err = s.End(emit)
	return r
}

func (r splitRun) data() []byte {
	var b []byte
	for _, p := range r.pieces {
		b = append(b, p.Data...)
	}
	return b
}

// marks lists the init and fragment-start pieces.
func (r splitRun) marks() []refPiece {
	var m []refPiece
	for i, p := range r.pieces {
		if p.Init || p.FragmentStart {
			m = append(m, refPiece{Off: r.starts[i], Init: p.Init, Keyframe: p.Keyframe})
		}
	}
	return m
}

func chunksOf(data []byte, n int) [][]byte {
	var out [][]byte
	for len(data) > n {
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// splitBySeed cuts data at pseudo-random places (1 to 300 bytes, some tiny).
func splitBySeed(data []byte, seed uint64) [][]byte {
	next := func() uint64 {
		seed += 0x9E3779B97F4A7C15
		z := seed
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		return z ^ z>>31
	}
	var out [][]byte
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

// checkPieces: lossless, no empty piece, pieces end on top-level box
// boundaries (the independent lister's), Keyframe only on a fragment start.
func checkPieces(t *testing.T, r splitRun, data []byte) {
	t.Helper()
	require.NoError(t, r.err)
	require.True(t, bytes.Equal(data, r.data()), "pieces are not the input")
	ends := map[int64]bool{int64(len(data)): true}
	for _, b := range listBoxes(t, data) {
		ends[b.off] = true
	}
	for i, p := range r.pieces {
		require.NotEmpty(t, p.Data, "piece %d", i)
		require.True(t, ends[r.starts[i]+int64(len(p.Data))], "piece %d ends inside a box", i)
		require.False(t, p.Keyframe && !p.FragmentStart, "piece %d", i)
		require.False(t, p.Init && p.FragmentStart, "piece %d", i)
	}
}

// The MIME types MSE is asked about, written from ffprobe's view of each
// file (codec tag, profile and level) and the codec ISO bindings.
var ffmpegMIME = map[string][]string{
	"aac_only.mp4":         {`audio/mp4; codecs="mp4a.40.2"`},
	"av1_opus.mp4":         {`video/mp4; codecs="av01.0.00M.08,opus"`},
	"h264_aac.mp4":         {`video/mp4; codecs="avc1.64000b,mp4a.40.2"`},
	"h264_cmaf.mp4":        {`video/mp4; codecs="avc1.64000b"`},
	"h264_dash.mp4":        {`video/mp4; codecs="avc1.64000b,mp4a.40.2"`},
	"h264_every_frame.mp4": {`video/mp4; codecs="avc1.64000b"`},
	"h264_fragdur.mp4":     {`video/mp4; codecs="avc1.64000b,mp4a.40.2"`},
	"h264_styp.mp4":        {`video/mp4; codecs="avc1.64000b"`},
	"hevc.mp4":             {`video/mp4; codecs="hvc1.1.6.L30.90"`},
	"two_inits.mp4":        {`video/mp4; codecs="avc1.64000b"`, `video/mp4; codecs="avc1.f4000a"`},
	"vp9_opus.mp4":         {`video/mp4; codecs="vp09.00.10.08,opus"`},
}

func TestMP4SplitterFFmpegFiles(t *testing.T) {
	for _, file := range ffmpegFiles(t) {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			probe := readProbe(t, file+".expected")
			want := referencePieces(t, data, probe)
			// Each file has what its make.sh line says it has.
			fragments, keys, inits := 0, 0, 0
			for _, p := range want {
				switch {
				case p.Init:
					inits++
				case p.Keyframe:
					keys++
					fragments++
				default:
					fragments++
				}
			}
			require.GreaterOrEqual(t, fragments, 2)
			require.Equal(t, name == "two_inits.mp4", inits == 2, "inits")
			require.Equal(t, name == "h264_every_frame.mp4" || name == "h264_fragdur.mp4", keys < fragments, "fragments that are no keyframe")
			for _, s := range probe.Streams {
				assert.Contains(t, strings.ToLower(ffmpegMIME[name][0]), strings.ToLower(s.CodecTag), "stream %d", s.Index)
			}

			for _, chunks := range [][][]byte{{data}, chunksOf(data, 1), chunksOf(data, 4096), splitBySeed(data, 1)} {
				r := runSplitter(testMaxPiece, chunks...)
				checkPieces(t, r, data)
				require.Equal(t, want, r.marks())
				var mimes []string
				for i, p := range r.pieces {
					if p.Init {
						mimes = append(mimes, r.mimes[i])
					}
				}
				require.Equal(t, ffmpegMIME[name], mimes)
			}
		})
	}
}

// TestMP4SplitterEveryCut writes each generated stream in two parts, cut at
// every byte offset, and in 1-byte writes: the pieces' marks and bytes are
// those of a single write.
func TestMP4SplitterEveryCut(t *testing.T) {
	for name, gs := range generatedStreams() {
		t.Run(name, func(t *testing.T) {
			data := gs.data
			whole := runSplitter(testMaxPiece, data)
			checkPieces(t, whole, data)
			require.Equal(t, gs.marks, whole.marks())
			for k := 0; k <= len(data); k++ {
				r := runSplitter(testMaxPiece, data[:k], data[k:])
				checkPieces(t, r, data)
				require.Equal(t, whole.marks(), r.marks(), "cut at %d", k)
				require.Equal(t, whole.mimes[len(whole.mimes)-1], r.mimes[len(r.mimes)-1])
			}
			r := runSplitter(testMaxPiece, chunksOf(data, 1)...)
			checkPieces(t, r, data)
			require.Equal(t, whole.marks(), r.marks())
		})
	}
}

func TestMP4SplitterMIME(t *testing.T) {
	r := runSplitter(testMaxPiece, generatedStreams()["keyframe rules"].data)
	require.NoError(t, r.err)
	require.Equal(t, `video/mp4; codecs="avc1.64001f,mp4a.40.2"`, r.mimes[0])
	require.Equal(t, "", NewSplitter(0).MIME())
}

// Piece boundaries with Append/Flush: the whole boxes of a fragment wait
// for Flush, the init and a fragment's start without its moof do not
// count as pending.
func TestMP4SplitterPending(t *testing.T) {
	g := gen()
	init := append(g.ftyp(), g.moov(videoAudio)...)
	frag := append(g.moof(g.traf(1, 0, 0, trunFirst(0))), g.mdat(100)...)
	s := NewSplitter(0)
	var got []Piece
	emit := func(p Piece) error { got = append(got, p); return nil }
	require.NoError(t, s.Append(init, emit))
	require.Zero(t, s.Pending())
	require.Empty(t, got)
	require.NoError(t, s.Append(g.styp(), emit))
	require.Len(t, got, 1) // the init is whole once a fragment starts
	require.True(t, got[0].Init)
	require.Zero(t, s.Pending(), "a fragment's start waits for its moof")
	require.NoError(t, s.Append(frag, emit))
	require.Equal(t, len(g.styp())+len(frag), s.Pending())
	require.NoError(t, s.Flush(emit))
	require.Len(t, got, 2)
	require.True(t, got[1].FragmentStart && got[1].Keyframe)
	require.Zero(t, s.Pending())
	require.NoError(t, s.Write(g.mdat(10), emit))
	require.Len(t, got, 3)
	require.False(t, got[2].FragmentStart)
	require.NoError(t, s.End(emit))
	require.Zero(t, s.HeldBytes())
}

func TestMP4SplitterErrors(t *testing.T) {
	g := gen()
	init := append(g.ftyp(), g.moov(videoAudio)...)
	moof := g.moof(g.traf(1, 0, 0, trunFirst(0)))
	at := func(off int) string { return fmt.Sprintf("at offset %d", off) }
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"WebM", []byte{0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01}, "stream does not start with an MP4 box (found 0x9f428681) at offset 0"},
		{"text", []byte("GET / HTTP/1.1\r\n"), `stream does not start with an MP4 box (found "/ HT") at offset 0`},
		{"moof first", append(g.ftyp(), moof...), "moof before any moov at offset 24"},
		{"size under header", cat(init, []byte{0, 0, 0, 7, 'm', 'o', 'o', 'f'}), `"moof" box of size 7 is smaller than its 8-byte header ` + at(len(init))},
		{"largesize under header", cat(g.ftyp(), []byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 15}), `"free" box of size 15 is smaller than its 16-byte header at offset 24`},
		{"uuid under header", cat(g.ftyp(), []byte{0, 0, 0, 23, 'u', 'u', 'i', 'd'}, make([]byte, 15)), `"uuid" box of size 23 is smaller than its 24-byte header at offset 24`},
		{"child overruns moov", cat(g.ftyp(), mkBox("moov", mkBox("trak", []byte{0, 0, 0, 40, 't', 'k', 'h', 'd'}))), `"tkhd" box of 40 bytes overruns its parent by 32 bytes at offset 40`},
		{"child overruns moof", cat(init, mkBox("moof", []byte{0, 0, 0, 9, 't', 'r', 'a', 'f'})), `"traf" box of 9 bytes overruns its parent by 1 bytes ` + at(len(init)+8)},
		{"truncated", cat(init, moof[:20]), fmt.Sprintf(`truncated "moof" box: have 20 of %d bytes `, len(moof)) + at(len(init))},
		{"truncated header", cat(init, moof[:5]), "truncated box header (input ends 5 bytes into it) " + at(len(init))},
		{"largesize past the parent", cat(g.ftyp(), mkBox("moov", mkBox("trak", []byte{0, 0, 0, 1, 't', 'k', 'h', 'd', 0, 0, 0, 0}))), `"tkhd" box header overruns its parent at offset 40`},
		{"trak without tkhd", cat(g.ftyp(), mkBox("moov", mkBox("trak", mkBox("mdia")))), "trak without tkhd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, chunks := range [][][]byte{{c.data}, chunksOf(c.data, 1)} {
				r := runSplitter(testMaxPiece, chunks...)
				require.ErrorIs(t, r.err, ErrInvalid)
				require.ErrorContains(t, r.err, c.want)
				require.True(t, bytes.HasPrefix(c.data, r.data()))
			}
		})
	}
}

// Errors are sticky, and the whole boxes before a truncated one still went
// out.
func TestMP4SplitterStickyAndTruncatedTail(t *testing.T) {
	g := gen()
	data := cat(g.ftyp(), g.moov(videoAudio), g.moof(g.traf(1, 0, 0, trunFirst(0))), g.mdat(50))
	s := NewSplitter(0)
	var n int
	emit := func(p Piece) error { n += len(p.Data); return nil }
	require.NoError(t, s.Append(cat(data, g.mdat(20)[:9]), emit))
	err := s.End(emit)
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, len(data), n)
	require.Equal(t, err, s.Write([]byte{1}, emit))
	require.Equal(t, err, s.End(emit))

	boom := errors.New("boom")
	s = NewSplitter(0)
	require.Equal(t, boom, s.Write(data, func(Piece) error { return boom }))
	require.Equal(t, boom, s.Flush(emit))
}

func TestMP4SplitterTooBig(t *testing.T) {
	g := gen()
	init := cat(g.ftyp(), g.moov(videoAudio))
	frag := func(n int) []byte { return cat(g.moof(g.traf(1, 0, 0, trunFirst(0))), g.mdat(n)) }
	max := len(init) + 100
	// A box over the limit fails as soon as its header is there.
	s := NewSplitter(max)
	err := s.Write(cat(init, g.mdat(900)[:16]), func(Piece) error { return nil })
	require.ErrorIs(t, err, ErrTooBig)
	require.ErrorContains(t, err, `"mdat" box of 908 bytes is larger than the limit`)
	// The init may not outgrow it.
	r := runSplitter(len(init)-1, init)
	require.ErrorIs(t, r.err, ErrTooBig)
	require.ErrorContains(t, r.err, "init segment")
	// Media pieces are cut before they do.
	data := cat(init, frag(300), g.mdat(400), g.mdat(400), g.mdat(400))
	r = runSplitter(max, data)
	require.NoError(t, r.err)
	require.Equal(t, data, r.data())
	for _, p := range r.pieces {
		require.LessOrEqual(t, len(p.Data), max)
	}
	// A box to the end of the stream is held until End, within the limit.
	r = runSplitter(max, cat(init, frag(10)), cat([]byte{0, 0, 0, 0}, []byte("mdat"), make([]byte, 900)))
	require.ErrorIs(t, r.err, ErrTooBig)
	require.ErrorContains(t, r.err, "to the end of the stream")
}

// Pieces are fresh copies: writing into the input afterwards changes none.
func TestMP4SplitterPiecesAreFresh(t *testing.T) {
	data := generatedStreams()["keyframe rules"].data
	in := bytes.Clone(data)
	r := runSplitter(testMaxPiece, in)
	clear(in)
	require.Equal(t, data, r.data())
}

func TestMP4SplitterEmpty(t *testing.T) {
	r := runSplitter(testMaxPiece)
	require.NoError(t, r.err)
	require.Empty(t, r.pieces)
	g := gen()
	init := cat(g.ftyp(), g.moov(videoAudio))
	r = runSplitter(testMaxPiece, init)
	require.NoError(t, r.err)
	require.Len(t, r.pieces, 1)
	require.True(t, r.pieces[0].Init)
	require.Equal(t, fmt.Sprint(`video/mp4; codecs="avc1.64001f,mp4a.40.2"`), r.mimes[0])
}

// The relay package's ErrSegmentTooBig is webm.ErrTooBig: one value for
// both containers.
func TestMP4ErrTooBigIsWebM(t *testing.T) {
	require.ErrorIs(t, runSplitter(16, gen().ftyp()).err, webm.ErrTooBig)
}
