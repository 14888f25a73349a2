// Package mp4 cuts a fragmented MP4 (ISO BMFF, ISO/IEC 14496-12) byte stream,
// as MediaRecorder, Safari or ffmpeg's -movflags frag_keyframe+empty_moov
// write it, into pieces a relay can hand to viewers, with the same contract
// as package webm: one init piece (everything before the first moof: ftyp,
// moov and whatever sits beside them), then media pieces that always end on
// box boundaries, each fragment (moof + mdat, with any styp, sidx, prft or
// emsg before its moof) starting a new piece flagged with whether the first
// sample of its video track is a sync sample. A moov after fragments starts a
// new init (the recorder restarted).
//
// The splitter only parses box headers at the top level. Bodies are skipped,
// except for the moov (which track is video, the trex defaults, the codecs)
// and each moof (the video track's first sample flags), both held whole.
//
// Files: splitter.go holds the state and the Write/End cycle, boxes.go the
// box header and the top-level loop, moov.go the track list and the MIME
// type, moof.go the keyframe rule.
package mp4

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/segrelay/relay/internal/webm"
)

// The splitter's errors, as package webm's (wrapped with what and the
// stream offset): the relay package can export ErrInvalid beside
// ErrBadWebM. ErrTooBig is webm's own value, so that the relay's
// ErrSegmentTooBig matches it with errors.Is whichever container it is.
var (
	// ErrInvalid: the stream does not parse.
	ErrInvalid = errors.New("relay: bad MP4")
	// ErrTooBig: something that must be held whole is over the limit.
	ErrTooBig = webm.ErrTooBig
)

// Piece is one output unit of the splitter. Data is freshly allocated for
// this piece and never touched by the splitter again.
type Piece struct {
	Init          bool // an init segment: every top-level box before the first moof
	FragmentStart bool // media piece that begins a fragment (its styp/sidx/prft/emsg, or its moof)
	Keyframe      bool // FragmentStart && the video track's first sample is a sync sample (always, without video)
	Data          []byte
}

// pieceKind says what the piece being gathered will be emitted as.
type pieceKind uint8

const (
	pieceMedia         pieceKind = iota // the rest of a fragment (mdat, ...)
	pieceInit                           // the init segment being gathered
	pieceFragmentFirst                  // the first piece of a fragment
)

// Splitter is the state of one publisher's stream. It is not safe for
// concurrent use.
type Splitter struct {
	maxPiece int
	err      error // sticky: once set, every call returns it
	ended    bool

	// hold has the input that was not emitted yet; hold[0] is at stream
	// offset base. hold[:pieceStart] was emitted (dropped before a call
	// returns) and pos is where parsing goes on: the end of the last whole
	// top-level box, where the pending piece may end (unlike WebM's
	// Clusters, no box is entered before it is whole).
	hold       []byte
	base       int64
	pieceStart int
	pos        int

	kind     pieceKind // what hold[pieceStart:] is gathered for
	haveMoof bool      // kind == pieceFragmentFirst: its moof was read (key is known)
	key      bool      // ... and its keyframe status

	started  bool // a box was accepted as the start of an MP4 stream
	haveMoov bool // the init being gathered has its moov

	next     initInfo // read from the init being gathered
	cur      initInfo // of the last emitted init
	mimeType string   // of the last emitted init
}

// NewSplitter returns a splitter; maxPiece bounds the bytes it may hold back
// or put in one piece (<= 0 means 16 MiB, the hub's default).
func NewSplitter(maxPiece int) *Splitter {
	if maxPiece <= 0 {
		maxPiece = 16 << 20
	}
	return &Splitter{maxPiece: maxPiece, kind: pieceInit}
}

// HeldBytes is the memory the splitter keeps between writes.
func (s *Splitter) HeldBytes() int { return cap(s.hold) }

// MIME describes the latest init emitted, e.g.
// `video/mp4; codecs="avc1.64001f,mp4a.40.2"`; "" before any.
func (s *Splitter) MIME() string { return s.mimeType }

