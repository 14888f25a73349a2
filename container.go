package relay

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/segrelay/relay/internal/mp4"
	"github.com/segrelay/relay/internal/webm"
)

// A Container is the file format a stream's bytes are in. It follows from
// the stream's MIME type (ContainerOf): a stream-mode publisher's MIME
// always names its container, since the hub chooses the splitter from it or
// replaces a MIME that names none with the splitter's (see Publisher.Write).
type Container string

// The containers the hub splits in stream mode and serves over plain HTTP.
const (
	ContainerWebM Container = "webm" // WebM or Matroska: video/webm, audio/webm, video/x-matroska; /{stream}/live.webm
	ContainerMP4  Container = "mp4"  // fragmented MP4 (ISO BMFF): video/mp4, audio/mp4; /{stream}/live.mp4
	// The zero Container: a MIME type that names neither (only a
	// segments-mode publisher can have one), or no MIME yet.
	ContainerUnknown Container = ""
)

// ContainerOf returns the container mime names: its type and subtype,
// parameters and case aside.
func ContainerOf(mime string) Container {
	base, _, _ := strings.Cut(mime, ";")
	switch strings.ToLower(strings.TrimSpace(base)) {
	case "video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska":
		return ContainerWebM
	case "video/mp4", "audio/mp4":
		return ContainerMP4
	}
	return ContainerUnknown
}

// Container returns the container of a KindStart's MIME (ContainerOf), and
// ContainerUnknown for the other kinds, which carry no MIME.
func (s Segment) Container() Container { return ContainerOf(s.MIME) }

// name is how errors and the README write the container.
func (c Container) name() string {
	switch c {
	case ContainerWebM:
		return "WebM"
	case ContainerMP4:
		return "MP4"
	}
	return "media"
}

// ErrBadMP4: a publisher's MP4 stream does not parse. (close code 1007)
var ErrBadMP4 = mp4.ErrInvalid

// splitter is what a stream-mode Publisher cuts its bytes with: package
// webm's or package mp4's splitter, behind sniff until the first bytes say
// which. Each is made with the function it hands its segments to. See
// either package for the contract.
type splitter interface {
	Append(b []byte) error
	Flush() error
	End() error
	HeldBytes() int
	Pending() int
	MIME() string
	container() Container
}

type webmSplitter struct {
	s    *webm.Splitter
	emit func(webm.Piece) error
}

func newWebMSplitter(max int, emit func(*Segment) error) *webmSplitter {
	return &webmSplitter{s: webm.NewSplitter(max), emit: func(pc webm.Piece) error { return emit(pieceSegment(pc)) }}
}

func (w *webmSplitter) Append(b []byte) error { return w.s.Append(b, w.emit) }
func (w *webmSplitter) Flush() error          { return w.s.Flush(w.emit) }
func (w *webmSplitter) End() error            { return w.s.End(w.emit) }
func (w *webmSplitter) HeldBytes() int        { return w.s.HeldBytes() }
func (w *webmSplitter) Pending() int          { return w.s.Pending() }
func (w *webmSplitter) MIME() string          { return w.s.MIME() }
func (w *webmSplitter) container() Container  { return ContainerWebM }

type mp4Splitter struct {
	s    *mp4.Splitter
	emit func(mp4.Piece) error
}

func newMP4Splitter(max int, emit func(*Segment) error) *mp4Splitter {
	return &mp4Splitter{s: mp4.NewSplitter(max), emit: func(pc mp4.Piece) error {
		if pc.Init {
			return emit(&Segment{Kind: KindInit, Data: pc.Data})
		}
		return emit(&Segment{Kind: KindMedia, Keyframe: pc.Keyframe, Data: pc.Data})
	}}
}

func (m *mp4Splitter) Append(b []byte) error { return m.s.Append(b, m.emit) }
func (m *mp4Splitter) Flush() error          { return m.s.Flush(m.emit) }
func (m *mp4Splitter) End() error            { return m.s.End(m.emit) }
func (m *mp4Splitter) HeldBytes() int        { return m.s.HeldBytes() }
func (m *mp4Splitter) Pending() int          { return m.s.Pending() }
func (m *mp4Splitter) MIME() string          { return m.s.MIME() }
func (m *mp4Splitter) container() Container  { return ContainerMP4 }

