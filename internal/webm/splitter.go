// Package webm cuts the raw byte stream of a browser's MediaRecorder (or a
// WebM/Matroska file) into pieces a relay can hand to viewers: one init piece
// (EBML header, Segment header and everything before the first Cluster), then
// media pieces that always end on element boundaries, each Cluster starting a
// new piece flagged with whether it starts at a video keyframe. The element
// IDs and the EBML writer it shares with the rest of the module are in
// internal/ebml.
//
// The splitter only parses element headers. Bodies are skipped, except for the
// few small elements it needs to read: the EBML header (DocType), Tracks
// (which track is video, codecs), the first video block's header in each
// Cluster, and that block's BlockGroup when frames are written as BlockGroups.
//
// What MediaRecorder does that shapes this code (see docs/browser-facts.md):
// message boundaries are never element boundaries (each message after the first
// starts 1 byte into an element, the first message can be 1 byte), Segment and
// Cluster have unknown sizes, and with audio most Clusters start with an Opus
// block, so only the first *video* block tells whether a Cluster starts at a
// keyframe.
//
// Files: splitter.go holds the state and the Write/End cycle, parse.go the
// element loop and its placement checks, levels.go what each level of the
// structure does with an element, headers.go the small masters read whole,
// tracks.go the track list and the MIME type, vint.go EBML's numbers.
// file.go is the other direction: FileWriter turns the pieces back into a
// file a player can seek in (the relay's recorder).
package webm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/segrelay/relay/internal/ebml"
)

// The splitter's errors. The relay package exports them as ErrBadWebM and
// ErrSegmentTooBig (they keep its "relay:" prefix for that reason), so that a
// caller tests them with errors.Is without knowing this package.
var (
	// ErrInvalid: the stream does not parse.
	ErrInvalid = errors.New("relay: bad WebM")
	// ErrTooBig: something that must be held whole is over the limit.
	ErrTooBig = errors.New("relay: segment too big")
)

// Piece is one output unit of the splitter. Data is freshly allocated for
// this piece and never touched by the splitter again (the hub shares it,
// immutable, with every subscriber).
type Piece struct {
	Init         bool // an init segment: EBML header + Segment header + every level-1 element before the first Cluster
	ClusterStart bool // media piece that begins with a Cluster's ID
	Keyframe     bool // ClusterStart && the Cluster's first video block is a keyframe
	Data         []byte
}

// pieceKind says what the piece being gathered will be emitted as.
type pieceKind uint8

const (
	pieceMedia        pieceKind = iota // continuation of a Cluster, or level-1 elements after one (Cues, ...)
	pieceInit                          // the init segment of the current EBML document
	pieceClusterFirst                  // the first piece of a Cluster
)

// Splitter is the state of one publisher's stream. It is not safe for
// concurrent use (the hub calls it under the publisher's lock).
type Splitter struct {
	maxPiece int
	err      error // sticky: once set, every call returns it
	ended    bool

	// hold has the input that was not emitted yet; hold[0] is at stream
	// offset base. Within a write, hold[:pieceStart] was emitted (it is
	// dropped before the write returns), pos is where parsing goes on, and
	// cut is the end of the last whole element, where the pending piece
	// may end: pieceStart <= cut <= pos <= len(hold).
	hold       []byte
	base       int64
	pieceStart int
	cut        int
	pos        int

	kind     pieceKind // what hold[pieceStart:] is gathered for
	keyKnown bool      // kind == pieceClusterFirst: the keyframe status is known
	key      bool      // ... and it is this

	// Where the parser is in the EBML structure. The only masters it enters
	// are Segment and Cluster; every other element is handled whole.
	started     bool // an EBML header was seen (a stream must begin with one)
	haveSegment bool // the current EBML document had its Segment
	inSegment   bool
	segEnd      int64 // stream offset where the Segment ends; -1 if unknown size
	inCluster   bool
	clusterEnd  int64 // stream offset where the Cluster ends; -1 if unknown size

	next        initSegment // read from the init being gathered
	videoTracks []uint64    // video track numbers of the last emitted init
	mimeType    string      // of the last emitted init
}

// NewSplitter returns a splitter; maxPiece bounds the bytes it may hold
// back or put in one piece (the hub passes its max segment size; <= 0 means
// the hub's default, 16 MiB).
func NewSplitter(maxPiece int) *Splitter {
	if maxPiece <= 0 {
		maxPiece = 16 << 20
	}
	return &Splitter{maxPiece: maxPiece, segEnd: -1, clusterEnd: -1}
}

// HeldBytes is the memory the splitter keeps between writes.
func (s *Splitter) HeldBytes() int { return cap(s.hold) }

// MIME describes the latest init emitted, e.g. "video/webm;codecs=vp9,opus";
// "" before any.
func (s *Splitter) MIME() string { return s.mimeType }

