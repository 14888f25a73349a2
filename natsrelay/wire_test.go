package natsrelay

import (
	"bytes"
	"testing"

	relay "github.com/segrelay/relay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSegmentMessagesRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	seg := relay.Segment{Kind: relay.KindMedia, Seq: 42, Keyframe: true, Discontinuity: true, Data: data}
	msgs := segmentMsgs("segrelay.seg.a=b", "node1", "node1-7", seg, 4096)
	require.Len(t, msgs, 4, "3072 bytes a part under a 4096-byte max payload")
	for _, m := range msgs {
		assert.LessOrEqual(t, len(m.Data), 4096-headerRoom)
	}
	var a assembler
	for i, m := range msgs {
		got, session, ok, err := a.add(m)
		require.NoError(t, err)
		if i < len(msgs)-1 {
			assert.False(t, ok)
			continue
		}
		require.True(t, ok)
		assert.Equal(t, "node1-7", session)
		assert.Equal(t, seg.Kind, got.Kind)
		assert.Equal(t, seg.Seq, got.Seq)
		assert.True(t, got.Keyframe)
		assert.True(t, got.Discontinuity)
		assert.Equal(t, data, got.Data)
	}

	start := segmentMsgs("s", "n", "n-1", relay.Segment{Kind: relay.KindStart, Seq: 3, MIME: "video/webm"}, 1<<20)
	require.Len(t, start, 1)
	got, _, ok, err := a.add(start[0])
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, relay.KindStart, got.Kind)
	assert.Equal(t, "video/webm", got.MIME)
	assert.Empty(t, got.Data)

	// A legacy publisher's marks travel too; a segment without them has none.
	for _, want := range []relay.Segment{
		{Kind: relay.KindInit, Seq: 4, LegacyFiles: true, Data: []byte("init")},
		{Kind: relay.KindMedia, Seq: 5, FileEnd: true, Data: []byte("media")},
		{Kind: relay.KindMedia, Seq: 6, Data: []byte("media")},
	} {
		msgs := segmentMsgs("s", "n", "n-1", want, 1<<20)
		require.Len(t, msgs, 1)
		got, _, ok, err := a.add(msgs[0])
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, want.LegacyFiles, got.LegacyFiles, "seq %d", want.Seq)
		assert.Equal(t, want.FileEnd, got.FileEnd, "seq %d", want.Seq)
	}
}

// A lost part is a gap, never a segment with a hole in it.
func TestAssemblerRejectsLostParts(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 9000)
	msgs := segmentMsgs("s", "n", "n-1", relay.Segment{Kind: relay.KindMedia, Seq: 1, Data: data}, 4096)
	require.Len(t, msgs, 3)
	next := segmentMsgs("s", "n", "n-1", relay.Segment{Kind: relay.KindMedia, Seq: 2, Data: data}, 4096)

	var a assembler
	_, _, ok, err := a.add(msgs[0])
	require.NoError(t, err)
	require.False(t, ok)
	_, _, _, err = a.add(msgs[2]) // the middle part was lost
	assert.ErrorIs(t, err, errBadMessage)

	// A segment whose end was lost, then the next one: the next one is
	// still assembled, after an error for the lost one.
	a = assembler{}
	a.add(msgs[0])
	_, _, _, err = a.add(next[0])
	assert.ErrorIs(t, err, errBadMessage)
	a.add(next[1])
	got, _, ok, err := a.add(next[2])
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, uint64(2), got.Seq)

	// A whole message while parts are pending.
	a = assembler{}
	a.add(msgs[0])
	whole := segmentMsgs("s", "n", "n-1", relay.Segment{Kind: relay.KindMedia, Seq: 5, Data: []byte("x")}, 4096)
	_, _, _, err = a.add(whole[0])
	assert.ErrorIs(t, err, errBadMessage)
}

func TestEncodeName(t *testing.T) {
	assert.Equal(t, "room1", encodeName("room1"))
	assert.Equal(t, "a=b==c=", encodeName("a.b..c."))
}
