package main

import (
	"encoding/binary"
	"time"

	"github.com/segrelay/relay/internal/ebml"
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

// clusterID is how a piece that starts a Cluster begins.
var clusterID = ebml.AppendID(nil, ebml.IDCluster)

// webmInit is a MediaRecorder-like init: EBML header, Segment of unknown
// size, Info, Tracks (one VP8 video track, 1280x720).
func webmInit() []byte {
	b := ebml.Element(ebml.IDEBML,
		ebml.Uint(ebml.IDEBMLVersion, 1), ebml.Uint(ebml.IDEBMLReadVersion, 1),
		ebml.Uint(ebml.IDEBMLMaxIDLength, 4), ebml.Uint(ebml.IDEBMLMaxSizeLength, 8),
		ebml.String(ebml.IDDocType, "webm"), ebml.Uint(ebml.IDDocTypeVersion, 4), ebml.Uint(ebml.IDDocTypeReadVersion, 2))
	b = ebml.AppendUnknownSize(ebml.AppendID(b, ebml.IDSegment))
	b = append(b, ebml.Element(ebml.IDInfo,
		ebml.Uint(ebml.IDTimecodeScale, 1000000), ebml.String(ebml.IDMuxingApp, "relayload"), ebml.String(ebml.IDWritingApp, "relayload"))...)
	b = append(b, ebml.Element(ebml.IDTracks, ebml.Element(ebml.IDTrackEntry,
		ebml.Uint(ebml.IDTrackNumber, 1), ebml.Uint(ebml.IDTrackUID, 1), ebml.Uint(ebml.IDTrackType, ebml.TrackTypeVideo),
		ebml.String(ebml.IDCodecID, "V_VP8"),
		ebml.Element(ebml.IDVideo, ebml.Uint(ebml.IDPixelWidth, 1280), ebml.Uint(ebml.IDPixelHeight, 720))))...)
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
	b = ebml.AppendUnknownSize(ebml.AppendID(b, ebml.IDCluster))
	// A 4-byte Timecode, whatever its value, so the offset stays fixed.
	b = append(b, ebml.IDTimecode, 0x84, byte(tcMs>>24), byte(tcMs>>16), byte(tcMs>>8), byte(tcMs))
	const overhead = 1 + 8 + 4
	payload := max(stampLen, total/frames-overhead)
	for i := 0; i < frames; i++ {
		b = append(b, ebml.IDSimpleBlock)
		b = ebml.AppendSizeLen(b, uint64(4+payload), 8)
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
