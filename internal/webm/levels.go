package webm

import (
	"fmt"

	"github.com/segrelay/relay/internal/ebml"
)

// topLevel handles an element outside any Segment. It reports true when it
// needs more input.
func (s *Splitter) topLevel(emit func(Piece) error, e element) (bool, error) {
	switch e.id {
	case ebml.IDEBML:
		return s.ebmlHeader(emit, e)
	case ebml.IDSegment:
		if s.kind == pieceInit && s.pos+e.hdr-s.pieceStart > s.maxPiece {
			return false, s.tooBig(e.off, "init segment")
		}
		s.haveSegment = true
		s.inSegment = true
		s.segEnd = -1
		if !e.unknown {
			s.segEnd = e.off + int64(e.total())
		}
		s.pos += e.hdr
		return false, nil
	}
	return s.leaf(emit, e) // Void, as checkPlace made sure
}

// ebmlHeader starts a new EBML document: the recorder (re)started. Whatever
// was gathered before is emitted, and a new init begins.
func (s *Splitter) ebmlHeader(emit func(Piece) error, e element) (bool, error) {
	end := s.pos + int(e.total())
	if end > len(s.hold) {
		return true, nil
	}
	docType, err := s.readEBMLHeader(s.hold[s.pos+e.hdr:end], e.off+int64(e.hdr))
	if err != nil {
		return false, err
	}
	if err := s.flush(emit, s.pos); err != nil {
		return false, err
	}
	s.started = true
	s.haveSegment = false
	s.kind = pieceInit
	s.next = initSegment{docType: docType}
	s.pos = end
	s.cut = end
	return false, nil
}

// segmentLevel handles a child of the Segment (level 1).
func (s *Splitter) segmentLevel(emit func(Piece) error, e element) (bool, error) {
	switch e.id {
	case ebml.IDEBML:
		s.inSegment = false // a Segment of unknown size ends at the next stream
		s.cut = s.pos
		return s.topLevel(emit, e)
	case ebml.IDCluster:
		if err := s.flush(emit, s.pos); err != nil { // Cues, Tags... between Clusters
			return false, err
		}
		s.kind = pieceClusterFirst
		s.keyKnown = len(s.videoTracks) == 0 // no video: every Cluster is a keyframe
		s.key = s.keyKnown
		s.inCluster = true
		s.clusterEnd = -1
		if !e.unknown {
			s.clusterEnd = e.off + int64(e.total())
		}
		s.cut = s.pos
		s.pos += e.hdr
		return false, nil
	}
	wait, err := s.leaf(emit, e)
	if wait || err != nil {
		return wait, err
	}
	if e.id == ebml.IDTracks && s.kind == pieceInit {
		body := s.hold[s.pos-int(e.size) : s.pos]
		tracks, err := s.readTracks(body, e.off+int64(e.hdr))
		if err != nil {
			return false, err
		}
		s.next.tracks = tracks
	}
	return false, nil
}

// clusterLevel handles a child of a Cluster.
func (s *Splitter) clusterLevel(emit func(Piece) error, e element) (bool, error) {
	if s.kind == pieceClusterFirst && !s.keyKnown && e.id == ebml.IDSimpleBlock {
		// A SimpleBlock's header says whether it is a keyframe: the
		// flags byte after the track number and the 16-bit timecode.
		body := s.hold[s.pos+e.hdr:]
		if uint64(len(body)) > e.size {
			body = body[:e.size]
		}
		track, n, bad := readVint(body)
		if bad {
			return false, s.fail(e.off, "invalid track number in SimpleBlock")
		}
		if n == 0 || len(body) < n+3 {
			if uint64(len(body)) == e.size {
				return false, s.fail(e.off, "SimpleBlock of %d bytes is too short for its header", e.total())
			}
			return true, nil
		}
		if s.isVideoTrack(track) {
			s.keyKnown = true
			s.key = body[n+2]&0x80 != 0
		}
	}
	wait, err := s.leaf(emit, e)
	if wait || err != nil {
		return wait, err
	}
	if e.id == ebml.IDBlockGroup && s.kind == pieceClusterFirst && !s.keyKnown {
		track, hasBlock, hasRef, err := s.readBlockGroup(s.hold[s.pos-int(e.size):s.pos], e.off+int64(e.hdr))
		if err != nil {
			return false, err
		}
		if hasBlock && s.isVideoTrack(track) {
			// Only the first video block decides, and it is before
			// this BlockGroup's end: the piece may be cut here.
			s.keyKnown = true
			s.key = !hasRef
		}
	}
	return false, nil
}

// leaf handles an element that is kept whole: it waits until all its bytes are
// there and moves past it. It reports true when it needs more input.
func (s *Splitter) leaf(emit func(Piece) error, e element) (bool, error) {
	total := int(e.total())
	if s.pos+total-s.pieceStart > s.maxPiece {
		switch {
		case s.kind == pieceInit:
			return false, s.tooBig(e.off, "init segment")
		case s.kind == pieceClusterFirst && !s.keyKnown:
			return false, s.tooBig(e.off, "Cluster before its first video block")
		default:
			// Too much for one piece: cut before this element.
			if err := s.flush(emit, s.pos); err != nil {
				return false, err
			}
		}
	}
	if s.pos+total > len(s.hold) {
		return true, nil
	}
	s.pos += total
	s.cut = s.pos
	return false, nil
}

func (s *Splitter) tooBig(off int64, what string) error {
	return fmt.Errorf("%w: %s held back is more than %d bytes at offset %d", ErrTooBig, what, s.maxPiece, off)
}

// endCluster ends the current Cluster at pos and emits what is left of it.
func (s *Splitter) endCluster(emit func(Piece) error) error {
	s.inCluster = false
	if s.kind == pieceClusterFirst && !s.keyKnown {
		// The Cluster had no video block: viewers cannot start there.
		s.keyKnown = true
		s.key = false
	}
	s.cut = s.pos
	err := s.flush(emit, s.pos)
	s.kind = pieceMedia // what follows the Cluster (Cues, ...) until the next one
	return err
}

// endsUnknownCluster reports whether an element with this ID cannot be a child
// of a Cluster, so that it ends a Cluster of unknown size. Void (0xEC) is
// ambiguous and taken as a child.
func endsUnknownCluster(id uint32) bool {
	switch id {
	case ebml.IDCluster, ebml.IDCues, ebml.IDTags, ebml.IDSeekHead, ebml.IDInfo, ebml.IDTracks, ebml.IDChapters, ebml.IDAttachments, ebml.IDEBML, ebml.IDSegment:
		return true
	}
	return false
}
