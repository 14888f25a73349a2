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

// The hand-written headers, byte for byte as protocol v1 specifies them
// (literal JSON, not decoded with the package's own parser).
func TestAppendHeader(t *testing.T) {
	for _, c := range []struct {
		seg  Segment
		want string
	}{
		{Segment{Kind: KindStart, MIME: `video/webm;codecs="vp9,opus"`}, `{"type":"start","mime":"video/webm;codecs=\"vp9,opus\"","stream":"room1"}`},
		{Segment{Kind: KindStart, MIME: "a<b>&"}, `{"type":"start","mime":"a\u003cb\u003e\u0026","stream":"room1"}`},
		{Segment{Kind: KindInit, Seq: 1, Data: make([]byte, 189)}, `{"type":"init","seq":1,"size":189}`},
		{Segment{Kind: KindMedia, Seq: 1 << 40, Keyframe: true, Data: make([]byte, 5)}, `{"type":"segment","seq":1099511627776,"size":5,"keyframe":true,"discontinuity":false}`},
		{Segment{Kind: KindMedia, Seq: 3, Discontinuity: true}, `{"type":"segment","seq":3,"size":0,"keyframe":false,"discontinuity":true}`},
		{Segment{Kind: KindMedia, Seq: 18446744073709551615, Data: make([]byte, 70000)}, `{"type":"segment","seq":18446744073709551615,"size":70000,"keyframe":false,"discontinuity":false}`},
		{Segment{Kind: KindEnd, Seq: 9}, `{"type":"end"}`},
	} {
		got := string(appendHeader([]byte("prefix:"), &c.seg, "room1"))
		assert.Equal(t, "prefix:"+c.want, got)
		assert.True(t, json.Valid([]byte(c.want)), c.want)
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
