package relay

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An empty message ends a legacy file whose size is an exact multiple of
// the chunk size, at once: with an idle timeout of an hour, only the empty
// message can end it. A second file follows; were the first not ended, the
// viewer would get both as one file.
func TestLegacyEmptyMessageEndsFile(t *testing.T) {
	e := newEnv(t, WithLegacyFileTimeout(time.Hour))
	viewer := e.dialRaw("room/subscribe")
	sub := e.subscribe("room")
	pub := e.dialRaw("room/publish")
	files := legacyFilesForTest()
	exact, short := files[1], files[0]
	require.Zero(t, len(exact)%5120)
	legacySend(t, pub, exact, 5120, endEmpty)
	legacySend(t, pub, short, 5120, endShort)
	for i, want := range [][]byte{exact, short} {
		got := legacyRead(t, viewer, 5120)
		assert.True(t, bytes.Equal(want, got), "file %d: got %d bytes, want %d", i, len(got), len(want))
	}
	// The v1 subscriber sees two inits: two files.
	ctx := testCtx(t)
	inits := 0
	for inits < 2 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		if seg.Kind == KindInit {
			inits++
		}
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
