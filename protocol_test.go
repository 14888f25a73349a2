package relay

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMessage(t *testing.T) {
	m, err := parseMessage([]byte(`{"type":"segment","size":12,"keyframe":true,"future":[1,2]}`))
	require.NoError(t, err)
	assert.Equal(t, "segment", m.Type)
	assert.Equal(t, int64(12), *m.Size)
	assert.True(t, m.Keyframe)

	for _, bad := range []string{``, `null`, `[]`, `"start"`, `{}`, `{"type":""}`, `{"type":1}`, `{"type":"segment","size":-1}`, `{"type":"segment","size":1.5}`, `{"type":"x"`} {
		_, err := parseMessage([]byte(bad))
		assert.ErrorIs(t, err, errBadJSON, bad)
	}
}

// The hand-written headers are valid JSON that says what the segment is.
func TestAppendHeader(t *testing.T) {
	for _, seg := range []Segment{
		{Kind: KindStart, MIME: `video/webm;codecs="vp9,opus"`},
		{Kind: KindInit, Seq: 1, Data: make([]byte, 189)},
		{Kind: KindMedia, Seq: 1 << 40, Keyframe: true, Data: make([]byte, 5)},
		{Kind: KindMedia, Seq: 3, Discontinuity: true},
		{Kind: KindEnd},
	} {
		b := appendHeader(nil, &seg, "room1")
		require.True(t, json.Valid(b), "%s", b)
		m, err := parseMessage(b)
		require.NoError(t, err)
		switch seg.Kind {
		case KindStart:
			assert.Equal(t, message{Type: "start", Stream: "room1", MIME: seg.MIME}, m)
		case KindEnd:
			assert.Equal(t, "end", m.Type)
		default:
			assert.Equal(t, map[Kind]string{KindInit: "init", KindMedia: "segment"}[seg.Kind], m.Type)
			assert.Equal(t, seg.Seq, m.Seq)
			assert.Equal(t, int64(len(seg.Data)), *m.Size)
			assert.Equal(t, seg.Keyframe, m.Keyframe)
			assert.Equal(t, seg.Discontinuity, m.Discontinuity)
		}
	}
}

// The per-segment header costs no allocation once the buffer has grown.
func TestAppendHeaderDoesNotAllocate(t *testing.T) {
	seg := Segment{Kind: KindMedia, Seq: 123456, Keyframe: true, Data: make([]byte, 5000)}
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() { buf = appendHeader(buf[:0], &seg, "room") })
	assert.Zero(t, allocs)
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"start","mime":"video/webm;codecs=vp9,opus","mode":"stream"}`,
		`{"type":"segment","size":5120,"keyframe":true,"init":false}`,
		`{"type":"end"}`,
		`{"type":"stats","subscribers":3}`,
		`{"type":"segment","size":-1}`,
		`{"type":"segment","size":1e30}`,
		`{"type":"start","mime":"\u0000"}`,
		`{"type":"a","type":"b"}`,
		`[{"type":"start"}]`,
		`{"type":"segment","size":9223372036854775808}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			require.ErrorIs(t, err, errBadJSON)
			return
		}
		require.NotEmpty(t, m.Type)
		if m.Size != nil {
			require.GreaterOrEqual(t, *m.Size, int64(0))
		}
	})
}
