package relay

// The WebM splitter cuts the raw byte stream of a browser's MediaRecorder (or a
// WebM/Matroska file) into pieces the hub can hand to viewers: one init piece
// (EBML header, Segment header and everything before the first Cluster), then
// media pieces that always end on element boundaries, each Cluster starting a
// new piece flagged with whether it starts at a video keyframe.
//
// It only parses element headers. Bodies are skipped, except for the few small
// elements it needs to read: the EBML header (DocType), Tracks (which track is
// video, codecs), the first video block's header in each Cluster, and that
// block's BlockGroup when frames are written as BlockGroups.
//
// What MediaRecorder does that shapes this code (see shared/browser-facts.md):
// message boundaries are never element boundaries (each message after the first
// starts 1 byte into an element, the first message can be 1 byte), Segment and
// Cluster have unknown sizes, and with audio most Clusters start with an Opus
// block, so only the first *video* block tells whether a Cluster starts at a
// keyframe.

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Element IDs, written with their length marker as they appear in the stream.
const (
	idEBML           = 0x1A45DFA3
	idDocType        = 0x4282
	idSegment        = 0x18538067
	idSeekHead       = 0x114D9B74
	idInfo           = 0x1549A966
	idTracks         = 0x1654AE6B
	idTrackEntry     = 0xAE
	idTrackNumber    = 0xD7
	idTrackType      = 0x83
	idCodecID        = 0x86
	idCues           = 0x1C53BB6B
	idTags           = 0x1254C367
	idChapters       = 0x1043A770
	idAttachments    = 0x1941A469
	idCluster        = 0x1F43B675
	idTimecode       = 0xE7
	idSimpleBlock    = 0xA3
	idBlockGroup     = 0xA0
	idBlock          = 0xA1
	idReferenceBlock = 0xFB
	idVoid           = 0xEC
	idCRC32          = 0xBF
)

// Matroska TrackType values.
const (
	trackTypeVideo = 1
	trackTypeAudio = 2
)

// webmPiece is one output unit of the splitter. data is freshly allocated for
// this piece and never touched by the splitter again (the hub shares it,
// immutable, with every subscriber).
type webmPiece struct {
	init         bool // an init segment: EBML header + Segment header + every level-1 element before the first Cluster
	clusterStart bool // media piece that begins with a Cluster's ID
	keyframe     bool // clusterStart && the Cluster's first video block is a keyframe
	data         []byte
}

// pieceKind says what the piece being gathered will be emitted as.
type pieceKind uint8

const (
	pieceMedia        pieceKind = iota // continuation of a Cluster, or level-1 elements after one (Cues, ...)
	pieceInit                          // the init segment of the current EBML document
	pieceClusterFirst                  // the first piece of a Cluster
)

// webmTrack is what the splitter keeps of a TrackEntry.
type webmTrack struct {
	number uint64
	kind   uint64 // TrackType; 0 if absent
	codec  string // CodecID
}

func (t webmTrack) isVideo() bool {
	return t.kind == trackTypeVideo || (t.kind == 0 && strings.HasPrefix(t.codec, "V_"))
}

func (t webmTrack) isAudio() bool {
	return t.kind == trackTypeAudio || (t.kind == 0 && strings.HasPrefix(t.codec, "A_"))
}

// webmInit is what the splitter reads from an init segment.
type webmInit struct {
	docType string
	tracks  []webmTrack
}

// webmSplitter is the state of one publisher's stream. It is not safe for
// concurrent use (the hub calls it under the publisher's lock).
type webmSplitter struct {
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

	next        webmInit // read from the init being gathered
	videoTracks []uint64 // video track numbers of the last emitted init
	mimeType    string   // of the last emitted init
}

// newWebMSplitter returns a splitter; maxPiece bounds the bytes it may hold
// back or put in one piece (the hub passes its max segment size; <= 0 means
// the hub's default, 16 MiB).
func newWebMSplitter(maxPiece int) *webmSplitter {
	if maxPiece <= 0 {
		maxPiece = 16 << 20
	}
	return &webmSplitter{maxPiece: maxPiece, segEnd: -1, clusterEnd: -1}
}

// mime describes the latest init emitted, e.g. "video/webm;codecs=vp9,opus";
// "" before any.
func (s *webmSplitter) mime() string { return s.mimeType }

