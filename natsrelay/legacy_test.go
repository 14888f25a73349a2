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

// What a legacy viewer on another node gets of a legacy publisher: the
// markers that let a hub pass a legacy file on as it was sent (where a file
// ends, that the session is made of files) are not part of relay.Segment,
// so the bridge cannot carry them. On the publisher's node the viewer gets
// the file as sent; on the other node it gets standalone files cut at each
// keyframe instead (the rule for a protocol v1 publisher), each one only
// once the next keyframe or init arrives.
func TestLegacyViewerOnAnotherNode(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})

	va := dialLegacy(t, a, "room/subscribe")
	vb := dialLegacy(t, b, "room/subscribe")
	waitInterest(t, b)
	pub := dialLegacy(t, a, "room/publish")

	// Clusters 0 and 2 start with a keyframe; the last chunk is short.
	l := webmtest.Build(webmtest.Spec{Clusters: 3, KeyEvery: 2})
	require.NotZero(t, len(l.Data)%legacyChunk)
	for f := l.Data; len(f) > 0; {
		n := min(legacyChunk, len(f))
		require.NoError(t, pub.Write(testCtx(t), websocket.MessageBinary, f[:n]))
		f = f[n:]
	}

	got := readLegacyFile(t, va)
	assert.True(t, bytes.Equal(l.Data, got), "on the publisher's node: the file as sent (%d bytes, want %d)", len(got), len(l.Data))

	// On b: the init and Clusters 0 and 1, flushed by Cluster 2's keyframe.
	want := l.Data[:l.Clusters[2].Offset]
	got = readLegacyFile(t, vb)
	assert.True(t, bytes.Equal(want, got), "on another node: cut at the second keyframe (%d bytes, want %d)", len(got), len(want))

	// Cluster 2 waits for what comes next: here the end of the session.
	require.NoError(t, pub.Close(websocket.StatusNormalClosure, ""))
	want = append(append([]byte(nil), l.Data[:l.InitLen]...), l.Data[l.Clusters[2].Offset:]...)
	got = readLegacyFile(t, vb)
	assert.True(t, bytes.Equal(want, got), "the rest, once the session ended (%d bytes, want %d)", len(got), len(want))
}
