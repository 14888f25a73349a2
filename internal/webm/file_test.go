package webm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/ebml"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// memFile is a File in memory.
type memFile struct {
	b    []byte
	fail error // WriteAt's error, when set
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if m.fail != nil {
		return 0, m.fail
	}
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(n int64) error {
	if int(n) > len(m.b) {
		m.b = append(m.b, make([]byte, int(n)-len(m.b))...)
	}
	m.b = m.b[:n]
	return nil
}

// recordRun is what recordChunks made: one file per init, and the media
// pieces given to the writers.
type recordRun struct {
	files  [][]byte
	pieces int
	err    error // the splitter's, or the writer's
}

// recordChunks runs chunks through a splitter, as the hub does, and its
// pieces through FileWriters, one per init, as the recorder does. drop
// says which media pieces (counted from 1) the writer does not get, as a
// recorder that overflowed does not: the next one it gets carries
// discontinuity.
func recordChunks(chunks [][]byte, drop func(i int) bool) recordRun {
	var r recordRun
	var w *FileWriter
	var f *memFile
	closeFile := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		r.files = append(r.files, f.b)
		w = nil
		return err
	}
	i, disc := 0, false
	emit := func(pc Piece) error {
		if pc.Init {
			if err := closeFile(); err != nil {
				return err
			}
			f = &memFile{}
			var err error
			w, err = NewFileWriter(f, pc.Data)
			return err
		}
		i++
		if drop != nil && drop(i) {
			disc = true
			return nil
		}
		r.pieces++
		err := w.Media(pc.Data, pc.Keyframe, disc)
		disc = false
		return err
	}
	sp := NewSplitter(1 << 20)
	for _, c := range chunks {
		if r.err = sp.Write(c, emit); r.err != nil {
			return r
		}
	}
	if r.err = sp.End(emit); r.err == nil {
		r.err = closeFile()
	}
	return r
}

// checkFile checks a written file with the tests' own EBML reader: a
// Segment of known size that ends the file, SeekHead and Void where the
// writer reserved them, Info, Tracks, then Clusters of known size only,
// and Cues last when there are CuePoints. It returns the Clusters' count.
func checkFile(t testing.TB, data []byte) (clusters int) {
	t.Helper()
	els := webmtest.OracleWalk(t, data)
	var level1 []uint64
	for _, e := range els {
		switch e.Level {
		case 0:
			if e.ID == ebml.IDSegment {
				require.Equal(t, len(data), e.End, "the Segment's size")
				_, _, size, err := webmtest.OracleVint(data[e.Start+4:])
				require.NoError(t, err)
				require.NotEqual(t, uint64(1<<56-1), size, "the Segment's size is known")
			}
		case 1:
			level1 = append(level1, e.ID)
			if e.ID == ebml.IDCluster {
				clusters++
				_, _, size, err := webmtest.OracleVint(data[e.Start+4:])
				require.NoError(t, err)
				require.Equal(t, uint64(e.End-e.Data), size, "a Cluster's size")
			}
		}
	}
	require.GreaterOrEqual(t, len(level1), 4)
	assert.Equal(t, []uint64{ebml.IDSeekHead, ebml.IDVoid, ebml.IDInfo, ebml.IDTracks}, level1[:4])
	for i := 4; i < len(level1)-1; i++ {
		assert.Equal(t, uint64(ebml.IDCluster), level1[i])
	}
	return clusters
}

// A stream of each kind the splitter knows, cut every 333 bytes, makes a
// file with the same Clusters, every one of known size, and one CuePoint
// per keyframe Cluster (the Cues are after the last Cluster).
func TestFileWriterLayout(t *testing.T) {
	for name, spec := range map[string]webmtest.Spec{
		"mediarecorder": {Audio: true, Clusters: 5, KeyEvery: 2},
		"known_sizes":   {KnownSizes: true, Audio: true, Clusters: 4},
		"alpha":         {Audio: true, BlockGroups: true, Clusters: 4, KeyEvery: 2},
		"audio_only":    {Audio: true, NoVideo: true, Clusters: 3},
	} {
		t.Run(name, func(t *testing.T) {
			l := webmtest.Build(spec)
			r := recordChunks(chunksOf(l.Data, 333), nil)
			require.NoError(t, r.err)
			require.Len(t, r.files, 1)
			assert.Equal(t, len(l.Clusters), checkFile(t, r.files[0]))
			keys := 0
			for _, c := range l.Clusters {
				if c.Keyframe {
					keys++
				}
			}
			els := webmtest.OracleWalk(t, r.files[0])
			if keys > 0 {
				var cues webmtest.OracleElem
				for _, e := range els {
					if e.Level == 1 && e.ID == ebml.IDCues {
						cues = e
					}
				}
				require.NotZero(t, cues.Start, "Cues")
				assert.Equal(t, len(r.files[0]), cues.End, "the Cues end the file")
				assert.Equal(t, keys, countID(r.files[0][cues.Data:cues.End], ebml.IDCuePoint))
			}
		})
	}
}

// countID counts the children with this ID of a master's body.
func countID(body []byte, id uint32) int {
	n := 0
	for len(body) > 0 {
		eid, hdr, size, _, err := elementAt(body)
		if err != nil || hdr == 0 || size > uint64(len(body)-hdr) {
			return -1
		}
		if eid == id {
			n++
		}
		body = body[hdr+int(size):]
	}
	return n
}

