package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/ebml"
	"github.com/segrelay/relay/internal/webm/webmtest"
)

// sparseFrame is one video frame of a recording, and when it is shown (ms).
type sparseFrame struct {
	data []byte
	key  bool
	t    int64
}

// sparseStream rebuilds Firefox's canvas recording as the worst stream
// Firefox's MediaRecorder makes: a keyframe every several seconds, a Cluster
// every second that starts without one, the frame before each such Cluster
// longer than the first frame in it (so the browser's guess of the last
// frame's duration overlaps the next Cluster), and skipped frames (a 250 ms
// gap) at the end of some pieces. VP8 frames carry no timestamp: they can be
// re-timed freely. It returns the init and the pieces to publish, and the
// time of the last frame (ms).
func sparseStream(t *testing.T) (init []byte, pieces [][]byte, last int64) {
	t.Helper()
	var rec *webmtest.Recording
	for _, r := range webmtest.LoadRecordings(t, filepath.Join("..", "testdata", "recordings")) {
		if r.Name == "firefox_canvas_vp8_250" {
			rec = &r
			break
		}
	}
	require.NotNil(t, rec, "testdata/recordings/firefox_canvas_vp8_250 is missing")
	data := bytes.Join(rec.Blobs, nil)
	var frames []sparseFrame
	for _, e := range webmtest.OracleWalk(t, data) {
		switch {
		case e.ID == ebml.IDCluster && init == nil:
			init = data[:e.Start]
		case e.ID == ebml.IDSimpleBlock:
			body := data[e.Data:e.End]
			require.Equal(t, byte(0x81), body[0], "a block of track 1")
			frames = append(frames, sparseFrame{data: body[4:], key: body[3]&0x80 != 0})
		}
	}
	require.NotEmpty(t, frames)
	require.True(t, frames[0].key)

	// Times: 50 ms, then 33 ms steps; a new Cluster every ~second right
	// after a 50 ms step (or at a keyframe); every 9th piece ends on a frame
	// followed by a 250 ms gap.
	var out []byte
	clusterAt := int64(-1)
	now := int64(0)
	piece := 0
	for i, f := range frames {
		if i > 0 {
			step := int64(33)
			if i%3 == 1 {
				step = 50
			}
			now += step
		}
		f.t = now
		newCluster := f.key || (now-clusterAt >= 1000 && i%3 == 2)
		if newCluster {
			out = ebml.AppendID(out, ebml.IDCluster)
			out = ebml.AppendUnknownSize(out)
			out = append(out, ebml.Uint(ebml.IDTimecode, uint64(now))...)
			clusterAt = now
		}
		rel := now - clusterAt
		flags := byte(0)
		if f.key {
			flags = 0x80
		}
		out = append(out, ebml.Element(ebml.IDSimpleBlock, []byte{0x81, byte(rel >> 8), byte(rel), flags}, f.data)...)
		last = now
		if i%8 == 7 { // a piece, as a 250 ms blob would be
			pieces = append(pieces, out)
			out = nil
			piece++
			if piece%9 == 0 {
				now += 250 - 33
			}
		}
	}
	if len(out) > 0 {
		pieces = append(pieces, out)
	}
	return init, pieces, last
}

// TestBrowserSparseKeyframes plays sparseStream through relay.js in both
// browsers. Appended as it comes, such a stream loses seconds of frames in
// MSE: the SourceBuffer replaces the frame a Cluster's first frame overlaps
// (and drops what depends on it until the next keyframe), and takes a gap
// at the start of an append for a discontinuity (and drops until the next
// keyframe). The player must append it so that every frame stays: one
// buffered range, from the first frame to the last.
func TestBrowserSparseKeyframes(t *testing.T) {
	init, pieces, last := sparseStream(t)
	browsers := map[string]func(*testing.T) *browser{"chromium": func(t *testing.T) *browser { return startBrowser(t) }, "firefox": startFirefox}
	for _, kind := range []string{"chromium", "firefox"} {
		t.Run(kind, func(t *testing.T) {
			b := browsers[kind](t)
			e := newBrowserEnv(t, "testdata/browser")
			v := b.open(t, kind+"-viewer", e.pageURL("watch.html?stream=sparse"))
			waitPage(t, v, "the viewer to connect", `player.status === "waiting"`, 15*time.Second)

			pub, err := e.currentHub().Publish(testCtx(t), "sparse", "video/webm;codecs=vp8")
			require.NoError(t, err)
			defer pub.Close()
			_, err = pub.Write(init)
			require.NoError(t, err)
			for _, p := range pieces {
				_, err = pub.Write(p)
				require.NoError(t, err)
				require.NoError(t, pub.Flush()) // each piece its own segments, as a browser's blobs
				time.Sleep(25 * time.Millisecond)
			}
			// The last frames are held until the player knows what follows:
			// End lets them go.
			require.NoError(t, pub.Close())

			type state struct {
				Ranges   [][2]float64   `json:"ranges"`
				Segments int            `json:"segments"`
				Stats    map[string]int `json:"stats"`
			}
			const probe = `(() => { const b = video.buffered, r = []; for (let i = 0; i < b.length; i++) r.push([b.start(i), b.end(i)]); return {ranges: r, segments: player.stats.segments, stats: player.stats}; })()`
			want := float64(last) / 1000
			waitPage(t, v, "every segment to arrive", fmt.Sprintf("player.stats.segments >= %d", len(pieces)), 15*time.Second)
			var s state
			deadline := time.Now().Add(10 * time.Second)
			for {
				s = eval[state](t, v, probe)
				if n := len(s.Ranges); n > 0 && s.Ranges[n-1][1] >= want-0.05 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: %d pieces, last frame at %.3f s; buffered %v; player %v", kind, len(pieces), want, s.Ranges, s.Stats)
			require.Len(t, s.Ranges, 1, "frames were dropped: buffered %v", s.Ranges)
			require.LessOrEqual(t, s.Ranges[0][0], 0.1, "buffered %v", s.Ranges)
			require.GreaterOrEqual(t, s.Ranges[0][1], want-0.05, "buffered %v: frames were dropped, the last is at %.3f s", s.Ranges, want)
			require.Zero(t, s.Stats["droppedSegments"])
		})
	}
}
