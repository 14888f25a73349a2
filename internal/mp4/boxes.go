package mp4

import (
	"encoding/binary"
	"fmt"
)

// boxType is a box's four-character code, read as a big-endian number so
// that comparing it allocates nothing.
type boxType uint32

func fourCC(s string) boxType {
	return boxType(uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]))
}

var (
	typeFtyp = fourCC("ftyp")
	typeStyp = fourCC("styp")
	typeMoov = fourCC("moov")
	typeMoof = fourCC("moof")
	typeSidx = fourCC("sidx")
	typeSsix = fourCC("ssix")
	typePrft = fourCC("prft")
	typeEmsg = fourCC("emsg")
	typeFree = fourCC("free")
	typeSkip = fourCC("skip")
	typeWide = fourCC("wide")
	typePdin = fourCC("pdin")
	typeMeta = fourCC("meta")
	typeUUID = fourCC("uuid")
)

// String is the code as text, or in hex when it is not printable (which
// says the bytes are no MP4).
func (t boxType) String() string {
	b := binary.BigEndian.AppendUint32(nil, uint32(t))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08x", uint32(t))
		}
	}
	return fmt.Sprintf("%q", b)
}

// box is a parsed box header (ISO/IEC 14496-12 §4.2).
type box struct {
	typ   boxType
	hdr   int    // bytes of size, type, largesize and usertype
	size  uint64 // with the header; 0 when toEnd
	toEnd bool   // size 0: the box runs to the end of the file (or of its parent)
}

// readHeader parses the box header at b[0], at stream offset off. ok is
// false when b is too short to tell; an error when no box can start so.
func readHeader(b []byte, off int64) (box, bool, error) {
	if len(b) < 8 {
		return box{}, false, nil
	}
	h := box{typ: boxType(binary.BigEndian.Uint32(b[4:])), hdr: 8, size: uint64(binary.BigEndian.Uint32(b))}
	switch h.size {
	case 0:
		h.toEnd = true
	case 1: // a 64-bit largesize follows the type
		if len(b) < 16 {
			return box{typ: h.typ}, false, nil
		}
		h.size = binary.BigEndian.Uint64(b[8:])
		h.hdr = 16
	}
	if h.typ == typeUUID {
		h.hdr += 16 // the extended type, read as part of the header
	}
	if !h.toEnd && h.size < uint64(h.hdr) {
		return box{}, false, fmt.Errorf("%w: %v box of size %d is smaller than its %d-byte header at offset %d", ErrInvalid, h.typ, h.size, h.hdr, off)
	}
	return h, true, nil
}

// startsStream says whether a stream may begin with a box of this type:
// what comes before a moov in the files of ISO/IEC 14496-12 (§6.2.3) and
// its segments (§8.16). Anything else is not an MP4 stream.
func startsStream(t boxType) bool {
	switch t {
	case typeFtyp, typeStyp, typeMoov, typeFree, typeSkip, typeWide, typeUUID, typePdin, typeMeta:
		return true
	}
	return false
}

// parse handles every top-level box whose bytes are all there, from pos on.
// A box is only acted on once it is whole: the boxes that are read (moov,
// moof) are small, and the others are held whole anyway.
func (s *Splitter) parse(emit func(Piece) error) error {
	for {
		b := s.hold[s.pos:]
		off := s.offset(s.pos)
		h, ok, err := readHeader(b, off)
		if err != nil || !ok {
			return err
		}
		if !s.started && !startsStream(h.typ) {
			return s.fail(off, "stream does not start with an MP4 box (found %v)", h.typ)
		}
		s.started = true
		total := h.size
		if h.toEnd {
			// Size 0 is only for the last box of a file: a live stream
			// that sends one has all its further bytes in it, held until
			// End, within maxPiece.
			if !s.ended {
				return s.holdToEnd(emit, h, len(b), off)
			}
			total = uint64(len(b))
			if total < uint64(h.hdr) {
				return nil // truncated: End says so
			}
		}
		if total > uint64(s.maxPiece) {
			return s.tooBig(off, h.typ.String()+" box", total)
		}
		if s.kind == pieceMedia || s.kind == pieceFragmentFirst && s.haveMoof {
			// A piece that may leave now leaves before it grows too big.
			if s.pos-s.pieceStart+int(total) > s.maxPiece {
				if err := s.flush(emit, s.pos); err != nil {
					return err
				}
			}
		} else if s.pos-s.pieceStart+int(total) > s.maxPiece {
			what := "init segment"
			if s.kind == pieceFragmentFirst {
				what = "fragment start before its moof"
			}
			return s.tooBig(s.offset(s.pieceStart), what, uint64(s.pos-s.pieceStart)+total)
		}
		if uint64(len(b)) < total {
			return nil
		}
		if err := s.topLevel(emit, h, b[h.hdr:total], off); err != nil {
			return err
		}
		s.pos += int(total)
	}
}

