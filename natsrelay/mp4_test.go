package natsrelay

import (
	"bytes"
	"net/http"
	"os"
	"testing"

	relay "github.com/segrelay/relay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An MP4 stream published on A plays on B: the container travels as the
// Start's MIME (the wire's Segrelay-Mime; a Container is ContainerOf it, so
// the wire needs no field of its own), B's viewer gets the stream byte for
// byte, a late viewer on B gets the init and the media from the last
// keyframe fragment, and B's live.mp4 serves it (406 on live.webm).
func TestMP4AcrossNodes(t *testing.T) {
	file, err := os.ReadFile("../internal/mp4/testdata/ffmpeg/h264_fragdur.mp4")
	require.NoError(t, err)
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)

	early, err := b.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer early.Close()
	waitInterest(t, b)

	pub, err := a.hub.Publish(ctx, "room", "")
	require.NoError(t, err)
	defer pub.Close()
	for off := 0; off < len(file); off += 4096 {
		_, err := pub.Write(file[off:min(off+4096, len(file))])
		require.NoError(t, err)
	}
	require.NoError(t, pub.Flush())

	var segs []relay.Segment
	var got []byte
	for !bytes.Equal(file, got) {
		seg, err := early.Next(ctx)
		require.NoError(t, err)
		segs = append(segs, seg)
		got = append(got, seg.Data...)
		require.LessOrEqual(t, len(got), len(file))
	}
	require.Equal(t, relay.KindStart, segs[0].Kind)
	assert.Equal(t, relay.ContainerMP4, segs[0].Container())
	assert.Equal(t, `video/mp4; codecs="avc1.64000b,mp4a.40.2"`, segs[0].MIME)
	info := b.hub.Streams()
	require.Len(t, info, 1)
	assert.Equal(t, relay.ContainerMP4, info[0].Container)
	last := 0
	for i, s := range segs {
		if s.Kind == relay.KindMedia && s.Keyframe {
			last = i
		}
	}
	require.Greater(t, last, 2)

	late, err := b.hub.Subscribe(ctx, "room")
	require.NoError(t, err)
	defer late.Close()
	var lateSegs []relay.Segment
	for len(lateSegs) < 2+len(segs)-last {
		seg, err := late.Next(ctx)
		require.NoError(t, err)
		lateSegs = append(lateSegs, seg)
	}
	assert.Equal(t, relay.ContainerMP4, lateSegs[0].Container())
	assert.Equal(t, segs[1].Data, lateSegs[1].Data, "the init")
	for i, s := range lateSegs[2:] {
		assert.Equal(t, segs[last+i].Data, s.Data)
		assert.Equal(t, segs[last+i].Keyframe, s.Keyframe)
	}

	for route, want := range map[string]int{"room/live.mp4": http.StatusOK, "room/live.webm": http.StatusNotAcceptable} {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, b.srv.URL+"/live/"+route, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, route)
	}
}
