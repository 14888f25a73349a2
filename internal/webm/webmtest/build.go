// Package webmtest makes and loads WebM streams for the tests of the relay
// and webm packages: Build writes MediaRecorder-like streams (unknown-size
// Segment and Clusters, audio first) or ffmpeg-like files (known sizes,
// SeekHead, Void, Cues) and says where the init and every Cluster are;
// LoadRecordings and LoadFFmpegFiles read the real ones in testdata with
// what mkvinfo found in them.
package webmtest

import (
	"encoding/binary"
	"strings"

	"github.com/segrelay/relay/internal/ebml"
)

// Spec says what stream Build writes.
type Spec struct {
	Audio       bool // add an Opus track as track 1 (like Chrome: audio first, video second) and start ~2/3 of Clusters with an audio block
	NoVideo     bool // audio-only stream (requires Audio)
	BlockGroups bool // video frames as BlockGroup(Block [+ BlockAdditions] [+ ReferenceBlock on non-key frames]) like an alpha canvas
	Clusters    int  // number of Clusters (>=1)
	Frames      int  // video frames per Cluster (default 5)
	FrameBytes  int  // bytes per video frame payload (default 3000); sizes vary a little, deterministically
	KeyEvery    int  // every KeyEvery-th Cluster (index % KeyEvery == 0) starts with a video keyframe, the others with a non-key video frame (default 1)
	KnownSizes  bool // known-size Segment and Clusters, plus a SeekHead + Void before Info and Cues after the last Cluster (ffmpeg-like)
}

// Cluster is where a Cluster is in Layout.Data. Len includes
// everything up to the next Cluster or level-1 element (for the last Cluster:
// up to Cues or the end).
type Cluster struct {
	Offset, Len int
	Keyframe    bool
}

// Layout is a stream and where its parts are: what a correct splitter must
// find in it.
type Layout struct {
	Data     []byte
	InitLen  int
	MIME     string // what the splitter's MIME must return, e.g. "video/webm;codecs=vp8,opus"
	Clusters []Cluster
}

// block is one frame to write in a Cluster.
type block struct {
	rel   int // ms after the Cluster's Timecode
	video bool
	key   bool
	size  int
	seq   int // frame number in the stream, for filler and sizes
}

