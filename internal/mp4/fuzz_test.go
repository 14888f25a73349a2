package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSeeds: the generated streams and the heads of the ffmpeg files
// (their init and first fragments; a whole file is too slow a seed). They
// are added with f.Add; testdata/fuzz/FuzzSplitter keeps what the fuzzer
// found.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for name, gs := range generatedStreams() {
		seeds[strings.ReplaceAll(name, " ", "_")] = gs.data
	}
	for _, file := range ffmpegFiles(t) {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		seeds[strings.TrimSuffix(filepath.Base(file), ".mp4")+"_head"] = data[:min(len(data), 3000)]
	}
	return seeds
}

func FuzzSplitter(f *testing.F) {
	for _, data := range fuzzSeeds(f) {
		f.Add(data, uint64(0))
		f.Add(data, uint64(7)) // an odd seed: a small maxPiece
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		maxPiece := 1 << 20
		if seed&1 == 1 {
			maxPiece = 16 + int(seed>>1%2048)
		}
		whole := runSplitter(maxPiece, data)
		runs := []splitRun{whole, runSplitter(maxPiece, splitBySeed(data, seed)...)}
		if len(data) <= 2048 {
			runs = append(runs, runSplitter(maxPiece, chunksOf(data, 1)...))
		}
		for i, r := range runs {
			got := r.data()
			if !bytes.HasPrefix(data, got) {
				t.Fatalf("run %d: pieces are not the input", i)
			}
			if r.err == nil && len(got) != len(data) {
				t.Fatalf("run %d: %d of %d bytes out", i, len(got), len(data))
			}
			if r.err != nil && !errors.Is(r.err, ErrInvalid) && !errors.Is(r.err, ErrTooBig) {
				t.Fatalf("run %d: %v", i, r.err)
			}
			// Held back: at most maxPiece and one box header, plus the
			// write that brought it.
			if r.maxHold > maxPiece+32+300 {
				t.Fatalf("run %d: held %d bytes (maxPiece %d)", i, r.maxHold, maxPiece)
			}
			for j, p := range r.pieces {
				if len(p.Data) == 0 || len(p.Data) > maxPiece || p.Keyframe && !p.FragmentStart || p.Init && p.FragmentStart {
					t.Fatalf("run %d piece %d: %d bytes (maxPiece %d), init %v fragmentStart %v keyframe %v",
						i, j, len(p.Data), maxPiece, p.Init, p.FragmentStart, p.Keyframe)
				}
			}
			if i == 0 {
				continue
			}
			// The same input gives the same result however it is cut.
			if errString(whole.err) != errString(r.err) {
				t.Fatalf("run %d: %q, whole: %q", i, errString(r.err), errString(whole.err))
			}
			wm, rm := whole.marks(), r.marks()
			n := len(wm)
			if whole.err != nil {
				n = min(n, len(rm))
			} else {
				require.Equal(t, lastMIME(whole), lastMIME(r), "run %d", i)
			}
			require.Equal(t, wm[:n], rm[:min(n, len(rm))], "run %d", i)
		}
	})
}

func lastMIME(r splitRun) string {
	if len(r.mimes) == 0 {
		return ""
	}
	return r.mimes[len(r.mimes)-1]
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// benchStreams: the fragments of h264_aac.mp4 repeated behind its init
// (about 8 MB, fragments of 5 to 30 KB), and the shape of the WebM
// splitter's benchmark stream: four recorder runs, each an init and 10
// fragments of 30 frames of 5, 12, 25 and 50 KB (about 27 MB).
func benchStreams(b *testing.B) map[string][]byte {
	data, err := os.ReadFile(filepath.Join("testdata", "ffmpeg", "h264_aac.mp4"))
	require.NoError(b, err)
	var init, frags []byte
	for _, x := range listBoxes(b, data) {
		body := data[x.off : x.off+x.size]
		switch x.typ {
		case "ftyp", "moov":
			init = append(init, body...)
		case "moof", "mdat":
			frags = append(frags, body...)
		}
	}
	ffmpeg := init
	for len(ffmpeg) < 8<<20 {
		ffmpeg = append(ffmpeg, frags...)
	}
	g := gen()
	var webmLike []byte
	for _, fb := range []int{5000, 12000, 25000, 50000} {
		webmLike = append(webmLike, cat(g.ftyp(), g.moov(videoAudio))...)
		for i := range 10 {
			webmLike = append(webmLike, g.moof(g.traf(1, 0, 0, trunFirst(uint32(i%2)*nonSyncSample)))...)
			webmLike = append(webmLike, g.mdat(30*fb)...)
		}
	}
	return map[string][]byte{"ffmpeg": ffmpeg, "webm-like": webmLike}
}

func BenchmarkSplitter(b *testing.B) {
	for name, data := range benchStreams(b) {
		for _, size := range []int{5120, 64 << 10} {
			chunks := chunksOf(data, size)
			b.Run(fmt.Sprintf("%s/msg=%d", name, size), func(b *testing.B) {
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
}
