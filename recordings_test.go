package relay

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm/webmtest"
)

// The recordings in testdata/recordings are real Chromium MediaRecorder
// output, one file per dataavailable blob; testdata/ffmpeg holds files
// written by ffmpeg. webmtest loads them with what mkvinfo found in them.

// Real MediaRecorder blobs, one WebSocket message each, as relay.js sends
// them: every Cluster starts a segment, keyframes are where mkvinfo saw them.
func TestRealRecordingsStreamMode(t *testing.T) {
	for _, rec := range webmtest.LoadRecordings(t, "testdata/recordings") {
		t.Run(rec.Name, func(t *testing.T) {
			e := newEnv(t)
			sub := e.subscribe("cam")
			pub := e.publish("cam", PublishStart{MIME: rec.Layout.MIME})
			ctx := testCtx(t)
			for _, b := range rec.Blobs {
				require.NoError(t, pub.Send(ctx, b))
			}
			require.NoError(t, pub.Close())
			segs := readUntilEnd(t, sub)
			checkWebMSession(t, segs, rec.Layout)
		})
	}
}

// A viewer joining in the middle of a real recording starts at the last
// keyframe Cluster: init, then media from that Cluster on.
func TestRealRecordingsLateJoin(t *testing.T) {
	for _, rec := range webmtest.LoadRecordings(t, "testdata/recordings") {
		t.Run(rec.Name, func(t *testing.T) {
			hub := NewHub(WithSubscriberQueueBytes(64 << 20)) // the subscriber reads after the whole recording
			ctx := context.Background()
			defer hub.Shutdown(ctx)
			pub, err := hub.Publish(ctx, "cam", rec.Layout.MIME)
			require.NoError(t, err)
			half := len(rec.Blobs) / 2
			sent := 0
			for _, b := range rec.Blobs[:half] {
				_, err := pub.Write(b)
				require.NoError(t, err)
				sent += len(b)
			}
			// What Write holds back to coalesce it goes out now, as when
			// the recorder pauses: the last keyframe Cluster is published.
			require.NoError(t, pub.Flush())
			sub, err := hub.Subscribe(ctx, "cam")
			require.NoError(t, err)

			// The keyframe Cluster the late joiner must start from.
			var from int
			for _, c := range rec.Layout.Clusters {
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
			assert.Equal(t, rec.Layout.Data[:rec.Layout.InitLen], init.Data)
			first, err := sub.Next(ctx)
			require.NoError(t, err)
			assert.True(t, first.Keyframe)
			assert.False(t, first.Discontinuity, "a late joiner's first segments carry no discontinuity")
			// Every byte from that Cluster on, to the end: no segment cut short.
			got := append([]byte(nil), first.Data...)
			for _, b := range rec.Blobs[half:] {
				_, err := pub.Write(b)
				require.NoError(t, err)
			}
			pub.Close()
			got = append(got, sessionBytes(t, ctx, sub)...)
			assert.Equal(t, len(rec.Layout.Data)-from, len(got), "bytes from the keyframe Cluster on")
			assert.True(t, bytes.Equal(rec.Layout.Data[from:], got))
			sub.Close()
		})
	}
}

// ffmpeg's files have known sizes, SeekHead, Void and Cues; the hub keeps
// every byte and cuts at every Cluster.
func TestFFmpegFilesStreamMode(t *testing.T) {
	for name, l := range webmtest.LoadFFmpegFiles(t, "testdata/ffmpeg") {
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