// write consumes p (any size, any boundary) and calls emit for every piece
// that became complete, in order. It keeps no reference to p. At the end of
// the call the whole elements gathered for the current Cluster are emitted,
// so viewers get media as soon as it is whole; only the init and a Cluster's
// first piece (until its first video block says whether it is a keyframe) are
// held back longer.
//
// Errors: emit's error as is; ErrBadWebM (wrapped, with what and the stream
// offset) when the stream does not parse; ErrSegmentTooBig when something
// that must be held whole (an element, the init, a Cluster's start before its
// first video block) is over maxPiece. After an error every call returns it.
func (s *webmSplitter) write(p []byte, emit func(webmPiece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return errors.New("relay: WebM splitter: write after end")
	}
	s.hold = append(s.hold, p...)
	err := s.parse(emit)
	if err == nil && s.kind != pieceInit && (s.kind != pieceClusterFirst || s.keyKnown) {
		err = s.flush(emit, s.cut)
	}
	if err != nil {
		s.err = err
		return err
	}
	s.compact()
	return nil
}

// end says the input is over. It emits what is held back when it is made of
// whole elements; an element cut short is an error.
func (s *webmSplitter) end(emit func(webmPiece) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return nil
	}
	s.ended = true
	err := s.truncated()
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
func (s *webmSplitter) truncated() error {
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
			return s.fail(off, "truncated %s: input ends %d bytes into its header", elementName(id), len(b))
		}
		return s.fail(off, "truncated %s: have %d of %d bytes", elementName(id), len(b), uint64(idLen+sizeLen)+size)
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
func (s *webmSplitter) offset(i int) int64 { return s.base + int64(i) }

func (s *webmSplitter) fail(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrBadWebM, fmt.Sprintf(format, args...), off)
}

