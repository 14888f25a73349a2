package main

import (
	"encoding/binary"
	"time"
)

// What the publisher sends. Every segment (a v1 segment, a WebM Cluster, a
// legacy file) carries a stamp: a magic, the send time (UnixNano, same host,
// same clock as the subscribers) and the segment's index, so subscribers
// measure latency and loss without any change to the protocol.

const stampLen = 4 + 8 + 8

var stampMagic = [4]byte{'S', 'R', 'L', 'T'}

func putStamp(b []byte, t time.Time, idx uint64) {
	copy(b, stampMagic[:])
	binary.BigEndian.PutUint64(b[4:], uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(b[12:], idx)
}

// readStamp returns the stamp at the start of b, if there is one.
func readStamp(b []byte) (sent int64, idx uint64, ok bool) {
	if len(b) < stampLen || [4]byte(b[:4]) != stampMagic {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[4:])), binary.BigEndian.Uint64(b[12:]), true
}

// WebM element IDs (with their length marker).
const (
	idEBML        = 0x1A45DFA3
	idSegment     = 0x18538067
	idInfo        = 0x1549A966
	idTracks      = 0x1654AE6B
	idTrackEntry  = 0xAE
	idCluster     = 0x1F43B675
	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
)

func appendID(b []byte, id uint32) []byte {
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

// appendSize8 writes n as an 8-byte EBML size (so offsets are fixed).
func appendSize8(b []byte, n uint64) []byte {
	return append(b, 0x01, byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func el(id uint32, body ...[]byte) []byte {
	n := 0
	for _, p := range body {
		n += len(p)
	}
	b := appendSize8(appendID(nil, id), uint64(n))
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

func elUint(id uint32, v uint64) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	i := 0
	for i < 7 && buf[i] == 0 {
		i++
	}
	return el(id, buf[i:])
}

func elStr(id uint32, s string) []byte { return el(id, []byte(s)) }

// webmInit is a MediaRecorder-like init: EBML header, Segment of unknown
// size, Info, Tracks (one VP8 video track, 1280x720).
func webmInit() []byte {
	b := el(idEBML,
		elUint(0x4286, 1), elUint(0x42F7, 1), elUint(0x42F2, 4), elUint(0x42F3, 8),
		elStr(0x4282, "webm"), elUint(0x4287, 4), elUint(0x4285, 2))
	b = appendID(b, idSegment)
	b = append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // unknown size
	b = append(b, el(idInfo, elUint(0x2AD7B1, 1000000), elStr(0x4D80, "relayload"), elStr(0x5741, "relayload"))...)
	b = append(b, el(idTracks, el(idTrackEntry,
		elUint(0xD7, 1), elUint(0x73C5, 1), elUint(0x83, 1), elStr(0x86, "V_VP8"),
		el(0xE0, elUint(0xB0, 1280), elUint(0xBA, 720))))...)
	return b
}

// clusterStampOffset is where the stamp sits in a Cluster built by
// webmCluster: ID (4), unknown size (8), Timecode (1+1+4), SimpleBlock ID
// (1), size (8), track (1), relative time (2), flags (1).
const clusterStampOffset = 4 + 8 + 6 + blockStampOffset

// blockStampOffset is where the stamp sits in the first SimpleBlock.
const blockStampOffset = 1 + 8 + 1 + 2 + 1

// webmCluster appends a Cluster of unknown size at time tcMs holding frames
// SimpleBlocks of about total bytes in all; the first is a keyframe when key.
// The stamp goes at clusterStampOffset, in the first block's payload.
func webmCluster(b []byte, tcMs uint32, frames, total int, key bool, frameMs int) []byte {
	b = appendID(b, idCluster)
	b = append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	b = append(b, idTimecode, 0x84, byte(tcMs>>24), byte(tcMs>>16), byte(tcMs>>8), byte(tcMs))
	const overhead = 1 + 8 + 4
	payload := max(stampLen, total/frames-overhead)
	for i := 0; i < frames; i++ {
		b = append(b, idSimpleBlock)
		b = appendSize8(b, uint64(4+payload))
		flags := byte(0)
		if i == 0 && key {
			flags = 0x80
		}
		rel := i * frameMs
		b = append(b, 0x81, byte(rel>>8), byte(rel), flags)
		b = append(b, make([]byte, payload)...)
	}
	return b
}
