package mp4

import (
	"bytes"
	"encoding/binary"
)

// A small ISO BMFF writer for generated streams: every box the splitter
// reads, in the layouts of ISO/IEC 14496-12, built field by field.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// mkBox is a box with a 32-bit size.
func mkBox(typ string, body ...[]byte) []byte {
	b := cat(body...)
	return cat(u32(uint32(8+len(b))), []byte(typ), b)
}

// box64 is a box with size 1 and a 64-bit largesize.
func box64(typ string, body ...[]byte) []byte {
	b := cat(body...)
	return cat(u32(1), []byte(typ), binary.BigEndian.AppendUint64(nil, uint64(16+len(b))), b)
}

// fullBox is a box with a version of 0 and these flags.
func fullBox(typ string, flags uint32, body ...[]byte) []byte {
	return mkBox(typ, cat(u32(flags&0xffffff)), cat(body...))
}

type generator struct{}

func gen() generator { return generator{} }

func (generator) ftyp() []byte { return mkBox("ftyp", []byte("isom"), u32(0x200), []byte("isomiso6")) }
func (generator) styp() []byte { return mkBox("styp", []byte("msdh"), u32(0), []byte("msdhmsix")) }
func (generator) mdat(n int) []byte {
	return mkBox("mdat", bytes.Repeat([]byte{0xa5}, n))
}

// genTrack is a trak and its trex.
type genTrack struct {
	id        uint32
	handler   string
	entry     []byte // the stsd sample entry
	trexFlags uint32
}

