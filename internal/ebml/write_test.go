package ebml

import (
	"bytes"
	"testing"
)

// The boundaries of the writer's shortest forms, each value on both sides
// of the point where one more byte is needed (issue 24: boundaries that no
// test stands on).
func TestIntAtItsByteBoundaries(t *testing.T) {
	for _, c := range []struct {
		v    int64
		body []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7F}},
		{128, []byte{0x00, 0x80}},
		{-128, []byte{0x80}},
		{-129, []byte{0xFF, 0x7F}},
		{32767, []byte{0x7F, 0xFF}},
		{32768, []byte{0x00, 0x80, 0x00}},
		{-32768, []byte{0x80, 0x00}},
		{-32769, []byte{0xFF, 0x7F, 0xFF}},
	} {
		want := append([]byte{0xFB, 0x80 | byte(len(c.body))}, c.body...) // ReferenceBlock-like one-byte ID
		if got := Int(0xFB, c.v); !bytes.Equal(got, want) {
			t.Errorf("Int(%d) = % x, want % x", c.v, got, want)
		}
	}
}

func TestUintAndSizeAtTheirByteBoundaries(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		body []byte
	}{
		{0, []byte{0x00}},
		{255, []byte{0xFF}},
		{256, []byte{0x01, 0x00}},
		{65535, []byte{0xFF, 0xFF}},
		{65536, []byte{0x01, 0x00, 0x00}},
	} {
		want := append([]byte{0xFB, 0x80 | byte(len(c.body))}, c.body...)
		if got := Uint(0xFB, c.v); !bytes.Equal(got, want) {
			t.Errorf("Uint(%d) = % x, want % x", c.v, got, want)
		}
	}
	// A size's all-ones value means "unknown": 127 needs two bytes.
	for _, c := range []struct {
		n    uint64
		want []byte
	}{
		{126, []byte{0xFE}},
		{127, []byte{0x40, 0x7F}},
		{16382, []byte{0x7F, 0xFE}},
		{16383, []byte{0x20, 0x3F, 0xFF}},
	} {
		if got := AppendSize(nil, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("AppendSize(%d) = % x, want % x", c.n, got, c.want)
		}
	}
}
