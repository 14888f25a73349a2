package webmtest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tiny EBML reader of the tests' own (OracleWalk, OracleClusterEnds), written from the EBML spec (RFC
// 8794) and independent of the splitter's readID/readSize/endsUnknownCluster:
// the oracle for where elements start and end.

// Element IDs the oracle needs, as written in the stream.
const (
	oidEBML    = 0x1A45DFA3
	oidSegment = 0x18538067
	oidCluster = 0x1F43B675
)

// oracleLevel1 are the IDs of the Segment's children (Matroska level 1):
// one of them, or a new EBML header or Segment, ends a Cluster of unknown
// size.
var oracleLevel1 = map[uint64]bool{
	0x114D9B74: true, // SeekHead
	0x1549A966: true, // Info
	0x1654AE6B: true, // Tracks
	0x1F43B675: true, // Cluster
	0x1C53BB6B: true, // Cues
	0x1043A770: true, // Chapters
	0x1254C367: true, // Tags
	0x1941A469: true, // Attachments
	oidEBML:    true,
	oidSegment: true,
}

// OracleVint reads a variable-size integer at b: its length (1 to 8, from
// the number of leading zero bits of the first byte), the value with the
// marker bit (for IDs) and without it (for sizes).
func OracleVint(b []byte) (n int, withMarker, value uint64, err error) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, 0, fmt.Errorf("bad vint")
	}
	n = 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if len(b) < n {
		return 0, 0, 0, fmt.Errorf("short vint")
	}
	for i := 0; i < n; i++ {
		withMarker = withMarker<<8 | uint64(b[i])
	}
	value = withMarker & (1<<(7*uint(n)) - 1)
	return n, withMarker, value, nil
}

// OracleElem is one element: ID, where it starts, where its data starts and
// where it ends.
type OracleElem struct {
	ID               uint64
	Level            int // 0 top, 1 Segment child, 2 Cluster child
	Start, Data, End int
}

// OracleWalk lists every element of a valid stream at levels 0, 1 and 2
// (Cluster children), entering only the Segment and Cluster masters.
// Unknown sizes are allowed for Segment and Cluster only.
func OracleWalk(t testing.TB, data []byte) []OracleElem {
	t.Helper()
	var out []OracleElem
	const none = -2
	segEnd, clusterEnd := none, none // -1: unknown size
	clusterIdx := -1
	pos := 0
	for pos < len(data) {
		if clusterEnd >= 0 && pos == clusterEnd {
			clusterEnd = none
		}
		if segEnd >= 0 && pos == segEnd {
			segEnd, clusterEnd = none, none
		}
		idLen, id, _, err := OracleVint(data[pos:])
		require.NoError(t, err, "ID at %d", pos)
		require.LessOrEqual(t, idLen, 4, "ID at %d", pos)
		sizeLen, _, size, err := OracleVint(data[pos+idLen:])
		require.NoError(t, err, "size at %d", pos)
		unknown := size == 1<<(7*uint(sizeLen))-1
		if clusterEnd == -1 && oracleLevel1[id] {
			out[clusterIdx].End = pos
			clusterEnd = none
		}
		if segEnd == -1 && (id == oidEBML || id == oidSegment) {
			segEnd = none
		}
		level := 0
		switch {
		case clusterEnd != none:
			level = 2
		case segEnd != none:
			level = 1
		}
		el := OracleElem{ID: id, Level: level, Start: pos, Data: pos + idLen + sizeLen, End: -1}
		if !unknown {
			el.End = el.Data + int(size)
		}
		out = append(out, el)
		switch {
		case id == oidSegment && level == 0:
			segEnd = el.End
			pos = el.Data
		case id == oidCluster && level == 1:
			clusterEnd = el.End
			clusterIdx = len(out) - 1
			pos = el.Data
		default:
			require.False(t, unknown, "unknown size at %d", pos)
			pos = el.End
		}
	}
	require.Equal(t, len(data), pos)
	for i := range out {
		if out[i].End < 0 { // open to the end of the stream
			out[i].End = len(data)
		}
	}
	return out
}

// OracleClusterEnds maps each Cluster's offset to where it ends.
func OracleClusterEnds(t testing.TB, data []byte) map[int]int {
	ends := map[int]int{}
	for _, e := range OracleWalk(t, data) {
		if e.ID == oidCluster && e.Level == 1 {
			ends[e.Start] = e.End
		}
	}
	return ends
}

// The oracle agrees with mkvinfo (expected.json) and with the test builder
// on where Clusters start, and with the builder on where they end.
