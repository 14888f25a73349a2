package relay

// A test-only WebM writer that makes MediaRecorder-like streams (unknown-size
// Segment and Clusters, audio first) or ffmpeg-like files (known sizes,
// SeekHead, Void, Cues), and says where the init and every Cluster are.

import (
	"encoding/binary"
	"math"
	"strings"
)

type webmSpec struct {
	Audio       bool // add an Opus track as track 1 (like Chrome: audio first, video second) and start ~2/3 of Clusters with an audio block
	NoVideo     bool // audio-only stream (requires Audio)
	BlockGroups bool // video frames as BlockGroup(Block [+ BlockAdditions] [+ ReferenceBlock on non-key frames]) like an alpha canvas
	Clusters    int  // number of Clusters (>=1)
	Frames      int  // video frames per Cluster (default 5)
	FrameBytes  int  // bytes per video frame payload (default 3000); sizes vary a little, deterministically
	KeyEvery    int  // every KeyEvery-th Cluster (index % KeyEvery == 0) starts with a video keyframe, the others with a non-key video frame (default 1)
	KnownSizes  bool // known-size Segment and Clusters, plus a SeekHead + Void before Info and Cues after the last Cluster (ffmpeg-like)
}

// webmCluster is where a Cluster is in webmLayout.Data. Len includes
// everything up to the next Cluster or level-1 element (for the last Cluster:
// up to Cues or the end).
type webmCluster struct {
	Offset, Len int
	Keyframe    bool
}

type webmLayout struct {
	Data     []byte
	InitLen  int
	MIME     string // what mime() must return, e.g. "video/webm;codecs=vp8,opus"
	Clusters []webmCluster
}

// Test builder element IDs that the splitter itself does not need.
const (
	tidEBMLVersion        = 0x4286
	tidEBMLReadVersion    = 0x42F7
	tidEBMLMaxIDLength    = 0x42F2
	tidEBMLMaxSizeLength  = 0x42F3
	tidDocTypeVersion     = 0x4287
	tidDocTypeReadVersion = 0x4285
	tidSeek               = 0x4DBB
	tidSeekID             = 0x53AB
	tidSeekPosition       = 0x53AC
	tidTimecodeScale      = 0x2AD7B1
	tidMuxingApp          = 0x4D80
	tidWritingApp         = 0x5741
	tidDuration           = 0x4489
	tidTrackUID           = 0x73C5
	tidCodecPrivate       = 0x63A2
	tidVideo              = 0xE0
	tidPixelWidth         = 0xB0
	tidPixelHeight        = 0xBA
	tidAlphaMode          = 0x53C0
	tidAudio              = 0xE1
	tidSamplingFrequency  = 0xB5
	tidChannels           = 0x9F
	tidMaxBlockAdditionID = 0x55EE
	tidBlockAdditions     = 0x75A1
	tidBlockMore          = 0xA6
	tidBlockAddID         = 0xEE
	tidBlockAdditional    = 0xA5
	tidCuePoint           = 0xBB
	tidCueTime            = 0xB3
	tidCueTrackPositions  = 0xB7
	tidCueTrack           = 0xF7
	tidCueClusterPosition = 0xF1
)

// ebmlUnknownSize is the 8-byte unknown size MediaRecorder writes.
var ebmlUnknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

