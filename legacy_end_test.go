package relay

import (
	"bytes"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An empty message ends a legacy file whose size is an exact multiple of
// the chunk size, at once: with an idle timeout of an hour, only the empty
// message can end it. The publisher then leaves (a file still open when a
// publisher leaves is dropped) and a second one sends another file; the
// viewer must get both, in order.
func TestLegacyEmptyMessageEndsFile(t *testing.T) {
	e := newEnv(t, WithLegacyFileTimeout(time.Hour))
	viewer := e.dialRaw("room/subscribe")
	files := legacyFilesForTest()
	exact, short := files[1], files[0]
	require.Zero(t, len(exact)%5120)

	pub := e.dialRaw("room/publish")
	legacySend(t, pub, exact, 5120, endEmpty)
	require.NoError(t, pub.Close(websocket.StatusNormalClosure, ""))
	waitFor(t, "the first publisher to leave", func() bool { return e.hub.Stats().Publishers == 0 })
	pub = e.dialRaw("room/publish")
	legacySend(t, pub, short, 5120, endShort)

	for i, want := range [][]byte{exact, short} {
		got := legacyRead(t, viewer, 5120)
		assert.True(t, bytes.Equal(want, got), "file %d: got %d bytes, want %d", i, len(got), len(want))
	}
}

// A chunk-sized last message does not end a file by itself: the file ends
// with the next short message (here the empty one), not before.
func TestLegacyFullChunkDoesNotEndFile(t *testing.T) {
	e := newEnv(t, WithLegacyFileTimeout(time.Hour))
	viewer := e.dialRaw("room/subscribe")
	pub := e.dialRaw("room/publish")
	file := legacyFilesForTest()[2]
	legacySend(t, pub, file, 5120, endEmpty)
	got := legacyRead(t, viewer, 5120)
	assert.True(t, bytes.Equal(file, got), "got %d bytes, want %d", len(got), len(file))
}
