package relay

import (
	"bytes"
	"testing"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The same through the hub: the subscriber gets each Cluster as one segment
// of exactly its length, then the Cues as a media segment of its own.
func TestCuesAfterUnknownClusterEndToEnd(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	data, cues := webmtest.CuesAfter(l)
	e := newEnv(t)
	sub := e.subscribe("s")
	pub := e.publish("s", PublishStart{MIME: l.MIME})
	require.NoError(t, pub.Send(testCtx(t), data))
	require.NoError(t, pub.Close())
	segs := readUntilEnd(t, sub)
	require.Len(t, segs, 2+len(l.Clusters)+1+1, "start, init, Clusters, Cues, end")
	assert.Equal(t, l.Data[:l.InitLen], segs[1].Data)
	for i, c := range l.Clusters {
		seg := segs[2+i]
		assert.Equal(t, c.Keyframe, seg.Keyframe, "Cluster %d", i)
		assert.True(t, bytes.Equal(l.Data[c.Offset:c.Offset+c.Len], seg.Data), "Cluster %d: %d bytes, want %d", i, len(seg.Data), c.Len)
	}
	seg := segs[2+len(l.Clusters)]
	assert.Equal(t, KindMedia, seg.Kind)
	assert.False(t, seg.Keyframe)
	assert.Equal(t, cues, seg.Data)
}