// Write consumes p (any size, any boundary) and calls emit for every piece
// that became complete, in order. It keeps no reference to p. At the end of
// the call the whole boxes gathered for the current fragment are emitted;
// only the init and a fragment's start (until its moof says whether it is a
// keyframe) are held back longer. Write is Append followed by Flush.
//
// Errors: emit's error as is; ErrInvalid (wrapped, with what and the stream
// offset) when the stream does not parse; ErrTooBig when something that must
// be held whole (a box, the init, a fragment's start up to its moof) is over
// maxPiece. After an error every call returns it.
func (s *Splitter) Write(p []byte, emit func(Piece) error) error {
	if err := s.Append(p, emit); err != nil {
		return err
	}
	return s.Flush(emit)
}

// Append is Write without its flush: the whole boxes gathered for the
// current fragment stay held back (Pending counts them) until a Flush, the
// next fragment, or maxPiece.
func (s *Splitter) Append(p []byte, emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return errors.New("relay: MP4 splitter: write after end")
	}
	s.hold = append(s.hold, p...)
	if err := s.parse(emit); err != nil {
		s.err = err
		return err
	}
	s.compact()
	return nil
}

// Flush emits the whole boxes held back for the current fragment, as Write
// does at its end.
func (s *Splitter) Flush(emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.Pending() == 0 {
		return nil
	}
	if err := s.flush(emit, s.pos); err != nil {
		s.err = err
		return err
	}
	s.compact()
	return nil
}

// Pending is how many bytes Flush would emit now: whole boxes held back only
// because no Flush came yet.
func (s *Splitter) Pending() int {
	if s.err != nil || s.ended || s.kind == pieceInit || (s.kind == pieceFragmentFirst && !s.haveMoof) {
		return 0
	}
	return s.pos - s.pieceStart
}

// End says the input is over. A box of size 0 (to the end of the file) ends
// here. What is held back is emitted when it is made of whole boxes; a box
// cut short is an error, after the whole boxes before it went out (as Flush
// would send them).
func (s *Splitter) End(emit func(Piece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return nil
	}
	s.ended = true
	err := s.parse(emit) // a box of size 0 is whole now
	if err == nil {
		err = s.truncated()
	}
	// The whole boxes before a cut-short one still go out, as Flush would
	// send them (not an init, nor a fragment's start without its moof).
	flushable := s.kind == pieceMedia || s.kind == pieceFragmentFirst && s.haveMoof
	if err == nil || flushable && errors.Is(err, ErrInvalid) {
		if ferr := s.flush(emit, s.pos); ferr != nil {
			err = ferr
		}
	}
	if err != nil {
		s.err = err
		return err
	}
	s.hold = nil
	return nil
}

// truncated reports a box that the input ended inside of.
func (s *Splitter) truncated() error {
	if s.pos == len(s.hold) {
		return nil
	}
	b := s.hold[s.pos:]
	off := s.offset(s.pos)
	h, ok, err := readHeader(b, off)
	if err != nil {
		return err
	}
	if !ok {
		return s.fail(off, "truncated box header (input ends %d bytes into it)", len(b))
	}
	return s.fail(off, "truncated %s box: have %d of %d bytes", h.typ, len(b), h.size)
}

// offset turns an index in hold into a stream offset.
func (s *Splitter) offset(i int) int64 { return s.base + int64(i) }

func (s *Splitter) fail(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalid, fmt.Sprintf(format, args...), off)
}

func (s *Splitter) tooBig(off int64, what string, n uint64) error {
	return fmt.Errorf("%w: %s of %d bytes is larger than the limit of %d at offset %d", ErrTooBig, what, n, s.maxPiece, off)
}

// compact drops the emitted bytes from hold so that it only keeps what is
// held back (at most maxPiece plus one box header).
func (s *Splitter) compact() {
	n := s.pieceStart
	if n == 0 {
		return
	}
	rest := copy(s.hold, s.hold[n:])
	s.hold = s.hold[:rest]
	s.base += int64(n)
	s.pieceStart = 0
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
	data := bytes.Clone(s.hold[s.pieceStart:to])
	pc := Piece{Data: data[:len(data):len(data)]}
	switch s.kind {
	case pieceInit:
		pc.Init = true
		s.cur = s.next
		s.next = initInfo{}
		s.mimeType = s.cur.mime()
	case pieceFragmentFirst:
		pc.FragmentStart = true
		pc.Keyframe = s.key
	}
	s.pieceStart = to
	s.kind = pieceMedia
	return emit(pc)
}
