package relay

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cuesAfter returns l's stream followed by a Cues element, and the Cues.
func cuesAfter(l webmLayout) ([]byte, []byte) {
	cues := ebmlEl(idCues, ebmlEl(tidCuePoint, ebmlUint(tidCueTime, 0),
		ebmlEl(tidCueTrackPositions, ebmlUint(tidCueTrack, 1), ebmlUint(tidCueClusterPosition, 0))))
	return append(append([]byte(nil), l.Data...), cues...), cues
}

// A Cluster of unknown size ends where Cues start (Cues cannot be a Cluster
// child): the last Cluster's piece stops right before them, and the Cues
// follow as a piece of their own that starts no Cluster.
func TestWebMSplitterCuesEndUnknownCluster(t *testing.T) {
	for name, spec := range map[string]webmSpec{
		"video":       {Clusters: 3, KeyEvery: 2},
		"audio+video": {Audio: true, Clusters: 3},
	} {
		t.Run(name, func(t *testing.T) {
			l := buildWebM(spec)
			data, cues := cuesAfter(l)
			r := runSplitter(testMaxPiece, data) // one write: one piece per Cluster
			require.NoError(t, r.err)
			require.True(t, bytes.Equal(data, r.data()))
			require.Len(t, r.pieces, 1+len(l.Clusters)+1, "init, one piece per Cluster, Cues")
			for i, c := range l.Clusters {
				p := r.pieces[1+i]
				assert.Equal(t, c.Offset, r.starts[1+i])
				assert.Equal(t, c.Len, len(p.data), "Cluster %d: exact length", i)
				assert.True(t, p.clusterStart)
			}
			last := r.pieces[len(r.pieces)-1]
			assert.Equal(t, cues, last.data)
			assert.False(t, last.clusterStart)
			assert.False(t, last.keyframe)
		})
	}
}

// The same through the hub: the subscriber gets each Cluster as one segment
// of exactly its length, then the Cues as a media segment of its own.
func TestCuesAfterUnknownClusterEndToEnd(t *testing.T) {
	l := buildWebM(webmSpec{Audio: true, Clusters: 3, KeyEvery: 2})
	data, cues := cuesAfter(l)
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
