package webm

import (
	"fmt"

	"github.com/segrelay/relay/internal/ebml"
)

// element is a parsed element header.
type element struct {
	id      uint32
	off     int64 // stream offset of its first byte
	hdr     int   // bytes of ID and size
	size    uint64
	unknown bool
}

// total is the element's length with its header; only for known sizes.
func (e element) total() uint64 { return uint64(e.hdr) + e.size }

// parse handles every element whose bytes are there, from pos on.
func (s *Splitter) parse(emit func(Piece) error) error {
	for {
		off := s.offset(s.pos)
		// A master of known size ends where its size says.
		if s.inCluster && s.clusterEnd == off {
			if err := s.endCluster(emit); err != nil {
				return err
			}
			continue
		}
		if s.inSegment && s.segEnd == off {
			if s.inCluster { // of unknown size: ends with its parent
				if err := s.endCluster(emit); err != nil {
					return err
				}
			}
			s.inSegment = false
			s.cut = s.pos
			continue
		}

		b := s.hold[s.pos:]
		id, idLen, bad := readID(b)
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		if idLen == 0 {
			return nil
		}
		if !s.started && id != ebml.IDEBML {
			if id == ebml.IDCluster {
				return s.fail(off, "Cluster before any init segment")
			}
			return s.fail(off, "stream does not start with an EBML header (found %s)", ebml.Name(id))
		}
		// A Cluster of unknown size ends where an element that cannot be
		// its child starts. Its ID is enough to tell.
		if s.inCluster && s.clusterEnd < 0 && endsUnknownCluster(id) {
			if err := s.endCluster(emit); err != nil {
				return err
			}
			continue
		}
		// The init is complete as soon as the first Cluster's ID is there.
		if id == ebml.IDCluster && s.kind == pieceInit && s.inSegment && !s.inCluster {
			if err := s.flush(emit, s.pos); err != nil {
				return err
			}
		}

		size, sizeLen, unknown, bad := readSize(b[idLen:])
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		if sizeLen == 0 {
			return nil
		}
		e := element{id: id, off: off, hdr: idLen + sizeLen, size: size, unknown: unknown}
		if err := s.checkPlace(e); err != nil {
			return err
		}
		if err := s.checkParent(e); err != nil {
			return err
		}
		// Everything but the Segment and Cluster masters is held whole,
		// so it must fit in a piece. The stream may be fine, the limit is
		// not: ErrTooBig, as the package documents it (a frame
		// bigger than the hub's segment limit).
		if e.id != ebml.IDSegment && e.id != ebml.IDCluster && e.total() > uint64(s.maxPiece) {
			return fmt.Errorf("%w: %s of %d bytes is larger than the limit of %d at offset %d",
				ErrTooBig, ebml.Name(e.id), e.total(), s.maxPiece, e.off)
		}

		var wait bool
		var err error
		switch {
		case !s.inSegment:
			wait, err = s.topLevel(emit, e)
		case !s.inCluster:
			wait, err = s.segmentLevel(emit, e)
		default:
			wait, err = s.clusterLevel(emit, e)
		}
		if err != nil || wait {
			return err
		}
	}
}

// checkPlace rejects an element where it cannot be.
func (s *Splitter) checkPlace(e element) error {
	switch {
	case !s.inSegment:
		switch {
		case e.id == ebml.IDCluster:
			return s.fail(e.off, "Cluster outside a Segment")
		case e.id == ebml.IDSegment && s.haveSegment:
			return s.fail(e.off, "second Segment in one EBML document")
		case e.id != ebml.IDEBML && e.id != ebml.IDSegment && e.id != ebml.IDVoid:
			return s.fail(e.off, "unexpected %s at top level", ebml.Name(e.id))
		}
	case !s.inCluster:
		switch {
		case e.id == ebml.IDSegment:
			return s.fail(e.off, "Segment inside a Segment")
		case e.id == ebml.IDEBML && s.segEnd >= 0:
			return s.fail(e.off, "EBML header inside a Segment of known size")
		}
	case endsUnknownCluster(e.id): // here only in a Cluster of known size
		return s.fail(e.off, "%s inside a Cluster", ebml.Name(e.id))
	}
	return nil
}

// checkParent rejects an unknown size where it is not allowed and an element
// that does not fit in its parent's known size.
func (s *Splitter) checkParent(e element) error {
	if e.unknown {
		// checkPlace let Segment and Cluster only where they may be.
		if e.id != ebml.IDSegment && e.id != ebml.IDCluster {
			return s.fail(e.off, "unknown size is not allowed for %s", ebml.Name(e.id))
		}
		return nil
	}
	end := int64(-1)
	if s.inSegment {
		end = s.segEnd
	}
	if s.inCluster && s.clusterEnd >= 0 {
		end = s.clusterEnd
	}
	// end > e.off: a master is closed as soon as parsing reaches its end.
	if end >= 0 && e.total() > uint64(end-e.off) {
		return s.fail(e.off, "%s of %d bytes overruns its parent by %d bytes", ebml.Name(e.id), e.total(), e.total()-uint64(end-e.off))
	}
	return nil
}
