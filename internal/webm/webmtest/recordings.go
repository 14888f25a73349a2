package webmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The recordings in testdata/recordings are real Chromium MediaRecorder
// output, one file per dataavailable blob; testdata/ffmpeg holds files
// written by ffmpeg. Their expected.json were made by mkvinfo, not by this
// module (see tools/expected), so they are an oracle independent of
// the splitter.

type expected struct {
	TotalBytes int    `json:"totalBytes"`
	MIME       string `json:"mime"`
	InitBytes  int    `json:"initBytes"`
	Clusters   []struct {
		Offset   int  `json:"offset"`
		Keyframe bool `json:"keyframe"`
	} `json:"clusters"`
	Blobs []int `json:"blobs"`
}

func (x expected) layout(data []byte) Layout {
	l := Layout{Data: data, InitLen: x.InitBytes, MIME: x.MIME}
	for _, c := range x.Clusters {
		l.Clusters = append(l.Clusters, Cluster{Offset: c.Offset, Keyframe: c.Keyframe})
	}
	return l
}

func readExpected(t testing.TB, path string) expected {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var x expected
	require.NoError(t, json.Unmarshal(b, &x))
	return x
}

// Recording is one MediaRecorder run: its blobs, and what mkvinfo found.
type Recording struct {
	Name   string
	Blobs  [][]byte
	Layout Layout
}

// LoadRecordings reads every recording under dir (the module's
// testdata/recordings).
func LoadRecordings(t testing.TB, dir string) []Recording {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dir, "*", "expected.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs, "%s is missing", dir)
	var recs []Recording
	for _, ex := range dirs {
		dir := filepath.Dir(ex)
		x := readExpected(t, ex)
		files, err := filepath.Glob(filepath.Join(dir, "*.webm"))
		require.NoError(t, err)
		rec := Recording{Name: filepath.Base(dir)}
		var all []byte
		for i, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.Equal(t, x.Blobs[i], len(b), f)
			rec.Blobs = append(rec.Blobs, b)
			all = append(all, b...)
		}
		require.Equal(t, x.TotalBytes, len(all))
		rec.Layout = x.layout(all)
		recs = append(recs, rec)
	}
	return recs
}

// LoadFFmpegFiles reads every .webm file in dir (the module's
// testdata/ffmpeg), by file name.
func LoadFFmpegFiles(t testing.TB, dir string) map[string]Layout {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.webm"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "%s is missing", dir)
	out := map[string]Layout{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		x := readExpected(t, f+".expected.json")
		require.Equal(t, x.TotalBytes, len(b))
		out[filepath.Base(f)] = x.layout(b)
	}
	return out
}