// Build writes a WebM stream as the spec says.
func Build(spec Spec) Layout {
	if spec.Clusters < 1 {
		spec.Clusters = 1
	}
	if spec.Frames <= 0 {
		spec.Frames = 5
	}
	if spec.FrameBytes <= 0 {
		spec.FrameBytes = 3000
	}
	if spec.KeyEvery <= 0 {
		spec.KeyEvery = 1
	}
	if spec.NoVideo {
		spec.Audio = true
	}
	const frameMs, audioMs = 33, 20
	video := !spec.NoVideo
	audioTrack, videoTrack := uint64(0), uint64(1)
	if spec.Audio {
		audioTrack, videoTrack = 1, 2
	}

	header := ebml.Element(ebml.IDEBML,
		ebml.Uint(ebml.IDEBMLVersion, 1),
		ebml.Uint(ebml.IDEBMLReadVersion, 1),
		ebml.Uint(ebml.IDEBMLMaxIDLength, 4),
		ebml.Uint(ebml.IDEBMLMaxSizeLength, 8),
		ebml.String(ebml.IDDocType, "webm"),
		ebml.Uint(ebml.IDDocTypeVersion, 4),
		ebml.Uint(ebml.IDDocTypeReadVersion, 2),
	)
	clusterMs := spec.Frames * frameMs
	infoParts := [][]byte{
		ebml.Uint(ebml.IDTimecodeScale, 1000000),
		ebml.String(ebml.IDMuxingApp, "segrelay-test"),
		ebml.String(ebml.IDWritingApp, "segrelay-test"),
	}
	if spec.KnownSizes {
		infoParts = append(infoParts, ebml.Float(ebml.IDDuration, float64(spec.Clusters*clusterMs)))
	}
	info := ebml.Element(ebml.IDInfo, infoParts...)

	var entries [][]byte
	var codecs []string
	if video {
		videoParts := [][]byte{ebml.Uint(ebml.IDPixelWidth, 640), ebml.Uint(ebml.IDPixelHeight, 480)}
		if spec.BlockGroups {
			videoParts = append(videoParts, ebml.Uint(ebml.IDAlphaMode, 1))
		}
		parts := [][]byte{
			ebml.Uint(ebml.IDTrackNumber, videoTrack),
			ebml.Uint(ebml.IDTrackUID, 0x5EC0000+videoTrack),
			ebml.Uint(ebml.IDTrackType, ebml.TrackTypeVideo),
			ebml.String(ebml.IDCodecID, "V_VP8"),
			ebml.Element(ebml.IDVideo, videoParts...),
		}
		if spec.BlockGroups {
			parts = append(parts, ebml.Uint(ebml.IDMaxBlockAdditionID, 1))
		}
		entries = append(entries, ebml.Element(ebml.IDTrackEntry, parts...))
		codecs = append(codecs, "vp8")
	}
	if spec.Audio {
		opusHead := []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
		audio := ebml.Element(ebml.IDTrackEntry,
			ebml.Uint(ebml.IDTrackNumber, audioTrack),
			ebml.Uint(ebml.IDTrackUID, 0x5EC0000+audioTrack),
			ebml.Uint(ebml.IDTrackType, ebml.TrackTypeAudio),
			ebml.String(ebml.IDCodecID, "A_OPUS"),
			ebml.Element(ebml.IDCodecPrivate, opusHead),
			ebml.Element(ebml.IDAudio, ebml.Float(ebml.IDSamplingFrequency, 48000), ebml.Uint(ebml.IDChannels, 1)),
		)
		// Chrome lists the audio track first.
		entries = append([][]byte{audio}, entries...)
		codecs = append(codecs, "opus")
	}
	tracks := ebml.Element(ebml.IDTracks, entries...)

	mime := "video/webm"
	if !video {
		mime = "audio/webm"
	}
	mime += ";codecs=" + strings.Join(codecs, ",")

	// Clusters, as bodies first: their offsets are known once the part
	// before them is.
	type cluster struct {
		body []byte
		tc   int
		key  bool
	}
	var clusters []cluster
	seq := 0
	for i := 0; i < spec.Clusters; i++ {
		tc := i * clusterMs
		audioFirst := spec.Audio && i%3 != 2
		var blocks []block
		if spec.Audio {
			for rel := 0; rel < clusterMs; rel += audioMs {
				blocks = append(blocks, block{rel: rel, size: 80 + (i*7+rel)%60, key: true})
			}
		}
		if video {
			for f := 0; f < spec.Frames; f++ {
				vary := (seq*7919)%(spec.FrameBytes/8+1) - spec.FrameBytes/16
				size := max(spec.FrameBytes+vary, 8)
				b := block{rel: f * frameMs, video: true, size: size, seq: seq, key: f == 0 && i%spec.KeyEvery == 0}
				seq++
				// Keep time order; at equal times audio goes first in
				// Clusters that start with audio.
				at := len(blocks)
				for j, o := range blocks {
					if o.rel > b.rel || (o.rel == b.rel && !audioFirst) {
						at = j
						break
					}
				}
				blocks = append(blocks[:at], append([]block{b}, blocks[at:]...)...)
			}
		}
		body := ebml.Uint(ebml.IDTimecode, uint64(tc))
		for _, b := range blocks {
			body = append(body, buildBlock(spec, b, audioTrack, videoTrack)...)
		}
		clusters = append(clusters, cluster{body: body, tc: tc, key: !video || i%spec.KeyEvery == 0})
	}

	var out []byte
	out = append(out, header...)
	segHdrAt := len(out)
	segHdr := ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDSegment))
	out = append(out, segHdr...)
	segData := len(out) // Segment positions (SeekHead, Cues) are relative to this

	var seekHead, void []byte
	if spec.KnownSizes {
		// SeekPositions have a fixed width, so the SeekHead can be sized
		// before the positions are known and rewritten after.
		seekHead = buildSeekHead(0, 0, 0)
		void = ebml.Element(ebml.IDVoid, make([]byte, 40))
	}
	infoAt := len(seekHead) + len(void)
	tracksAt := infoAt + len(info)
	out = append(out, seekHead...)
	out = append(out, void...)
	out = append(out, info...)
	out = append(out, tracks...)
	initLen := len(out)

	layout := Layout{InitLen: initLen, MIME: mime}
	for _, c := range clusters {
		at := len(out)
		out = ebml.AppendID(out, ebml.IDCluster)
		if spec.KnownSizes {
			out = ebml.AppendSize(out, uint64(len(c.body)))
		} else {
			out = ebml.AppendUnknownSize(out)
		}
		out = append(out, c.body...)
		layout.Clusters = append(layout.Clusters, Cluster{Offset: at, Len: len(out) - at, Keyframe: c.key})
	}

	if spec.KnownSizes {
		cuesAt := len(out) - segData
		var points [][]byte
		cueTrack := videoTrack
		if !video {
			cueTrack = audioTrack
		}
		for i, c := range clusters {
			if !c.key {
				continue
			}
			points = append(points, ebml.Element(ebml.IDCuePoint,
				ebml.Uint(ebml.IDCueTime, uint64(c.tc)),
				ebml.Element(ebml.IDCueTrackPositions,
					ebml.Uint(ebml.IDCueTrack, cueTrack),
					ebml.Uint(ebml.IDCueClusterPosition, uint64(layout.Clusters[i].Offset-segData)))))
		}
		out = append(out, ebml.Element(ebml.IDCues, points...)...)
		copy(out[segData:], buildSeekHead(infoAt, tracksAt, cuesAt))
		// ffmpeg writes the Segment size in 8 bytes, in place of the
		// unknown size it started with.
		copy(out[segHdrAt+4:], ebml.AppendSizeLen(nil, uint64(len(out)-segData), 8))
	}
	layout.Data = out
	return layout
}

