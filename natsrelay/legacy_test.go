package natsrelay

import (
	"bytes"
	"testing"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// legacyChunk is the hub's default legacy chunk size.
const legacyChunk = 5120

// dialLegacy opens a connection in the legacy framing (no subprotocol).
func dialLegacy(t *testing.T, n *node, route string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(testCtx(t), n.url(route), nil)
	require.NoError(t, err)
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readLegacyFile reads one file in the legacy framing: chunks until a
// shorter one.
func readLegacyFile(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	var file []byte
	for {
		_, b, err := c.Read(testCtx(t))
		require.NoError(t, err)
		file = append(file, b...)
		if len(b) < legacyChunk {
			return file
		}
	}
}

// A legacy viewer on another node gets a legacy publisher's files as they
// were sent, as on the publisher's node: the bridge carries where a file
// ends and that the media comes in files (Segment.LegacyFiles, FileEnd). A
// file is passed on when it ends, not when the next keyframe comes.
func TestLegacyViewerOnAnotherNode(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})

	va := dialLegacy(t, a, "room/subscribe")
	vb := dialLegacy(t, b, "room/subscribe")
	waitInterest(t, b)
	pub := dialLegacy(t, a, "room/publish")

	// Clusters 0 and 2 start with a keyframe (a keyframe inside the file
	// does not cut it); the last chunk is short.
	l := webmtest.Build(webmtest.Spec{Clusters: 3, KeyEvery: 2})
	require.NotZero(t, len(l.Data)%legacyChunk)
	for f := l.Data; len(f) > 0; {
		n := min(legacyChunk, len(f))
		require.NoError(t, pub.Write(testCtx(t), websocket.MessageBinary, f[:n]))
		f = f[n:]
	}

	got := readLegacyFile(t, va)
	assert.True(t, bytes.Equal(l.Data, got), "on the publisher's node: the file as sent (%d bytes, want %d)", len(got), len(l.Data))
	// The publisher stays: the file must come without what would follow it,
	// in the relayed session it came in (not flushed by that session's end).
	relayed := func() (bool, uint64) {
		for _, s := range b.hub.Streams() {
			if s.Name == "room" {
				return s.Live, s.PublisherID
			}
		}
		return false, 0
	}
	waitFor(t, "the relayed session on b", func() bool { live, _ := relayed(); return live })
	_, session := relayed()
	got = readLegacyFile(t, vb)
	assert.True(t, bytes.Equal(l.Data, got), "on another node: the file as sent (%d bytes, want %d)", len(got), len(l.Data))
	live, now := relayed()
	assert.True(t, live && now == session, "the file came in the relayed session %d, still live (live %v, session %d)", session, live, now)
}
