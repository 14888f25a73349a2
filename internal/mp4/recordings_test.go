package mp4

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The MIME types of Chromium's MP4 recordings (testdata/recordings), as
// ffprobe names their codecs: H.264 Constrained Baseline (42c0.., level 31 = 0x1f) from the
// fake camera with Opus, VP9 profile 0 (its vpcC says level 0, which
// Chromium's isTypeSupported refuses: the MIME says 10), Opus alone.
var recordingMIME = map[string]string{
	"camera_avc1-opus_100_kf1000":  `video/mp4; codecs="opus,avc1.42c01f"`,
	"camera_avc1-opus_1000_kf1000": `video/mp4; codecs="opus,avc1.42c01f"`,
	"canvas_vp9_100_kf1000":        `video/mp4; codecs="vp09.00.10.08"`,
	"mic_opus_1000":                `audio/mp4; codecs="opus"`,
}

// TestMP4SplitterChromiumRecordings writes each recording blob by blob, as
// the publisher page sends them, then in 1-byte writes: the inits and
// fragments are where the box lister and ffprobe put them.
func TestMP4SplitterChromiumRecordings(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "recordings", "*"))
	require.NoError(t, err)
	n := 0
	for _, dir := range dirs {
		blobs, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9][0-9][0-9][0-9].mp4"))
		if len(blobs) == 0 {
			continue
		}
		n++
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			var chunks [][]byte
			for _, f := range blobs {
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				chunks = append(chunks, b)
			}
			data := cat(chunks...)
			want := referencePieces(t, data, readProbe(t, filepath.Join(dir, "expected")))
			require.Greater(t, len(want), 2)
			for _, c := range [][][]byte{chunks, chunksOf(data, 1)} {
				r := runSplitter(testMaxPiece, c...)
				checkPieces(t, r, data)
				require.Equal(t, want, r.marks())
				require.Equal(t, recordingMIME[name], lastMIME(r))
			}
		})
	}
	require.Equal(t, len(recordingMIME), n)
}