func buildSeekHead(info, tracks, cues int) []byte {
	seek := func(id uint32, pos int) []byte {
		return ebml.Element(ebml.IDSeek, ebml.Element(ebml.IDSeekID, ebml.AppendID(nil, id)), ebml.FixedUint(ebml.IDSeekPosition, uint64(pos)))
	}
	return ebml.Element(ebml.IDSeekHead, seek(ebml.IDInfo, info), seek(ebml.IDTracks, tracks), seek(ebml.IDCues, cues))
}

// buildBlock writes one frame as a SimpleBlock, or for video with
// spec.BlockGroups as a BlockGroup with an alpha BlockAddition.
func buildBlock(spec Spec, b block, audioTrack, videoTrack uint64) []byte {
	track := audioTrack
	if b.video {
		track = videoTrack
	}
	payload := make([]byte, b.size)
	for i := range payload {
		payload[i] = byte(i*31 + b.seq*7 + b.rel)
	}
	if b.video && len(payload) >= 10 {
		// A VP8 frame tag (bit 0 clear on keyframes, show_frame set),
		// and on keyframes the start code and 640x480.
		payload[0] = 0x10
		if !b.key {
			payload[0] |= 1
		} else {
			copy(payload[3:], []byte{0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
		}
	} else if !b.video {
		payload[0] = 0xFC // an Opus TOC byte
	}
	head := ebml.AppendSize(nil, track)
	head = binary.BigEndian.AppendUint16(head, uint16(int16(b.rel)))
	if !b.video || !spec.BlockGroups {
		flags := byte(0)
		if b.key {
			flags = 0x80
		}
		return ebml.Element(ebml.IDSimpleBlock, head, []byte{flags}, payload)
	}
	parts := [][]byte{
		ebml.Element(ebml.IDBlock, head, []byte{0}, payload),
		ebml.Element(ebml.IDBlockAdditions, ebml.Element(ebml.IDBlockMore,
			ebml.Uint(ebml.IDBlockAddID, 1),
			ebml.Element(ebml.IDBlockAdditional, payload[:len(payload)/4]))),
	}
	if !b.key {
		parts = append(parts, ebml.Int(ebml.IDReferenceBlock, -33))
	}
	return ebml.Element(ebml.IDBlockGroup, parts...)
}

// CuesAfter returns l's stream followed by a Cues element (as ffmpeg
// writes after the last Cluster), and the Cues.
func CuesAfter(l Layout) ([]byte, []byte) {
	cues := ebml.Element(ebml.IDCues, ebml.Element(ebml.IDCuePoint, ebml.Uint(ebml.IDCueTime, 0),
		ebml.Element(ebml.IDCueTrackPositions, ebml.Uint(ebml.IDCueTrack, 1), ebml.Uint(ebml.IDCueClusterPosition, 0))))
	return append(append([]byte(nil), l.Data...), cues...), cues
}