var (
	avc1Entry = mkBox("avc1", make([]byte, 78), mkBox("avcC", []byte{1, 0x64, 0x00, 0x1f, 0xff, 0xe0, 0}))
	mp4aEntry = mkBox("mp4a", make([]byte, 28), fullBox("esds", 0,
		[]byte{3, 25, 0, 2, 0}, // ES_Descriptor: ES_ID, flags
		[]byte{4, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // DecoderConfigDescriptor
		[]byte{5, 2, 0x12, 0x10},                                   // AudioSpecificConfig: AAC LC
		[]byte{6, 1, 2}))
	videoAudio = []genTrack{
		{id: 1, handler: "vide", entry: avc1Entry, trexFlags: nonSyncSample}, // as ffmpeg writes it
		{id: 2, handler: "soun", entry: mp4aEntry},
	}
	audioOnly = []genTrack{{id: 7, handler: "soun", entry: mp4aEntry, trexFlags: nonSyncSample}}
)

func (generator) moov(tracks []genTrack) []byte {
	var traks, trexs [][]byte
	for _, t := range tracks {
		tkhd := fullBox("tkhd", 3, u32(0), u32(0), u32(t.id), make([]byte, 68))
		hdlr := fullBox("hdlr", 0, u32(0), []byte(t.handler), make([]byte, 13))
		stsd := fullBox("stsd", 0, u32(1), t.entry)
		traks = append(traks, mkBox("trak", tkhd, mkBox("mdia", hdlr, mkBox("minf", mkBox("stbl", stsd)))))
		trexs = append(trexs, fullBox("trex", 0, u32(t.id), u32(1), u32(0), u32(0), u32(t.trexFlags)))
	}
	return mkBox("moov", fullBox("mvhd", 0, make([]byte, 96)), cat(traks...), mkBox("mvex", trexs...))
}

func (generator) moof(trafs ...[]byte) []byte {
	return mkBox("moof", fullBox("mfhd", 0, u32(1)), cat(trafs...))
}

// traf is a traf of this track; defaultFlags goes in tfhd when tfhd's
// flags have 0x20 (default-sample-flags-present).
func (generator) traf(id, tfhdFlags, defaultFlags uint32, truns ...[]byte) []byte {
	tfhd := cat(u32(id))
	if tfhdFlags&0x8 != 0 { // default-sample-duration, before the flags
		tfhd = cat(tfhd, u32(512))
	}
	if tfhdFlags&0x20 != 0 {
		tfhd = cat(tfhd, u32(defaultFlags))
	}
	return mkBox("traf", fullBox("tfhd", tfhdFlags|0x20000, tfhd), cat(truns...))
}

// trunFirst has first_sample_flags (and a data_offset).
func trunFirst(flags uint32) []byte {
	return fullBox("trun", 0x1|0x4|0x200, u32(2), u32(0), u32(flags), u32(10), u32(10))
}

// trunPerSample has per-sample durations, sizes and flags.
func trunPerSample(first uint32) []byte {
	return fullBox("trun", 0x1|0x100|0x200|0x400, u32(2), u32(0),
		u32(512), u32(10), u32(first), u32(512), u32(10), u32(nonSyncSample))
}

// trunNoFlags has no sample flags: tfhd's or trex's apply.
func trunNoFlags(count uint32) []byte {
	body := cat(u32(count), u32(0))
	for range count {
		body = cat(body, u32(10))
	}
	return fullBox("trun", 0x1|0x200, body)
}

const depends = 0x1000000 // sample_depends_on = 1: a sync sample's flags as ffmpeg writes a P frame's, without the non-sync bit

// genStream is a generated stream and where its inits and fragments start.
type genStream struct {
	data  []byte
	marks []refPiece
}

func (s *genStream) add(b ...[]byte) { s.data = cat(s.data, cat(b...)) }
func (s *genStream) init(b ...[]byte) {
	s.marks = append(s.marks, refPiece{Off: int64(len(s.data)), Init: true})
	s.add(b...)
}
func (s *genStream) frag(key bool, b ...[]byte) {
	s.marks = append(s.marks, refPiece{Off: int64(len(s.data)), Keyframe: key})
	s.add(b...)
}

func generatedStreams() map[string]genStream {
	g := gen()
	var rules genStream
	rules.init(g.ftyp(), mkBox("free", make([]byte, 3)), g.moov(videoAudio))
	rules.frag(true, g.moof(g.traf(1, 0, 0, trunFirst(0))), g.mdat(20))
	rules.frag(false, g.moof(g.traf(1, 0, 0, trunFirst(nonSyncSample))), g.mdat(20))
	rules.frag(true, g.moof(g.traf(1, 0, 0, trunFirst(depends))), g.mdat(20))
	rules.frag(false, g.moof(g.traf(1, 0x20|0x8, nonSyncSample, trunNoFlags(1))), g.mdat(20))
	rules.frag(true, g.moof(g.traf(1, 0x20, 0, trunNoFlags(2))), g.mdat(20))
	rules.frag(false, g.moof(g.traf(1, 0, 0, trunNoFlags(1))), g.mdat(20)) // trex: non-sync
	rules.frag(true, g.moof(g.traf(1, 0x20, nonSyncSample, trunFirst(0))), g.mdat(20))
	rules.frag(true, g.moof(g.traf(1, 0x20, nonSyncSample, trunPerSample(0))), g.mdat(20))
	rules.frag(false, g.moof(g.traf(1, 0, 0, trunPerSample(nonSyncSample))))
	rules.frag(false, g.moof(g.traf(2, 0, 0, trunFirst(0)), g.traf(1, 0, 0, trunFirst(nonSyncSample))), g.mdat(20))
	rules.frag(true, g.moof(g.traf(2, 0, 0, trunFirst(nonSyncSample)), g.traf(1, 0, 0, trunFirst(0))), g.mdat(20))
	rules.frag(false, g.moof(g.traf(2, 0, 0, trunFirst(0))), g.mdat(20)) // no video sample
	rules.frag(true, g.moof(g.traf(1, 0, 0, trunNoFlags(0), trunFirst(0))), g.mdat(20))

	var boxes genStream
	uuid := mkBox("uuid", []byte("0123456789abcdef"), []byte("body"))
	boxes.init(g.ftyp(), mkBox("skip"), uuid, g.moov(videoAudio), mkBox("free", make([]byte, 5)))
	boxes.frag(true, g.styp(), fullBox("sidx", 0, make([]byte, 24)), fullBox("prft", 0, make([]byte, 12)),
		fullBox("emsg", 0, make([]byte, 20)), g.moof(g.traf(1, 0, 0, trunFirst(0))), box64("mdat", make([]byte, 40)), mkBox("free"), uuid, mkBox("abcd", []byte{1}))
	boxes.frag(false, box64("moof", fullBox("mfhd", 0, u32(2)), g.traf(1, 0, 0, trunFirst(nonSyncSample))), g.mdat(30))
	boxes.init(g.moov(videoAudio)) // a new moov without ftyp
	boxes.frag(true, fullBox("emsg", 0, make([]byte, 20)), g.moof(g.traf(1, 0, 0, trunFirst(0))), g.mdat(9))
	boxes.init(g.ftyp(), mkBox("free"), g.moov(audioOnly))
	boxes.frag(true, g.moof(g.traf(7, 0, 0, trunFirst(nonSyncSample))), g.mdat(8))
	boxes.frag(true, g.moof(g.traf(7, 0, 0, trunNoFlags(1))), g.mdat(8))
	boxes.frag(true, g.moof(g.traf(7, 0, 0, trunNoFlags(1))), u32(0), []byte("mdat"), make([]byte, 33)) // size 0: to the end

	return map[string]genStream{"keyframe rules": rules, "boxes": boxes}
}
