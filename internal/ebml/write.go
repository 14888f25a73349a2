package ebml

import (
	"encoding/binary"
	"math"
)

// The EBML writer: the splitter only reads, but the tests (webmtest) and
// cmd/relayload make streams for it, and both write with these.

// AppendID appends an element ID (IDs carry their length marker, so the
// bytes are the ID's own, without leading zeros).
func AppendID(b []byte, id uint32) []byte {
	switch {
	case id < 1<<8:
		return append(b, byte(id))
	case id < 1<<16:
		return append(b, byte(id>>8), byte(id))
	case id < 1<<24:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	}
	return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

// AppendSize appends n as an element data size in the shortest form (never
// the all-ones value, which means "unknown").
func AppendSize(b []byte, n uint64) []byte {
	l := 1
	for n >= 1<<(7*l)-1 {
		l++
	}
	return AppendSizeLen(b, n, l)
}

// AppendSizeLen appends n as a size of exactly l bytes, as writers do that
// patch a size in place later (ffmpeg's Segment) or want fixed offsets.
func AppendSizeLen(b []byte, n uint64, l int) []byte {
	v := n | 1<<(7*l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// AppendUnknownSize appends the 8-byte unknown size MediaRecorder writes for
// its Segment and Clusters.
func AppendUnknownSize(b []byte) []byte {
	return append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
}

// Element makes an element of known size from its body parts.
func Element(id uint32, body ...[]byte) []byte {
	n := 0
	for _, p := range body {
		n += len(p)
	}
	b := AppendSize(AppendID(make([]byte, 0, n+12), id), uint64(n))
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

// Uint makes an unsigned integer element in as few bytes as the value needs.
func Uint(id uint32, v uint64) []byte {
	l := 1
	for l < 8 && v>>(8*l) != 0 {
		l++
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return Element(id, buf[8-l:])
}

// FixedUint makes an unsigned integer element of 8 bytes whatever the value,
// so that a SeekHead's size does not depend on the positions in it.
func FixedUint(id uint32, v uint64) []byte {
	return Element(id, binary.BigEndian.AppendUint64(nil, v))
}

// Int makes a signed integer element in as few bytes as the value needs.
func Int(id uint32, v int64) []byte {
	l := 1
	for l < 8 && (v < -(1<<(8*l-1)) || v >= 1<<(8*l-1)) {
		l++
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(v))
	return Element(id, buf[8-l:])
}

// String makes a string element.
func String(id uint32, s string) []byte { return Element(id, []byte(s)) }

// Float makes an 8-byte float element.
func Float(id uint32, f float64) []byte {
	return Element(id, binary.BigEndian.AppendUint64(nil, math.Float64bits(f)))
}
