package mp4

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
)

// initInfo is what the splitter keeps of a moov.
type initInfo struct {
	tracks []track // in the moov's order
}

// track is one trak of a moov, with its trex defaults.
type track struct {
	id          uint32
	handler     boxType // hdlr's handler_type: vide, soun, ...
	codec       string  // for the MIME type's codecs parameter; "" if unknown
	trexFlags   uint32  // trex's default_sample_flags
	haveTrex    bool
	haveTrackID bool
}

var (
	typeTrak = fourCC("trak")
	typeTkhd = fourCC("tkhd")
	typeMdia = fourCC("mdia")
	typeHdlr = fourCC("hdlr")
	typeMinf = fourCC("minf")
	typeStbl = fourCC("stbl")
	typeStsd = fourCC("stsd")
	typeMvex = fourCC("mvex")
	typeTrex = fourCC("trex")
	typeVide = fourCC("vide")
	typeSoun = fourCC("soun")
)

// readMoov reads the track list of a moov's body (§8.2.1), at stream offset
// off: each trak's ID, handler and codec, and the trex defaults of mvex.
func readMoov(body []byte, off int64) (initInfo, error) {
	var info initInfo
	var trex []track // trex entries: id and flags only
	err := children(body, off, func(h box, b []byte, off int64) error {
		switch h.typ {
		case typeTrak:
			t, err := readTrak(b, off)
			if err != nil {
				return err
			}
			info.tracks = append(info.tracks, t)
		case typeMvex:
			return children(b, off, func(h box, b []byte, off int64) error {
				if h.typ != typeTrex {
					return nil
				}
				// trex (§8.8.3): FullBox, track_ID, default_sample_description_index,
				// default_sample_duration, default_sample_size, default_sample_flags.
				if len(b) < 24 {
					return shortBox(h, len(b), 24, off)
				}
				trex = append(trex, track{id: binary.BigEndian.Uint32(b[4:]), trexFlags: binary.BigEndian.Uint32(b[20:]), haveTrex: true})
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return initInfo{}, err
	}
	for _, x := range trex {
		for i := range info.tracks {
			if info.tracks[i].id == x.id {
				info.tracks[i].trexFlags, info.tracks[i].haveTrex = x.trexFlags, true
			}
		}
	}
	return info, nil
}

func shortBox(h box, have, want int, off int64) error {
	return fmt.Errorf("%w: %v box of %d bytes, %d needed, at offset %d", ErrInvalid, h.typ, have, want, off)
}

// readTrak reads a trak (§8.3.1): tkhd's track_ID, mdia's hdlr and the
// first sample entry of stbl's stsd.
func readTrak(body []byte, off int64) (track, error) {
	var t track
	err := children(body, off, func(h box, b []byte, off int64) error {
		switch h.typ {
		case typeTkhd: // §8.3.2: version 1 has 64-bit times before track_ID
			want := 16
			if len(b) > 0 && b[0] == 1 {
				want = 24
			}
			if len(b) < want {
				return shortBox(h, len(b), want, off)
			}
			t.id = binary.BigEndian.Uint32(b[want-4:])
			t.haveTrackID = true
		case typeMdia:
			return children(b, off, func(h box, b []byte, off int64) error {
				switch h.typ {
				case typeHdlr: // §8.4.3: FullBox, pre_defined, handler_type
					if len(b) < 12 {
						return shortBox(h, len(b), 12, off)
					}
					t.handler = boxType(binary.BigEndian.Uint32(b[8:]))
				case typeMinf:
					return children(b, off, func(h box, b []byte, off int64) error {
						if h.typ != typeStbl {
							return nil
						}
						return children(b, off, func(h box, b []byte, off int64) error {
							if h.typ != typeStsd {
								return nil
							}
							// §8.5.2: FullBox, entry_count, then the entries;
							// the first one is the codec.
							if len(b) < 8 {
								return shortBox(h, len(b), 8, off)
							}
							first := true
							return children(b[8:], off+8, func(h box, b []byte, off int64) error {
								if first {
									first = false
									t.codec = codecString(h.typ, b)
								}
								return nil
							})
						})
					})
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && !t.haveTrackID {
		err = fmt.Errorf("%w: trak without tkhd at offset %d", ErrInvalid, off)
	}
	return t, err
}

// Sample entry codes (ISO/IEC 14496-15, VP9 and AV1 ISOBMFF bindings,
// Opus in ISOBMFF, ETSI TS 102 366 for AC-3).
var (
	typeAvc1 = fourCC("avc1")
	typeAvc3 = fourCC("avc3")
	typeHvc1 = fourCC("hvc1")
	typeHev1 = fourCC("hev1")
	typeVp09 = fourCC("vp09")
	typeAv01 = fourCC("av01")
	typeMp4a = fourCC("mp4a")
	typeOpus = fourCC("Opus")
	typeFlac = fourCC("fLaC")
	typeAc3  = fourCC("ac-3")
	typeEc3  = fourCC("ec-3")
	typeAvcC = fourCC("avcC")
	typeHvcC = fourCC("hvcC")
	typeVpcC = fourCC("vpcC")
	typeAv1C = fourCC("av1C")
	typeEsds = fourCC("esds")
)

// codecString is the RFC 6381 codecs value of a sample entry, as MSE's
// isTypeSupported wants it; the bare code when its configuration box is
// missing, "" for an entry it does not know.
func codecString(typ boxType, entry []byte) string {
	// SampleEntry (§8.5.2.2) has 8 bytes; VisualSampleEntry 70 more
	// (§12.1.3), AudioSampleEntry 20 more (§12.2.3; QuickTime's sound
	// description versions 1 and 2 add 16 and 36).
	switch typ {
	case typeAvc1, typeAvc3, typeHvc1, typeHev1, typeVp09, typeAv01:
		name := typ.code()
		if len(entry) < 78 {
			return name
		}
		conf := childBody(entry[78:], map[boxType]boxType{typeAvc1: typeAvcC, typeAvc3: typeAvcC, typeHvc1: typeHvcC, typeHev1: typeHvcC, typeVp09: typeVpcC, typeAv01: typeAv1C}[typ])
		switch {
		case conf == nil:
			return name
		case typ == typeAvc1 || typ == typeAvc3:
			return avcCodec(name, conf)
		case typ == typeHvc1 || typ == typeHev1:
			return hevcCodec(name, conf)
		case typ == typeVp09:
			return vp9Codec(conf)
		default:
			return av1Codec(conf)
		}
	case typeMp4a, typeOpus, typeFlac, typeAc3, typeEc3:
		if typ != typeMp4a {
			return map[boxType]string{typeOpus: "opus", typeFlac: "flac", typeAc3: "ac-3", typeEc3: "ec-3"}[typ]
		}
		skip := 28
		if len(entry) >= 10 {
			switch binary.BigEndian.Uint16(entry[8:]) {
			case 1:
				skip += 16
			case 2:
				skip += 36
			}
		}
		if len(entry) < skip {
			return "mp4a"
		}
		return mp4aCodec(childBody(entry[skip:], typeEsds))
	}
	return ""
}

// code is the four characters as they are.
func (t boxType) code() string {
	return string(binary.BigEndian.AppendUint32(nil, uint32(t)))
}

// childBody is the body of the first box of this type in b, or nil.
func childBody(b []byte, typ boxType) []byte {
	var found []byte
	children(b, 0, func(h box, body []byte, _ int64) error {
		if found == nil && h.typ == typ {
			found = body
		}
		return nil
	})
	return found
}

// avcCodec: avcC (ISO/IEC 14496-15 §5.3.3.1) has configurationVersion,
// AVCProfileIndication, profile_compatibility, AVCLevelIndication.
func avcCodec(name string, c []byte) string {
	if len(c) < 4 {
		return name
	}
	return fmt.Sprintf("%s.%02x%02x%02x", name, c[1], c[2], c[3])
}

// hevcCodec: hvcC (ISO/IEC 14496-15 §8.3.3.1) and the codecs value of its
// Annex E: profile space and profile, the compatibility flags bit-reversed
// in hex, tier and level, then the constraint bytes without trailing zeros.
func hevcCodec(name string, c []byte) string {
	if len(c) < 13 {
		return name
	}
	var sb strings.Builder
	sb.WriteString(name)
	sb.WriteString(".")
	sb.WriteString([]string{"", "A", "B", "C"}[c[1]>>6])
	fmt.Fprintf(&sb, "%d.%X.", c[1]&0x1f, bits.Reverse32(binary.BigEndian.Uint32(c[2:])))
	tier := "L"
	if c[1]&0x20 != 0 {
		tier = "H"
	}
	fmt.Fprintf(&sb, "%s%d", tier, c[12])
	cons := c[6:12]
	for len(cons) > 0 && cons[len(cons)-1] == 0 {
		cons = cons[:len(cons)-1]
	}
	for _, x := range cons {
		fmt.Fprintf(&sb, ".%X", x)
	}
	return sb.String()
}

// vp9Codec: vpcC (VP Codec ISO Media File Format Binding §2.2) is a
// FullBox with profile, level, then bitDepth in the high 4 bits.
func vp9Codec(c []byte) string {
	if len(c) < 7 {
		return "vp09"
	}
	level := c[5]
	if !validVP9Level(level) {
		// Chromium's MediaRecorder writes level 0 in its MP4s, and its
		// isTypeSupported refuses "vp09.00.00.08" (while it plays the
		// stream): the level says nothing here, so the lowest one.
		level = 10
	}
	return fmt.Sprintf("vp09.%02d.%02d.%02d", c[4], level, c[6]>>4)
}

// validVP9Level: the levels of the VP9 bitstream specification, Annex A.
func validVP9Level(l byte) bool {
	switch l {
	case 10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 52, 60, 61, 62:
		return true
	}
	return false
}

// av1Codec: av1C (AV1 Codec ISO Media File Format Binding §2.3) has
// marker and version, then seq_profile (3 bits) and seq_level_idx_0 (5),
// then seq_tier_0, high_bitdepth, twelve_bit; the codecs value is its
// Annex "Codecs Parameter String" without the optional fields.
func av1Codec(c []byte) string {
	if len(c) < 3 {
		return "av01"
	}
	tier := "M"
	if c[2]&0x80 != 0 {
		tier = "H"
	}
	depth := 8
	if c[2]&0x40 != 0 {
		depth = 10
		if c[2]&0x20 != 0 {
			depth = 12
		}
	}
	return fmt.Sprintf("av01.%d.%02d%s.%02d", c[1]>>5, c[1]&0x1f, tier, depth)
}

// mp4aCodec: esds (ISO/IEC 14496-14 §3.1.2) is a FullBox with an
// ES_Descriptor (ISO/IEC 14496-1 §7.2.6.5) holding a
// DecoderConfigDescriptor: its objectTypeIndication, and for MPEG-4 audio
// (0x40) the audioObjectType of the AudioSpecificConfig after it.
func mp4aCodec(esds []byte) string {
	if len(esds) < 4 {
		return "mp4a"
	}
	b := esds[4:]
	tag, es := readDescriptor(b)
	if tag != 3 || len(es) < 3 {
		return "mp4a"
	}
	flags := es[2]
	es = es[3:]
	if flags&0x80 != 0 { // streamDependenceFlag: dependsOn_ES_ID
		es = es[min(2, len(es)):]
	}
	if flags&0x40 != 0 && len(es) > 0 { // URL_Flag: URLlength, URLstring
		es = es[min(1+int(es[0]), len(es)):]
	}
	if flags&0x20 != 0 { // OCRstreamFlag: OCR_ES_Id
		es = es[min(2, len(es)):]
	}
	tag, dc := readDescriptor(es)
	if tag != 4 || len(dc) < 13 {
		return "mp4a"
	}
	oti := dc[0]
	if oti != 0x40 {
		return fmt.Sprintf("mp4a.%x", oti)
	}
	tag, dsi := readDescriptor(dc[13:])
	if tag != 5 || len(dsi) < 1 {
		return "mp4a.40"
	}
	aot := dsi[0] >> 3
	if aot == 31 && len(dsi) >= 2 { // escape: 32 + the next 6 bits
		aot = 32 + (dsi[0]&7)<<3 | dsi[1]>>5
	}
	return fmt.Sprintf("mp4a.40.%d", aot)
}

// readDescriptor reads an MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3): a tag,
// a size of 7-bit groups, the body. tag is 0 when it does not parse.
func readDescriptor(b []byte) (tag byte, body []byte) {
	if len(b) < 2 {
		return 0, nil
	}
	size := 0
	i := 1
	for ; i < len(b) && i <= 4; i++ {
		size = size<<7 | int(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			break
		}
	}
	i++
	if i > len(b) || size > len(b)-i {
		return 0, nil
	}
	return b[0], b[i : i+size]
}

// mime is the MIME type of an init with these tracks.
func (info initInfo) mime() string {
	typ := "audio/mp4"
	var codecs []string
	for _, t := range info.tracks {
		if t.handler == typeVide {
			typ = "video/mp4"
		}
		if t.codec != "" && (t.handler == typeVide || t.handler == typeSoun) {
			codecs = append(codecs, t.codec)
		}
	}
	if len(info.tracks) == 0 {
		return ""
	}
	if len(codecs) == 0 {
		return typ
	}
	return typ + `; codecs="` + strings.Join(codecs, ",") + `"`
}
