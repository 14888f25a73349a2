package mp4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/segrelay/relay/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// boxesOf cuts media into its top-level boxes: the smallest pieces a
// splitter's media pieces can be (they end on box boundaries).
func boxesOf(t *testing.T, media []byte) [][]byte {
	var out [][]byte
	require.NoError(t, children(media, 0, func(h box, body []byte, off int64) error {
		end := int(off) + len(body)
		out = append(out, media[int(off)-h.hdr:end])
		return nil
	}))
	return out
}

// framesOf is ffprobe's count of decoded video frames in path, and what it
// printed at level error.
func framesOf(t *testing.T, path string) (int, string) {
	cmd := exec.Command(testutil.Tool(t, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	require.NoError(t, cmd.Run(), errs.String())
	n, err := strconv.Atoi(strings.TrimSpace(out.String()))
	require.NoError(t, err, out.String())
	return n, errs.String()
}

// probeDuration is ffprobe's duration of path's format, s.
func probeDuration(t *testing.T, path string) float64 {
	out, err := exec.Command(testutil.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, string(out))
	return d
}

// A FileWriter's file is the init and the fragments; a fragment whose mdat
// was dropped (its moof came, then a discontinuity) is taken back, so
// ffmpeg decodes what is left without an error; the Duration is the
// fragments' time.
func TestFileWriterTakesBackAFragmentCutShort(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "ffmpeg", "h264_fragdur.mp4"))
	require.NoError(t, err)
	r := runSplitter(testMaxPiece, data)
	require.True(t, r.pieces[0].Init)
	var media [][]byte
	var keys []bool
	for _, p := range r.pieces[1:] {
		for i, b := range boxesOf(t, p.Data) {
			media = append(media, b)
			keys = append(keys, i == 0 && p.Keyframe)
		}
	}

	write := func(path string, drop func(i int) bool) *FileWriter {
		f, err := os.Create(path)
		require.NoError(t, err)
		defer f.Close()
		w, err := NewFileWriter(f, r.pieces[0].Data)
		require.NoError(t, err)
		gap := false
		for i, b := range media {
			if drop(i) {
				gap = true
				continue
			}
			if gap && !keys[i] {
				continue // the hub skips to the next keyframe
			}
			require.NoError(t, w.Media(b, keys[i], gap))
			gap = false
		}
		require.NoError(t, w.Close())
		return w
	}
	dir := t.TempDir()
	whole := write(filepath.Join(dir, "whole.mp4"), func(int) bool { return false })
	got, err := os.ReadFile(filepath.Join(dir, "whole.mp4"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "nothing dropped: the file is the stream (its mfra too)")
	d := probeDuration(t, filepath.Join(dir, "whole.mp4"))
	assert.InDelta(t, d, whole.Duration().Seconds(), 0.001, "ffprobe's duration")
	assert.False(t, whole.Empty())
	all, errs := framesOf(t, filepath.Join(dir, "whole.mp4"))
	assert.Empty(t, errs)

	// Drop the mdat after the first moof that follows the first keyframe
	// fragment: its moof is written, then taken back.
	cut := -1
	for i := 1; i < len(media) && cut < 0; i++ {
		if bytes.Equal(media[i][4:8], []byte("mdat")) && i > 2 {
			cut = i
		}
	}
	require.Positive(t, cut)
	path := filepath.Join(dir, "cut.mp4")
	w := write(path, func(i int) bool { return i == cut })
	n, errs := framesOf(t, path)
	assert.Empty(t, errs, "no moof without its mdat")
	assert.Less(t, n, all)
	assert.Positive(t, n)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, w.Size(), info.Size())
	cutData, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(cutData, []byte("mfra")), "the stream's mfra, whose offsets no longer hold, is left out")
	assert.True(t, bytes.Contains(data, []byte("mfra")))

	// A moof without its mdat at the end is taken back at Close.
	last := len(media) - 1
	for string(media[last][4:8]) != "mdat" {
		last--
	}
	path = filepath.Join(dir, "end.mp4")
	write(path, func(i int) bool { return i == last })
	_, errs = framesOf(t, path)
	assert.Empty(t, errs)
}
