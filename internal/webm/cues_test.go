package webm

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm/webmtest"
)

// A Cluster of unknown size ends where Cues start (Cues cannot be a Cluster
// child): the last Cluster's piece stops right before them, and the Cues
// follow as a piece of their own that starts no Cluster.
func TestWebMSplitterCuesEndUnknownCluster(t *testing.T) {
	for name, spec := range map[string]webmtest.Spec{
		"video":       {Clusters: 3, KeyEvery: 2},
		"audio+video": {Audio: true, Clusters: 3},
	} {
		t.Run(name, func(t *testing.T) {
			l := webmtest.Build(spec)
			data, cues := webmtest.CuesAfter(l)
			r := runSplitter(testMaxPiece, data) // one write: one piece per Cluster
			require.NoError(t, r.err)
			require.True(t, bytes.Equal(data, r.data()))
			require.Len(t, r.pieces, 1+len(l.Clusters)+1, "init, one piece per Cluster, Cues")
			for i, c := range l.Clusters {
				p := r.pieces[1+i]
				assert.Equal(t, c.Offset, r.starts[1+i])
				assert.Equal(t, c.Len, len(p.Data), "Cluster %d: exact length", i)
				assert.True(t, p.ClusterStart)
			}
			last := r.pieces[len(r.pieces)-1]
			assert.Equal(t, cues, last.Data)
			assert.False(t, last.ClusterStart)
			assert.False(t, last.Keyframe)
		})
	}
}
