package webm

import "math/bits"

// EBML numbers: element IDs, sizes and the variable size integers of
// block headers.

// readID reads an element ID. n == 0 with bad == "" means b is too short.
func readID(b []byte) (id uint32, n int, bad string) {
	if len(b) == 0 {
		return 0, 0, ""
	}
	if b[0] == 0 {
		return 0, 0, "invalid element ID"
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if n > 4 {
		return 0, 0, "element ID longer than 4 bytes"
	}
	if len(b) < n {
		return 0, 0, ""
	}
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	// IDs whose value bits are all 0 or all 1 are reserved.
	if v := id & (1<<(7*n) - 1); v == 0 || v == 1<<(7*n)-1 {
		return 0, 0, "invalid element ID"
	}
	return id, n, ""
}

// readSize reads an element data size. n == 0 with bad == "" means b is too
// short. unknown is set for the all-ones value of any length.
func readSize(b []byte) (size uint64, n int, unknown bool, bad string) {
	if len(b) == 0 {
		return 0, 0, false, ""
	}
	if b[0] == 0 {
		return 0, 0, false, "invalid element size"
	}
	v, n, _ := readVint(b)
	if n == 0 {
		return 0, 0, false, ""
	}
	return v, n, v == 1<<(7*n)-1, ""
}

// readVint reads a variable size integer without its length marker (sizes,
// track numbers). n == 0 means b is too short; bad means a 0x00 first byte.
func readVint(b []byte) (v uint64, n int, bad bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] == 0 {
		return 0, 0, true
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0] & (0xFF >> n))
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, false
}

// readUint reads a big-endian unsigned integer element (at most 8 bytes are
// meaningful).
func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
