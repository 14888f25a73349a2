package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The recordings in testdata/recordings are real Chromium MediaRecorder
// output, one file per dataavailable blob; testdata/ffmpeg holds files
// written by ffmpeg. Their expected.json were made by mkvinfo, not by this
// package (see testdata/make_expected.sh).

type expectedWebM struct {
	TotalBytes int    `json:"totalBytes"`
	MIME       string `json:"mime"`
	InitBytes  int    `json:"initBytes"`
	Clusters   []struct {
		Offset   int  `json:"offset"`
		Keyframe bool `json:"keyframe"`
	} `json:"clusters"`
	Blobs []int `json:"blobs"`
}

func (x expectedWebM) layout(data []byte) webmLayout {
	l := webmLayout{Data: data, InitLen: x.InitBytes, MIME: x.MIME}
	for _, c := range x.Clusters {
		l.Clusters = append(l.Clusters, webmCluster{Offset: c.Offset, Keyframe: c.Keyframe})
	}
	return l
}

func readExpected(t *testing.T, path string) expectedWebM {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var x expectedWebM
	require.NoError(t, json.Unmarshal(b, &x))
	return x
}

// recording is one MediaRecorder run: its blobs, and what mkvinfo found.
type recording struct {
	name   string
	blobs  [][]byte
	layout webmLayout
}

func loadRecordings(t *testing.T) []recording {
	t.Helper()
	dirs, err := filepath.Glob("testdata/recordings/*/expected.json")
	require.NoError(t, err)
	require.NotEmpty(t, dirs, "testdata/recordings is missing")
	var recs []recording
	for _, ex := range dirs {
		dir := filepath.Dir(ex)
		x := readExpected(t, ex)
		files, err := filepath.Glob(filepath.Join(dir, "*.webm"))
		require.NoError(t, err)
		rec := recording{name: filepath.Base(dir)}
		var all []byte
		for i, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.Equal(t, x.Blobs[i], len(b), f)
			rec.blobs = append(rec.blobs, b)
			all = append(all, b...)
		}
		require.Equal(t, x.TotalBytes, len(all))
		rec.layout = x.layout(all)
		recs = append(recs, rec)
	}
	return recs
}

func loadFFmpegFiles(t *testing.T) map[string]webmLayout {
	t.Helper()
	files, err := filepath.Glob("testdata/ffmpeg/*.webm")
	require.NoError(t, err)
	require.NotEmpty(t, files, "testdata/ffmpeg is missing")
	out := map[string]webmLayout{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		x := readExpected(t, f+".expected.json")
		require.Equal(t, x.TotalBytes, len(b))
		out[filepath.Base(f)] = x.layout(b)
	}
	return out
}

// Real MediaRecorder blobs, one WebSocket message each, as relay.js sends
// them: every Cluster starts a segment, keyframes are where mkvinfo saw them.
func TestRealRecordingsStreamMode(t *testing.T) {
	for _, rec := range loadRecordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			e := newEnv(t)
			sub := e.subscribe("cam")
			pub := e.publish("cam", PublishStart{MIME: rec.layout.MIME})
			ctx := testCtx(t)
			for _, b := range rec.blobs {
				require.NoError(t, pub.Send(ctx, b))
			}
			require.NoError(t, pub.Close())
			segs := readUntilEnd(t, sub)
			checkWebMSession(t, segs, rec.layout)
		})
	}
}

// The MIME type the hub reads from real recordings matches the browser's.
func TestRealRecordingsMIME(t *testing.T) {
	for _, rec := range loadRecordings(t) {
		sp := newWebMSplitter(defaultMaxSegmentBytes)
		for _, b := range rec.blobs {
			require.NoError(t, sp.write(b, func(webmPiece) error { return nil }))
		}
		assert.Equal(t, rec.layout.MIME, sp.mime(), rec.name)
	}
}

// A viewer joining in the middle of a real recording starts at the last
// keyframe Cluster: init, then media from that Cluster on.
func TestRealRecordingsLateJoin(t *testing.T) {
	for _, rec := range loadRecordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			hub := NewHub(WithSubscriberQueueBytes(64 << 20)) // the subscriber reads after the whole recording
			ctx := context.Background()
			defer hub.Shutdown(ctx)
			pub, err := hub.Publish(ctx, "cam", rec.layout.MIME)
			require.NoError(t, err)
			half := len(rec.blobs) / 2
			sent := 0
			for _, b := range rec.blobs[:half] {
				_, err := pub.Write(b)
				require.NoError(t, err)
				sent += len(b)
			}
			sub, err := hub.Subscribe(ctx, "cam")
			require.NoError(t, err)

			// The keyframe Cluster the late joiner must start from.
			var from int
			for _, c := range rec.layout.Clusters {
				if c.Keyframe && c.Offset < sent {
					from = c.Offset
				}
			}
			require.NotZero(t, from)
			start, err := sub.Next(ctx)
			require.NoError(t, err)
			assert.Equal(t, KindStart, start.Kind)
			init, err := sub.Next(ctx)
			require.NoError(t, err)
			assert.Equal(t, rec.layout.Data[:rec.layout.InitLen], init.Data)
			first, err := sub.Next(ctx)
			require.NoError(t, err)
			assert.True(t, first.Keyframe)
			assert.False(t, first.Discontinuity, "a late joiner's first segments carry no discontinuity")
			// Every byte from that Cluster on, to the end: no segment cut short.
			got := append([]byte(nil), first.Data...)
			for _, b := range rec.blobs[half:] {
				_, err := pub.Write(b)
				require.NoError(t, err)
			}
			pub.Close()
			for {
				seg, err := sub.Next(ctx)
				require.NoError(t, err)
				if seg.Kind == KindEnd {
					break
				}
				got = append(got, seg.Data...)
			}
			assert.Equal(t, len(rec.layout.Data)-from, len(got), "bytes from the keyframe Cluster on")
			assert.True(t, bytes.Equal(rec.layout.Data[from:], got))
			sub.Close()
		})
	}
}

// ffmpeg's files have known sizes, SeekHead, Void and Cues; the hub keeps
// every byte and cuts at every Cluster.
func TestFFmpegFilesStreamMode(t *testing.T) {
	for name, l := range loadFFmpegFiles(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			sub := e.subscribe("f")
			pub := e.publish("f", PublishStart{})
			ctx := testCtx(t)
			for _, m := range cutEvery(l.Data, 5120) {
				require.NoError(t, pub.Send(ctx, m))
			}
			require.NoError(t, pub.Close())
			segs := readUntilEnd(t, sub)
			assert.Equal(t, l.MIME, segs[0].MIME)
			checkWebMSession(t, segs, l)
		})
	}
}