// Pieces a slow recorder did not get leave a file that is still whole: the
// Cluster they were cut from ends with what it had, and the file goes on at
// the next Cluster it gets.
func TestFileWriterDrops(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 8, KeyEvery: 2})
	// Cut every 100 bytes and flushed after each: several pieces per Cluster.
	r := recordChunks(chunksOf(l.Data, 100), func(i int) bool { return i%7 == 3 || i%7 == 4 })
	require.NoError(t, r.err)
	require.Len(t, r.files, 1)
	checkFile(t, r.files[0])
}

// A new EBML header starts a new init: one file each.
func TestFileWriterTwoInits(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3})
	data := append(append([]byte(nil), l.Data...), l.Data...)
	r := recordChunks([][]byte{data}, nil)
	require.NoError(t, r.err)
	require.Len(t, r.files, 2)
	for _, f := range r.files {
		assert.Equal(t, 3, checkFile(t, f))
	}
}

// A write error is returned, and stays.
func TestFileWriterWriteError(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3})
	full := errors.New("no space left on device")
	f := &memFile{fail: full}
	_, err := NewFileWriter(f, l.Data[:l.InitLen])
	require.ErrorIs(t, err, full)

	f.fail = nil
	w, err := NewFileWriter(f, l.Data[:l.InitLen])
	require.NoError(t, err)
	f.fail = full
	big := make([]byte, 0, 2*fileBufSize)
	for len(big) < fileBufSize { // more than the buffer: written at once
		big = append(big, l.Data[l.InitLen:]...)
	}
	require.ErrorIs(t, w.Media(big, true, false), full)
	require.ErrorIs(t, w.Media(l.Data[l.InitLen:], true, false), full)
	require.ErrorIs(t, w.Close(), full)
}

// An init without Tracks, or that is not WebM, makes no file.
func TestFileWriterBadInit(t *testing.T) {
	for name, init := range map[string][]byte{
		"empty":     nil,
		"mp4":       []byte("\x00\x00\x00\x18ftypmp42"),
		"no tracks": webmtest.Build(webmtest.Spec{Clusters: 1}).Data[:40],
	} {
		_, err := NewFileWriter(&memFile{}, init)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

// FuzzFileWriter: whatever the splitter accepts, the file writer takes
// without error, however the stream is cut and whichever pieces are
// dropped, and makes files the tests' own EBML reader walks: sizes right,
// Clusters of known size, Cues last. The inputs the splitter refuses only
// need not panic.
func FuzzFileWriter(f *testing.F) {
	for _, data := range fuzzSeeds() {
		f.Add(data, uint64(0))
		f.Add(data, uint64(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var drop func(int) bool
		if seed&1 == 1 {
			drop = func(i int) bool { return uint64(i)*seed%5 == 0 }
		}
		r := recordChunks(splitBySeed(data, seed), drop)
		whole := recordChunks([][]byte{data}, nil)
		if whole.err != nil && !errors.Is(whole.err, ErrInvalid) && !errors.Is(whole.err, ErrTooBig) {
			t.Fatalf("an error that is not the splitter's: %v", whole.err)
		}
		if r.err != nil && !errors.Is(r.err, ErrInvalid) && !errors.Is(r.err, ErrTooBig) {
			t.Fatalf("an error that is not the splitter's: %v", r.err)
		}
		if whole.err != nil {
			return
		}
		for _, file := range whole.files {
			checkFile(t, file)
		}
		// Pieces of a publisher that declares its own segments need not
		// end on elements: the first file's media, cut anywhere, makes
		// the same file as the splitter's pieces (no keyframe flags: the
		// CuePoints come from them).
		var pieces []Piece
		NewSplitter(1<<20).Write(data, func(pc Piece) error {
			if pc.Init && len(pieces) > 0 {
				return errors.New("second init")
			}
			pieces = append(pieces, pc)
			return nil
		})
		if len(pieces) == 0 || !pieces[0].Init {
			return
		}
		var media []byte
		for _, pc := range pieces[1:] {
			media = append(media, pc.Data...)
		}
		write := func(chunks [][]byte) []byte {
			f := &memFile{}
			w, err := NewFileWriter(f, pieces[0].Data)
			if err != nil {
				return nil
			}
			for _, c := range chunks {
				require.NoError(t, w.Media(c, false, false))
			}
			require.NoError(t, w.Close())
			return f.b
		}
		var byPiece [][]byte
		for _, pc := range pieces[1:] {
			byPiece = append(byPiece, pc.Data)
		}
		require.Equal(t, write(byPiece), write(splitBySeed(media, seed^0x5A)), "the same file however the media is cut")
		if r.err == nil {
			for _, file := range r.files {
				checkFile(t, file)
			}
		}
	})
}

// A recording with more keyframe Clusters than MaxCues keeps at most
// MaxCues CuePoints, spread over the whole file: every other one, then
// every fourth...
func TestFileWriterCuesBounded(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Clusters: MaxCues + MaxCues/2, Frames: 1, FrameBytes: 8})
	r := recordChunks([][]byte{l.Data}, nil)
	require.NoError(t, r.err)
	require.Len(t, r.files, 1)
	file := r.files[0]
	var cues webmtest.OracleElem
	for _, e := range webmtest.OracleWalk(t, file) {
		if e.Level == 1 && e.ID == ebml.IDCues {
			cues = e
		}
	}
	n := countID(file[cues.Data:cues.End], ebml.IDCuePoint)
	assert.LessOrEqual(t, n, MaxCues)
	assert.Greater(t, n, MaxCues/2, "thinned once: every other keyframe Cluster, then one in two")
}