// holdToEnd waits for End with a box of size 0 that has n bytes so far,
// with the piece it is in under maxPiece. The error does not say how many
// bytes there were: that depends on the write boundaries.
func (s *Splitter) holdToEnd(emit func(Piece) error, h box, n int, off int64) error {
	flushable := s.kind == pieceMedia || s.kind == pieceFragmentFirst && s.haveMoof
	if flushable && s.pos-s.pieceStart+n > s.maxPiece {
		if err := s.flush(emit, s.pos); err != nil {
			return err
		}
	}
	if s.pos-s.pieceStart+n > s.maxPiece {
		return fmt.Errorf("%w: %v box to the end of the stream grows past the limit of %d at offset %d", ErrTooBig, h.typ, s.maxPiece, off)
	}
	return nil
}

// topLevel acts on a whole top-level box; body is its bytes after the
// header, at stream offset off+hdr.
func (s *Splitter) topLevel(emit func(Piece) error, h box, body []byte, off int64) error {
	bodyOff := off + int64(h.hdr)
	switch h.typ {
	case typeFtyp, typeMoov:
		// A new init: the recorder restarted (or two files follow each
		// other). A moov without its ftyp still starts one.
		if s.kind != pieceInit || s.haveMoov {
			if err := s.startPiece(emit, pieceInit); err != nil {
				return err
			}
			s.haveMoov = false
		}
		if h.typ == typeMoov {
			info, err := readMoov(body, bodyOff)
			if err != nil {
				return err
			}
			s.next = info
			s.haveMoov = true
		}
	case typeMoof:
		if s.kind == pieceInit && !s.haveMoov {
			return s.fail(off, "moof before any moov")
		}
		if s.kind != pieceFragmentFirst || s.haveMoof {
			if err := s.startPiece(emit, pieceFragmentFirst); err != nil {
				return err
			}
		}
		key, err := s.cur.keyframe(body, bodyOff)
		if err != nil {
			return err
		}
		s.key = key
		s.haveMoof = true
	case typeStyp, typeSidx, typeSsix, typePrft, typeEmsg:
		// Before the moov they are part of the init (everything before
		// the first moof); after it they start the next fragment.
		if s.kind == pieceInit && !s.haveMoov {
			break
		}
		if s.kind != pieceFragmentFirst || s.haveMoof {
			if err := s.startPiece(emit, pieceFragmentFirst); err != nil {
				return err
			}
		}
	}
	return nil
}

// startPiece emits what was gathered before pos and gathers a new piece of
// this kind from pos.
func (s *Splitter) startPiece(emit func(Piece) error, kind pieceKind) error {
	if err := s.flush(emit, s.pos); err != nil {
		return err
	}
	s.kind = kind
	s.haveMoof = false
	s.key = false
	return nil
}

// children calls fn for each box inside body (at stream offset off), in
// order. A box that cannot be valid or runs past its parent is an error;
// fewer than 8 bytes left at the end are padding some writers leave.
func children(body []byte, off int64, fn func(h box, body []byte, off int64) error) error {
	for len(body) >= 8 {
		h, ok, err := readHeader(body, off)
		if err != nil {
			return err
		}
		if !ok { // a largesize cut off by the parent's end
			return fmt.Errorf("%w: %v box header overruns its parent at offset %d", ErrInvalid, h.typ, off)
		}
		total := h.size
		if h.toEnd {
			total = uint64(len(body)) // to the end of its parent
		}
		if total > uint64(len(body)) || uint64(h.hdr) > total {
			return fmt.Errorf("%w: %v box of %d bytes overruns its parent by %d bytes at offset %d",
				ErrInvalid, h.typ, total, total-uint64(len(body)), off)
		}
		if err := fn(h, body[h.hdr:total], off+int64(h.hdr)); err != nil {
			return err
		}
		body = body[total:]
		off += int64(total)
	}
	return nil
}