// Write consumes p (any size, any boundary) and calls emit for every piece
// that became complete, in order. It keeps no reference to p. At the end of
// the call the whole elements gathered for the current Cluster are emitted,
// so viewers get media as soon as it is whole; only the init and a Cluster's
// first piece (until its first video block says whether it is a keyframe) are
// held back longer. Write is Append followed by Flush.
//
// Errors: emit's error as is; ErrInvalid (wrapped, with what and the stream
// offset) when the stream does not parse; ErrTooBig when something
// that must be held whole (an element, the init, a Cluster's start before its
// first video block) is over maxPiece. After an error every call returns it.
func (s *Splitter) Write(p []byte, emit func(Piece) error) error {
	if err := s.Append(p, emit); err != nil {
		return err
	}
	return s.Flush(emit)
}

// Append is Write without its flush: the whole elements gathered for the
// current Cluster stay held back (Pending counts them) until a Flush, the
// next Cluster, or maxPiece. A caller that knows more input follows at once
// appends it, and flushes once, so that a Cluster leaves in few pieces.
func (s *Splitter) Append(p []byte, emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return errors.New("relay: WebM splitter: write after end")
	}
	s.hold = append(s.hold, p...)
	if err := s.parse(emit); err != nil {
		s.err = err
		return err
	}
	s.compact()
	return nil
}

// Flush emits the whole elements held back for the current Cluster, as
// Write does at its end.
func (s *Splitter) Flush(emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.Pending() == 0 {
		return nil
	}
	if err := s.flush(emit, s.cut); err != nil {
		s.err = err
		return err
	}
	s.compact()
	return nil
}

// Pending is how many bytes Flush would emit now: whole elements held back
// only because no Flush came yet.
func (s *Splitter) Pending() int {
	if s.err != nil || s.ended || s.kind == pieceInit || (s.kind == pieceClusterFirst && !s.keyKnown) {
		return 0
	}
	return s.cut - s.pieceStart
}

// End says the input is over. It emits what is held back when it is made of
// whole elements; an element cut short is an error, after the whole
// elements before it went out (as Flush would send them).
func (s *Splitter) End(emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return nil
	}
	err := s.truncated()
	if err != nil && s.Pending() > 0 {
		if ferr := s.flush(emit, s.cut); ferr != nil {
			err = ferr
		}
	}
	s.ended = true
	if err == nil && s.inCluster {
		err = s.endCluster(emit)
	}
	if err == nil {
		err = s.flush(emit, s.pos)
	}
	if err != nil {
		s.err = err
		return err
	}
	s.hold = nil
	return nil
}

// truncated reports an element that the input ended inside of.
func (s *Splitter) truncated() error {
	inputEnd := s.offset(len(s.hold))
	if s.pos < len(s.hold) {
		off := s.offset(s.pos)
		b := s.hold[s.pos:]
		id, idLen, _ := readID(b)
		if idLen == 0 {
			return s.fail(off, "truncated element header (input ends %d bytes into it)", len(b))
		}
		size, sizeLen, _, _ := readSize(b[idLen:])
		if sizeLen == 0 {
			return s.fail(off, "truncated %s: input ends %d bytes into its header", ebml.Name(id), len(b))
		}
		return s.fail(off, "truncated %s: have %d of %d bytes", ebml.Name(id), len(b), uint64(idLen+sizeLen)+size)
	}
	if s.inCluster && s.clusterEnd >= 0 {
		return s.fail(inputEnd, "truncated Cluster: its size says it ends at offset %d, input ends", s.clusterEnd)
	}
	if s.inSegment && s.segEnd >= 0 {
		return s.fail(inputEnd, "truncated Segment: its size says it ends at offset %d, input ends", s.segEnd)
	}
	return nil
}

// offset turns an index in hold into a stream offset.
func (s *Splitter) offset(i int) int64 { return s.base + int64(i) }

func (s *Splitter) fail(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalid, fmt.Sprintf(format, args...), off)
}

// compact drops the emitted bytes from hold so that it only keeps what is
// held back (at most about maxPiece plus one element header).
func (s *Splitter) compact() {
	n := s.pieceStart
	if n == 0 {
		return
	}
	rest := copy(s.hold, s.hold[n:])
	s.hold = s.hold[:rest]
	s.base += int64(n)
	s.pieceStart = 0
	s.cut -= n
	s.pos -= n
	// A huge write (a whole file) must not pin a huge buffer for good.
	if cap(s.hold) > 4<<20 && cap(s.hold) > 4*rest {
		s.hold = append([]byte(nil), s.hold...)
	}
}

// flush emits hold[pieceStart:to] as the pending piece, if it is not empty.
// The bytes after it are gathered as a media piece unless the caller says
// otherwise.
func (s *Splitter) flush(emit func(Piece) error, to int) error {
	if to <= s.pieceStart {
		return nil
	}
	// bytes.Clone does not zero the new array before copying into it.
	data := bytes.Clone(s.hold[s.pieceStart:to])
	pc := Piece{Data: data[:len(data):len(data)]}
	switch s.kind {
	case pieceInit:
		pc.Init = true
		s.useInit()
	case pieceClusterFirst:
		pc.ClusterStart = true
		pc.Keyframe = s.key
	}
	s.pieceStart = to
	s.cut = max(s.cut, to)
	s.kind = pieceMedia
	return emit(pc)
}
