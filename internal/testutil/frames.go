package testutil

import (
	"bufio"
	"encoding/binary"
	"io"
)

// SkipFrame reads one server-to-client WebSocket frame from br, skips its
// payload, and returns its opcode. The fan-out benchmarks use it to count
// messages without decoding them.
func SkipFrame(br *bufio.Reader, scratch *[8]byte) (opcode byte, err error) {
	h0, err := br.ReadByte()
	if err != nil {
		return 0, err
	}
	h1, err := br.ReadByte()
	if err != nil {
		return 0, err
	}
	n := int(h1 & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, scratch[:2]); err != nil {
			return 0, err
		}
		n = int(binary.BigEndian.Uint16(scratch[:2]))
	case 127:
		if _, err := io.ReadFull(br, scratch[:8]); err != nil {
			return 0, err
		}
		n = int(binary.BigEndian.Uint64(scratch[:8]))
	}
	if _, err := br.Discard(n); err != nil {
		return 0, err
	}
	return h0 & 0x0f, nil
}
