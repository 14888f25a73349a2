package relay

import (
	"bytes"
	"context"
	"testing"

	"github.com/segrelay/relay/internal/ebml"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Cluster without any video block, in a stream with video, is no place to
// start: its segment is no keyframe, over WebSocket, and a late joiner
// after it still starts at the last Cluster that began with a keyframe.
func TestClusterWithoutVideoIsNoKeyframe(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 1, Frames: 1})
	audioOnly := ebml.Element(ebml.IDCluster, ebml.Uint(ebml.IDTimecode, 1000),
		ebml.Element(ebml.IDSimpleBlock, []byte{0x81, 0, 0, 0x80, 0xFC, 1, 2, 3}))
	data := append(append([]byte(nil), l.Data...), audioOnly...)
	key := l.Data[l.Clusters[0].Offset:]

	e := newEnv(t)
	sub := e.subscribe("s")
	pub := e.publish("s", PublishStart{MIME: l.MIME})
	require.NoError(t, pub.Send(testCtx(t), data))
	require.NoError(t, pub.Close())
	segs := readUntilEnd(t, sub)
	require.Len(t, segs, 5, "start, init, two Clusters, end")
	assert.True(t, segs[2].Keyframe)
	assert.True(t, bytes.Equal(key, segs[2].Data))
	assert.False(t, segs[3].Keyframe, "the audio-only Cluster")
	assert.Equal(t, audioOnly, segs[3].Data)

	hub := NewHub()
	ctx := context.Background()
	defer hub.Shutdown(ctx)
	p, err := hub.Publish(ctx, "s", l.MIME)
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Write(data)
	require.NoError(t, err)
	late, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	defer late.Close()
	got := nextN(t, late, 4)
	assert.Equal(t, []Segment{{Kind: KindStart, MIME: l.MIME}, {Kind: KindInit, Seq: 1}, {Kind: KindMedia, Seq: 2, Keyframe: true}, {Kind: KindMedia, Seq: 3}}, got,
		"the late joiner starts at the keyframe Cluster, not at the audio-only one")
}

// The recordings keep one whose Clusters mostly start without a keyframe
// (audio makes Chromium start Clusters more often than keyframes come), so
// the keyframe and late-join tests see that case on real data.
func TestRecordingsIncludeMostlyNonKeyframeClusters(t *testing.T) {
	found := false
	for _, rec := range webmtest.LoadRecordings(t, "testdata/recordings") {
		nonKey := 0
		for _, c := range rec.Layout.Clusters {
			if !c.Keyframe {
				nonKey++
			}
		}
		if nonKey*3 >= len(rec.Layout.Clusters)*2 {
			found = true
			t.Logf("%s: %d of %d Clusters start without a keyframe", rec.Name, nonKey, len(rec.Layout.Clusters))
		}
	}
	assert.True(t, found, "no recording with at least 2/3 of its Clusters starting without a keyframe")
}