func appendEBMLID(b []byte, id uint32) []byte {
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

// appendEBMLSize writes n in the shortest varint (never the all-ones value).
func appendEBMLSize(b []byte, n uint64) []byte {
	l := 1
	for n >= 1<<(7*l)-1 {
		l++
	}
	return appendEBMLSizeLen(b, n, l)
}

func appendEBMLSizeLen(b []byte, n uint64, l int) []byte {
	v := n | 1<<(7*l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// ebmlEl makes an element from its body parts.
func ebmlEl(id uint32, body ...[]byte) []byte {
	n := 0
	for _, p := range body {
		n += len(p)
	}
	b := appendEBMLSize(appendEBMLID(make([]byte, 0, n+12), id), uint64(n))
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

func ebmlUint(id uint32, v uint64) []byte {
	l := 1
	for l < 8 && v>>(8*l) != 0 {
		l++
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return ebmlEl(id, buf[8-l:])
}

// ebmlUint8 writes an 8-byte unsigned integer (a fixed width, so a SeekHead's
// size does not depend on the positions in it).
func ebmlUint8(id uint32, v uint64) []byte {
	return ebmlEl(id, binary.BigEndian.AppendUint64(nil, v))
}

func ebmlInt(id uint32, v int64) []byte {
	l := 1
	for l < 8 && (v < -(1<<(8*l-1)) || v >= 1<<(8*l-1)) {
		l++
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(v))
	return ebmlEl(id, buf[8-l:])
}

func ebmlStr(id uint32, s string) []byte { return ebmlEl(id, []byte(s)) }

func ebmlFloat(id uint32, f float64) []byte {
	return ebmlEl(id, binary.BigEndian.AppendUint64(nil, math.Float64bits(f)))
}

func ebmlIDBytes(id uint32) []byte { return appendEBMLID(nil, id) }

// webmBlock is one frame to write in a Cluster.
type webmBlock struct {
	rel   int // ms after the Cluster's Timecode
	video bool
	key   bool
	size  int
	seq   int // frame number in the stream, for filler and sizes
}

// buildWebM writes a WebM stream as the spec says.
func buildWebM(spec webmSpec) webmLayout {
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

	ebml := ebmlEl(idEBML,
		ebmlUint(tidEBMLVersion, 1),
		ebmlUint(tidEBMLReadVersion, 1),
		ebmlUint(tidEBMLMaxIDLength, 4),
		ebmlUint(tidEBMLMaxSizeLength, 8),
		ebmlStr(idDocType, "webm"),
		ebmlUint(tidDocTypeVersion, 4),
		ebmlUint(tidDocTypeReadVersion, 2),
	)
	clusterMs := spec.Frames * frameMs
	infoParts := [][]byte{
		ebmlUint(tidTimecodeScale, 1000000),
		ebmlStr(tidMuxingApp, "segrelay-test"),
		ebmlStr(tidWritingApp, "segrelay-test"),
	}
	if spec.KnownSizes {
		infoParts = append(infoParts, ebmlFloat(tidDuration, float64(spec.Clusters*clusterMs)))
	}
	info := ebmlEl(idInfo, infoParts...)

	var entries [][]byte
	var codecs []string
	if video {
		videoParts := [][]byte{ebmlUint(tidPixelWidth, 640), ebmlUint(tidPixelHeight, 480)}
		if spec.BlockGroups {
			videoParts = append(videoParts, ebmlUint(tidAlphaMode, 1))
		}
		parts := [][]byte{
			ebmlUint(idTrackNumber, videoTrack),
			ebmlUint(tidTrackUID, 0x5EC0000+videoTrack),
			ebmlUint(idTrackType, trackTypeVideo),
			ebmlStr(idCodecID, "V_VP8"),
			ebmlEl(tidVideo, videoParts...),
		}
		if spec.BlockGroups {
			parts = append(parts, ebmlUint(tidMaxBlockAdditionID, 1))
		}
		entries = append(entries, ebmlEl(idTrackEntry, parts...))
		codecs = append(codecs, "vp8")
	}
	if spec.Audio {
		opusHead := []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
		audio := ebmlEl(idTrackEntry,
			ebmlUint(idTrackNumber, audioTrack),
			ebmlUint(tidTrackUID, 0x5EC0000+audioTrack),
			ebmlUint(idTrackType, trackTypeAudio),
			ebmlStr(idCodecID, "A_OPUS"),
			ebmlEl(tidCodecPrivate, opusHead),
			ebmlEl(tidAudio, ebmlFloat(tidSamplingFrequency, 48000), ebmlUint(tidChannels, 1)),
		)
		// Chrome lists the audio track first.
		entries = append([][]byte{audio}, entries...)
		codecs = append(codecs, "opus")
	}
	tracks := ebmlEl(idTracks, entries...)

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
		var blocks []webmBlock
		if spec.Audio {
			for rel := 0; rel < clusterMs; rel += audioMs {
				blocks = append(blocks, webmBlock{rel: rel, size: 80 + (i*7+rel)%60, key: true})
			}
		}
		if video {
			for f := 0; f < spec.Frames; f++ {
				vary := (seq*7919)%(spec.FrameBytes/8+1) - spec.FrameBytes/16
				size := max(spec.FrameBytes+vary, 8)
				b := webmBlock{rel: f * frameMs, video: true, size: size, seq: seq, key: f == 0 && i%spec.KeyEvery == 0}
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
				blocks = append(blocks[:at], append([]webmBlock{b}, blocks[at:]...)...)
			}
		}
		body := ebmlUint(idTimecode, uint64(tc))
		for _, b := range blocks {
			body = append(body, buildBlock(spec, b, audioTrack, videoTrack)...)
		}
		clusters = append(clusters, cluster{body: body, tc: tc, key: !video || i%spec.KeyEvery == 0})
	}

	var out []byte
	out = append(out, ebml...)
	segHdrAt := len(out)
	segHdr := append(ebmlIDBytes(idSegment), ebmlUnknownSize...)
	out = append(out, segHdr...)
	segData := len(out) // Segment positions (SeekHead, Cues) are relative to this

	var seekHead, void []byte
	if spec.KnownSizes {
		// SeekPositions have a fixed width, so the SeekHead can be sized
		// before the positions are known and rewritten after.
		seekHead = buildSeekHead(0, 0, 0)
		void = ebmlEl(idVoid, make([]byte, 40))
	}
	infoAt := len(seekHead) + len(void)
	tracksAt := infoAt + len(info)
	out = append(out, seekHead...)
	out = append(out, void...)
	out = append(out, info...)
	out = append(out, tracks...)
	initLen := len(out)

	layout := webmLayout{InitLen: initLen, MIME: mime}
	for _, c := range clusters {
		at := len(out)
		out = appendEBMLID(out, idCluster)
		if spec.KnownSizes {
			out = appendEBMLSize(out, uint64(len(c.body)))
		} else {
			out = append(out, ebmlUnknownSize...)
		}
		out = append(out, c.body...)
		layout.Clusters = append(layout.Clusters, webmCluster{Offset: at, Len: len(out) - at, Keyframe: c.key})
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
			points = append(points, ebmlEl(tidCuePoint,
				ebmlUint(tidCueTime, uint64(c.tc)),
				ebmlEl(tidCueTrackPositions,
					ebmlUint(tidCueTrack, cueTrack),
					ebmlUint(tidCueClusterPosition, uint64(layout.Clusters[i].Offset-segData)))))
		}
		out = append(out, ebmlEl(idCues, points...)...)
		copy(out[segData:], buildSeekHead(infoAt, tracksAt, cuesAt))
		// ffmpeg writes the Segment size in 8 bytes, in place of the
		// unknown size it started with.
		copy(out[segHdrAt+4:], appendEBMLSizeLen(nil, uint64(len(out)-segData), 8))
	}
	layout.Data = out
	return layout
}

func buildSeekHead(info, tracks, cues int) []byte {
	seek := func(id uint32, pos int) []byte {
		return ebmlEl(tidSeek, ebmlEl(tidSeekID, ebmlIDBytes(id)), ebmlUint8(tidSeekPosition, uint64(pos)))
	}
	return ebmlEl(idSeekHead, seek(idInfo, info), seek(idTracks, tracks), seek(idCues, cues))
}

// buildBlock writes one frame as a SimpleBlock, or for video with
// spec.BlockGroups as a BlockGroup with an alpha BlockAddition.
func buildBlock(spec webmSpec, b webmBlock, audioTrack, videoTrack uint64) []byte {
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
	head := appendEBMLSize(nil, track)
	head = binary.BigEndian.AppendUint16(head, uint16(int16(b.rel)))
	if !b.video || !spec.BlockGroups {
		flags := byte(0)
		if b.key {
			flags = 0x80
		}
		return ebmlEl(idSimpleBlock, head, []byte{flags}, payload)
	}
	parts := [][]byte{
		ebmlEl(idBlock, head, []byte{0}, payload),
		ebmlEl(tidBlockAdditions, ebmlEl(tidBlockMore,
			ebmlUint(tidBlockAddID, 1),
			ebmlEl(tidBlockAdditional, payload[:len(payload)/4]))),
	}
	if !b.key {
		parts = append(parts, ebmlInt(idReferenceBlock, -33))
	}
	return ebmlEl(idBlockGroup, parts...)
}
