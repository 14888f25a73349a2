package webm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/segrelay/relay/internal/webm/webmtest"
)

// The oracle itself, checked against mkvinfo's Cluster offsets and the
// builder's layouts.
func TestEBMLOracle(t *testing.T) {
	for name, l := range webmtest.LoadFFmpegFiles(t, ffmpegDir) {
		var starts []int
		for _, e := range webmtest.OracleWalk(t, l.Data) {
			if e.ID == 0x1F43B675 {
				starts = append(starts, e.Start)
			}
		}
		var want []int
		for _, c := range l.Clusters {
			want = append(want, c.Offset)
		}
		require.Equal(t, want, starts, name)
	}
	for name, spec := range testSpecs {
		l := webmtest.Build(spec)
		ends := webmtest.OracleClusterEnds(t, l.Data)
		require.Len(t, ends, len(l.Clusters), name)
		for _, c := range l.Clusters {
			require.Equal(t, c.Offset+c.Len, ends[c.Offset], "%s: Cluster at %d", name, c.Offset)
		}
	}
	_, _, _, err := webmtest.OracleVint([]byte{0})
	require.Error(t, err)
	n, id, v, err := webmtest.OracleVint([]byte{0x1A, 0x45, 0xDF, 0xA3})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, uint64(0x1A45DFA3), id)
	require.Equal(t, uint64(0x0A45DFA3), v)
}