// compact drops the emitted bytes from hold so that it only keeps what is
// held back (at most about maxPiece plus one element header).
func (s *webmSplitter) compact() {
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
func (s *webmSplitter) flush(emit func(webmPiece) error, to int) error {
	if to <= s.pieceStart {
		return nil
	}
	// bytes.Clone does not zero the new array before copying into it.
	data := bytes.Clone(s.hold[s.pieceStart:to])
	pc := webmPiece{data: data[:len(data):len(data)]}
	switch s.kind {
	case pieceInit:
		pc.init = true
		s.useInit()
	case pieceClusterFirst:
		pc.clusterStart = true
		pc.keyframe = s.key
	}
	s.pieceStart = to
	s.cut = max(s.cut, to)
	s.kind = pieceMedia
	return emit(pc)
}

// useInit makes the init being gathered the one later Clusters are judged by.
func (s *webmSplitter) useInit() {
	s.videoTracks = s.videoTracks[:0]
	for _, t := range s.next.tracks {
		if t.isVideo() {
			s.videoTracks = append(s.videoTracks, t.number)
		}
	}
	s.mimeType = webmMIME(s.next)
}

func (s *webmSplitter) isVideoTrack(n uint64) bool {
	for _, v := range s.videoTracks {
		if v == n {
			return true
		}
	}
	return false
}

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
func (s *webmSplitter) parse(emit func(webmPiece) error) error {
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
		if !s.started && id != idEBML {
			if id == idCluster {
				return s.fail(off, "Cluster before any init segment")
			}
			return s.fail(off, "stream does not start with an EBML header (found %s)", elementName(id))
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
		if id == idCluster && s.kind == pieceInit && s.inSegment && !s.inCluster {
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
		// not: ErrSegmentTooBig, as the package documents it (a frame
		// bigger than the hub's segment limit).
		if e.id != idSegment && e.id != idCluster && e.total() > uint64(s.maxPiece) {
			return fmt.Errorf("%w: %s of %d bytes is larger than the limit of %d at offset %d",
				ErrSegmentTooBig, elementName(e.id), e.total(), s.maxPiece, e.off)
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
func (s *webmSplitter) checkPlace(e element) error {
	switch {
	case !s.inSegment:
		switch {
		case e.id == idCluster:
			return s.fail(e.off, "Cluster outside a Segment")
		case e.id == idSegment && s.haveSegment:
			return s.fail(e.off, "second Segment in one EBML document")
		case e.id != idEBML && e.id != idSegment && e.id != idVoid:
			return s.fail(e.off, "unexpected %s at top level", elementName(e.id))
		}
	case !s.inCluster:
		switch {
		case e.id == idSegment:
			return s.fail(e.off, "Segment inside a Segment")
		case e.id == idEBML && s.segEnd >= 0:
			return s.fail(e.off, "EBML header inside a Segment of known size")
		}
	case endsUnknownCluster(e.id): // here only in a Cluster of known size
		return s.fail(e.off, "%s inside a Cluster", elementName(e.id))
	}
	return nil
}

// checkParent rejects an unknown size where it is not allowed and an element
// that does not fit in its parent's known size.
func (s *webmSplitter) checkParent(e element) error {
	if e.unknown {
		// checkPlace let Segment and Cluster only where they may be.
		if e.id != idSegment && e.id != idCluster {
			return s.fail(e.off, "unknown size is not allowed for %s", elementName(e.id))
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
		return s.fail(e.off, "%s of %d bytes overruns its parent by %d bytes", elementName(e.id), e.total(), e.total()-uint64(end-e.off))
	}
	return nil
}

// topLevel handles an element outside any Segment. It reports true when it
// needs more input.
func (s *webmSplitter) topLevel(emit func(webmPiece) error, e element) (bool, error) {
	switch e.id {
	case idEBML:
		return s.ebmlHeader(emit, e)
	case idSegment:
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
func (s *webmSplitter) ebmlHeader(emit func(webmPiece) error, e element) (bool, error) {
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
	s.next = webmInit{docType: docType}
	s.pos = end
	s.cut = end
	return false, nil
}

// segmentLevel handles a child of the Segment (level 1).
func (s *webmSplitter) segmentLevel(emit func(webmPiece) error, e element) (bool, error) {
	switch e.id {
	case idEBML:
		s.inSegment = false // a Segment of unknown size ends at the next stream
		s.cut = s.pos
		return s.topLevel(emit, e)
	case idCluster:
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
	if e.id == idTracks && s.kind == pieceInit {
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
func (s *webmSplitter) clusterLevel(emit func(webmPiece) error, e element) (bool, error) {
	if s.kind == pieceClusterFirst && !s.keyKnown && e.id == idSimpleBlock {
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
	if e.id == idBlockGroup && s.kind == pieceClusterFirst && !s.keyKnown {
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
func (s *webmSplitter) leaf(emit func(webmPiece) error, e element) (bool, error) {
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

func (s *webmSplitter) tooBig(off int64, what string) error {
	return fmt.Errorf("%w: %s held back is more than %d bytes at offset %d", ErrSegmentTooBig, what, s.maxPiece, off)
}

// endCluster ends the current Cluster at pos and emits what is left of it.
func (s *webmSplitter) endCluster(emit func(webmPiece) error) error {
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
	case idCluster, idCues, idTags, idSeekHead, idInfo, idTracks, idChapters, idAttachments, idEBML, idSegment:
		return true
	}
	return false
}

// readID reads an element ID. n == 0 with bad == "" means b is too short.
func readID(b []byte) (id uint32, n int, bad string) {
	if len(b) == 0 {
		return 0, 0, ""
	}
	if b[0] == 0 {
		return 0, 0, "invalid element ID"
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if n > 4 {
		return 0, 0, "element ID longer than 4 bytes"
	}
	if len(b) < n {
		return 0, 0, ""
	}
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	// IDs whose value bits are all 0 or all 1 are reserved.
	if v := id & (1<<(7*n) - 1); v == 0 || v == 1<<(7*n)-1 {
		return 0, 0, "invalid element ID"
	}
	return id, n, ""
}

// readSize reads an element data size. n == 0 with bad == "" means b is too
// short. unknown is set for the all-ones value of any length.
func readSize(b []byte) (size uint64, n int, unknown bool, bad string) {
	if len(b) == 0 {
		return 0, 0, false, ""
	}
	if b[0] == 0 {
		return 0, 0, false, "invalid element size"
	}
	v, n, _ := readVint(b)
	if n == 0 {
		return 0, 0, false, ""
	}
	return v, n, v == 1<<(7*n)-1, ""
}

// readVint reads a variable size integer without its length marker (sizes,
// track numbers). n == 0 means b is too short; bad means a 0x00 first byte.
func readVint(b []byte) (v uint64, n int, bad bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] == 0 {
		return 0, 0, true
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0] & (0xFF >> n))
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, false
}

// children calls fn for each child of a master element's body, which starts
// at stream offset off, with the child's data and its offset. It is used for
// the few small masters read whole.
func (s *webmSplitter) children(body []byte, off int64, fn func(id uint32, data []byte, off int64) error) error {
	for len(body) > 0 {
		id, idLen, bad := readID(body)
		if bad == "" && idLen == 0 {
			bad = "truncated element ID"
		}
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		size, sizeLen, unknown, bad := readSize(body[idLen:])
		if bad == "" && sizeLen == 0 {
			bad = "truncated element size"
		}
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		if unknown {
			return s.fail(off, "unknown size is not allowed for %s", elementName(id))
		}
		hdr := idLen + sizeLen
		if size > uint64(len(body)-hdr) {
			return s.fail(off, "%s of %d bytes overruns its parent by %d bytes", elementName(id), uint64(hdr)+size, size-uint64(len(body)-hdr))
		}
		end := hdr + int(size)
		if err := fn(id, body[hdr:end], off+int64(hdr)); err != nil {
			return err
		}
		body = body[end:]
		off += int64(end)
	}
	return nil
}

// readEBMLHeader returns the DocType, which must be webm or matroska.
func (s *webmSplitter) readEBMLHeader(body []byte, off int64) (string, error) {
	docType := "matroska" // its default in Matroska
	err := s.children(body, off, func(id uint32, data []byte, _ int64) error {
		if id == idDocType {
			docType = string(bytes.TrimRight(data, "\x00"))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if docType != "webm" && docType != "matroska" {
		return "", s.fail(off, "unsupported DocType %q", docType)
	}
	return docType, nil
}

// readTracks returns the TrackEntries of a Tracks body, in order.
func (s *webmSplitter) readTracks(body []byte, off int64) ([]webmTrack, error) {
	var tracks []webmTrack
	err := s.children(body, off, func(id uint32, data []byte, off int64) error {
		if id != idTrackEntry {
			return nil
		}
		var t webmTrack
		err := s.children(data, off, func(id uint32, data []byte, off int64) error {
			switch id {
			case idTrackNumber:
				t.number = readUint(data)
			case idTrackType:
				t.kind = readUint(data)
			case idCodecID:
				t.codec = string(bytes.TrimRight(data, "\x00"))
			}
			return nil
		})
		tracks = append(tracks, t)
		return err
	})
	return tracks, err
}

// readBlockGroup returns the track of a BlockGroup's Block and whether it has
// a ReferenceBlock (then it is not a keyframe).
func (s *webmSplitter) readBlockGroup(body []byte, off int64) (track uint64, hasBlock, hasRef bool, err error) {
	err = s.children(body, off, func(id uint32, data []byte, off int64) error {
		switch id {
		case idBlock:
			t, n, bad := readVint(data)
			if bad || n == 0 {
				return s.fail(off, "invalid track number in Block")
			}
			track, hasBlock = t, true
		case idReferenceBlock:
			hasRef = true
		}
		return nil
	})
	return track, hasBlock, hasRef, err
}

// readUint reads a big-endian unsigned integer element (at most 8 bytes are
// meaningful).
func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// webmMIME describes an init as a MIME type with codecs, video first.
func webmMIME(in webmInit) string {
	var video, audio []string
	for _, t := range in.tracks {
		switch {
		case t.isVideo():
			video = appendCodec(video, t.codec)
		case t.isAudio():
			audio = appendCodec(audio, t.codec)
		}
	}
	var m string
	switch {
	case in.docType == "matroska":
		m = "video/x-matroska"
	case len(video) == 0 && len(audio) > 0:
		m = "audio/webm"
	default:
		m = "video/webm"
	}
	codecs := append(video, audio...)
	if len(codecs) == 0 {
		return m
	}
	return m + ";codecs=" + strings.Join(codecs, ",")
}

func appendCodec(list []string, codecID string) []string {
	c := codecName(codecID)
	for _, have := range list {
		if have == c {
			return list
		}
	}
	return append(list, c)
}

// codecName maps a Matroska CodecID to its name in a MIME codecs parameter.
func codecName(codecID string) string {
	switch codecID {
	case "V_VP8":
		return "vp8"
	case "V_VP9":
		return "vp9"
	case "V_AV1":
		return "av1"
	case "V_MPEG4/ISO/AVC":
		return "avc1"
	case "V_MPEGH/ISO/HEVC":
		return "hev1"
	case "A_OPUS":
		return "opus"
	case "A_VORBIS":
		return "vorbis"
	case "A_AAC":
		return "mp4a.40.2"
	}
	c := codecID
	if len(c) > 2 && c[1] == '_' {
		c = c[2:]
	}
	return strings.ToLower(c)
}

// elementName names an element for error messages.
func elementName(id uint32) string {
	switch id {
	case idEBML:
		return "EBML header"
	case idSegment:
		return "Segment"
	case idSeekHead:
		return "SeekHead"
	case idInfo:
		return "Info"
	case idTracks:
		return "Tracks"
	case idTrackEntry:
		return "TrackEntry"
	case idTrackNumber:
		return "TrackNumber"
	case idDocType:
		return "DocType"
	case idCues:
		return "Cues"
	case idTags:
		return "Tags"
	case idChapters:
		return "Chapters"
	case idAttachments:
		return "Attachments"
	case idCluster:
		return "Cluster"
	case idTimecode:
		return "Timecode"
	case idSimpleBlock:
		return "SimpleBlock"
	case idBlockGroup:
		return "BlockGroup"
	case idBlock:
		return "Block"
	case idReferenceBlock:
		return "ReferenceBlock"
	case idVoid:
		return "Void"
	case idCRC32:
		return "CRC-32"
	}
	return fmt.Sprintf("element 0x%X", id)
}