// sniffBytes is how much of a stream sniff reads before it decides: an ISO
// BMFF box header (size, type).
const sniffBytes = 8

// ebmlMagic starts every WebM and Matroska file: the EBML header's ID.
var ebmlMagic = []byte{0x1A, 0x45, 0xDF, 0xA3}

// bmffStart lists the box types an ISO BMFF file or stream can start with.
var bmffStart = []string{"ftyp", "styp", "moov", "free", "skip", "wide", "uuid", "pdin", "meta", "moof"}

// sniffContainer says which container a stream starting with b is in, or
// that b cannot tell yet (ok false: fewer than sniffBytes bytes that could
// still start either).
func sniffContainer(b []byte) (c Container, ok bool) {
	if len(b) >= len(ebmlMagic) && bytes.Equal(b[:len(ebmlMagic)], ebmlMagic) {
		return ContainerWebM, true
	}
	if len(b) < sniffBytes {
		if bytes.HasPrefix(ebmlMagic, b) {
			return ContainerUnknown, false
		}
		// An ISO BMFF box's size comes first: any 4 bytes.
		if len(b) <= 4 {
			return ContainerUnknown, false
		}
		for _, t := range bmffStart {
			if strings.HasPrefix(t, string(b[4:])) {
				return ContainerUnknown, false
			}
		}
		return ContainerUnknown, true
	}
	for _, t := range bmffStart {
		if string(b[4:8]) == t {
			return ContainerMP4, true
		}
	}
	return ContainerUnknown, true
}

// sniff is the splitter of a stream whose container is not known yet: it
// holds the first bytes until they say which container the stream is in,
// then hands them and all that follows to that container's splitter. When
// the publisher's start named a container (declared), the bytes must agree
// with it.
type sniff struct {
	max      int
	declared Container
	emit     func(*Segment) error
	head     []byte
	inner    splitter
}

// newSplitter returns the splitter of a stream-mode session whose start
// gave mime ("" for none).
func newSplitter(mime string, max int, emit func(*Segment) error) splitter {
	return &sniff{max: max, declared: ContainerOf(mime), emit: emit}
}

func (s *sniff) Append(b []byte) error {
	if s.inner != nil {
		return s.inner.Append(b)
	}
	take := min(len(b), sniffBytes-len(s.head))
	s.head = append(s.head, b[:take]...)
	c, ok := sniffContainer(s.head)
	if !ok {
		return nil
	}
	if err := s.choose(c); err != nil {
		return err
	}
	head := s.head
	s.head = nil
	if err := s.inner.Append(head); err != nil {
		return err
	}
	return s.inner.Append(b[take:])
}

// choose makes the splitter of container c, which the first bytes say.
// Bytes that are neither container go to the declared one's splitter, whose
// error says what is wrong with them for that container.
func (s *sniff) choose(c Container) error {
	if c == ContainerUnknown {
		c = s.declared
	}
	switch {
	case c == ContainerUnknown:
		return fmt.Errorf("%w: the stream is neither WebM nor MP4: it starts with % x, not WebM's EBML header (1a 45 df a3) nor an ISO BMFF box (ftyp, styp, moov, moof, ...)", ErrBadData, s.head)
	case s.declared != ContainerUnknown && c != s.declared:
		return fmt.Errorf("%w: the start's mime says %s, the stream's bytes are %s", ErrBadData, s.declared.name(), c.name())
	case c == ContainerMP4:
		s.inner = newMP4Splitter(s.max, s.emit)
	default:
		s.inner = newWebMSplitter(s.max, s.emit)
	}
	return nil
}

func (s *sniff) Flush() error {
	if s.inner == nil {
		return nil
	}
	return s.inner.Flush()
}

// End drops a head too short to tell, as the splitters drop an element cut
// short at the end.
func (s *sniff) End() error {
	if s.inner == nil {
		return nil
	}
	return s.inner.End()
}

func (s *sniff) HeldBytes() int {
	if s.inner == nil {
		return cap(s.head)
	}
	return s.inner.HeldBytes()
}

func (s *sniff) Pending() int {
	if s.inner == nil {
		return 0
	}
	return s.inner.Pending()
}

func (s *sniff) MIME() string {
	if s.inner == nil {
		return ""
	}
	return s.inner.MIME()
}

func (s *sniff) container() Container {
	if s.inner == nil {
		return s.declared
	}
	return s.inner.container()
}
