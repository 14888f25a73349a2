package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/internal/ebml"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// TestBrowserFirefoxWebCodecsWebM checks the WebM that relay.js's
// WebCodecsRecorder makes in Firefox (the clock with the microphone: VP8
// from VideoEncoder, Opus from an audio MediaRecorder), as the hub received
// it: it parses; the init has a V_VP8 and an A_OPUS track; every Cluster
// starts with a video keyframe, about one a second; and within each Cluster
// block times never go back, across tracks (Chromium refuses a Cluster
// that does).
func TestBrowserFirefoxWebCodecsWebM(t *testing.T) {
	ff := startFirefox(t)
	e := newBrowserEnv(t, "testdata/browser")
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	sub, err := e.currentHub().Subscribe(ctx, "wc")
	require.NoError(t, err)
	defer sub.Close()

	pub := ff.open(t, "firefox-publisher", e.pageURL("publish.html?stream=wc&mic"))
	waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
	require.Equal(t, "webcodecs", eval[string](t, pub, "pub.encoder"))
	require.Equal(t, "video/webm;codecs=vp8,opus", eval[string](t, pub, "pub.mimeType"))

	// About 5 s of the session, as the hub cut it.
	var stream []byte
	keyframes := 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		switch seg.Kind {
		case relay.KindInit:
			require.Empty(t, stream, "one init")
			stream = append(stream, seg.Data...)
		case relay.KindMedia:
			require.NotEmpty(t, stream, "media after the init")
			require.False(t, seg.Discontinuity)
			if seg.Keyframe {
				keyframes++
			}
			stream = append(stream, seg.Data...)
		}
	}
	assert.GreaterOrEqual(t, keyframes, 3, "keyframes in 5 s (one a second asked)")

	els := webmtest.OracleWalk(t, stream)
	codecs := map[uint64]string{}
	var track uint64
	clusterAt, last := int64(-1), int64(-1)
	firstInCluster := false
	blocks := 0
	for _, el := range els {
		body := stream[el.Data:el.End]
		switch el.ID {
		case ebml.IDTracks:
			for _, entry := range children(t, body) {
				for _, c := range children(t, entry.body) {
					switch c.id {
					case ebml.IDTrackNumber:
						track = readUint(c.body)
					case ebml.IDCodecID:
						codecs[track] = string(c.body)
					}
				}
			}
		case ebml.IDCluster:
			firstInCluster = true
			last = -1
		case ebml.IDTimecode:
			clusterAt = int64(readUint(body))
		case ebml.IDSimpleBlock:
			blocks++
			tr := body[0] & 0x7f
			at := clusterAt + int64(int16(uint16(body[1])<<8|uint16(body[2])))
			if firstInCluster {
				assert.Equal(t, byte(1), tr, "a Cluster at %d ms starts with video", clusterAt)
				assert.NotZero(t, body[3]&0x80, "a Cluster at %d ms starts with a keyframe", clusterAt)
				firstInCluster = false
			}
			assert.GreaterOrEqual(t, at, last, "block times go back in the Cluster at %d ms (track %d)", clusterAt, tr)
			last = max(last, at)
		}
	}
	assert.Equal(t, map[uint64]string{1: "V_VP8", 2: "A_OPUS"}, codecs)
	assert.Greater(t, blocks, 100, "blocks in 5 s of video and audio")
	require.True(t, bytes.HasPrefix(stream, []byte{0x1a, 0x45, 0xdf, 0xa3}), "starts with an EBML header")
}

func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

type child struct {
	id   uint64
	body []byte
}

// children splits the body of a master element of known size into its children.
func children(t *testing.T, b []byte) []child {
	t.Helper()
	var out []child
	for len(b) > 0 {
		n, id, _, err := webmtest.OracleVint(b)
		require.NoError(t, err)
		m, _, size, err := webmtest.OracleVint(b[n:])
		require.NoError(t, err)
		require.LessOrEqual(t, n+m+int(size), len(b))
		out = append(out, child{id, b[n+m : n+m+int(size)]})
		b = b[n+m+int(size):]
	}
	return out
}
