package webm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/segrelay/relay/internal/ebml"
)

// The file writer: it turns the init and media pieces of one live WebM
// stream into a file a player can seek in. A live stream has no sizes, no
// Duration and no Cues; the writer gives the file all three by writing its
// own header with room for them and filling it in when the stream ends:
//
//	EBML header            copied from the init
//	Segment                size patched at Close (unknown until then)
//	  Void                 reserved; a SeekHead to Info, Tracks and Cues at Close
//	  Info                 the init's, Duration dropped, a Duration slot appended
//	  Tracks               copied
//	  Cluster...           header rewritten with a size patched at its end,
//	                       children copied (but Position and PrevSize)
//	  Cues                 written at Close: one CuePoint per keyframe Cluster
//
// Everything else of the level-1 elements (SeekHead, Void, Cues, Tags of a
// file that was streamed) is dropped: their positions and durations were
// the source's. Until Close the file is a valid live WebM (unknown sizes),
// so a crash leaves a file that plays from start to end without seeking.

// A File is where a FileWriter writes: an *os.File.
type File interface {
	io.WriterAt
	Truncate(size int64) error
}

// MaxCues bounds the CuePoints a FileWriter keeps (24 bytes each, 96 KiB in
// all). A longer recording keeps every other one and from then on adds one
// for every second keyframe Cluster, and so on: seeking gets coarser, the
// memory does not grow.
const MaxCues = 4096

// fileBufSize is the write buffer: what the writer gathers before a write.
const fileBufSize = 64 << 10

// seekHeadRoom is the Void reserved for the SeekHead written at Close: three
// Seek entries of 21 bytes with 8-byte positions, the SeekHead's own 5
// bytes, and room for a Void after it.
const seekHeadRoom = 96

// Levels of the media parser.
const (
	levelSegment = iota // between Clusters
	levelCluster
	levelGroup // in a BlockGroup
)

// A FileWriter writes one WebM file from a live stream's pieces. It is not
// safe for concurrent use.
type FileWriter struct {
	f   File
	err error // sticky

	buf     []byte // output not written yet, at file offset flushed
	flushed int64
	end     int64 // end of the output: flushed + len(buf), or less after a rewind

	segData    int64 // file offset of the Segment's data: positions count from it
	infoPos    int64 // Segment positions of Info and Tracks, for the SeekHead
	tracksPos  int64
	durationAt int64    // file offset of the Duration float's 8 bytes
	scale      int64    // TimecodeScale, in ns
	pieces     uint64   // media pieces written
	clusters   int      // Clusters begun
	video      []uint64 // the video tracks' numbers

	// The media parser: input is parsed at the element level, and bodies are
	// copied (or skipped) as they stream through.
	in         int64  // input bytes consumed since the init
	pend       []byte // input of an element whose header is not all there yet
	left       int64  // bytes of the current element's body still to copy or skip
	copying    bool   // ... copy them (else skip)
	level      int
	clusterEnd int64 // input offset where a Cluster of known size ends; -1: unknown
	groupEnd   int64 // input offset where the BlockGroup ends
	clusterAt  int64 // file offset of the output Cluster's ID
	childAt    int64 // file offset of the Cluster child being copied
	clusterTC  uint64
	keyPiece   bool // the piece being fed is a keyframe one, and no element of it was handled yet
	wantCue    bool // the Cluster is a keyframe one: its first video block makes a CuePoint
	cueChild   int64

	// What Close needs: the last block times, the CuePoints.
	lastTime  []trackTime
	cues      []cuePoint
	cueStride int // add a CuePoint every cueStride keyframe Clusters
	cueSkip   int
}

// trackTime is a track's last two block times: the last block's end is
// guessed from them.
type trackTime struct {
	track      uint64
	last, prev int64 // block times in TimecodeScale units; prev < 0: none
}

// cuePoint is one CuePoint of the Cues written at Close.
type cuePoint struct {
	time, pos uint64 // CueTime, CueClusterPosition
	track     uint64
}

// NewFileWriter starts a file in f (written from offset 0) for a stream
// whose init segment is init: EBML header, Segment header, and the level-1
// elements before the first Cluster, at least Tracks.
func NewFileWriter(f File, init []byte) (*FileWriter, error) {
	w := &FileWriter{f: f, clusterEnd: -1, scale: 1e6, cueStride: 1, buf: make([]byte, 0, fileBufSize)}
	if err := w.writeInit(init); err != nil {
		return nil, err
	}
	return w, w.flush()
}

func badInit(format string, args ...any) error {
	return fmt.Errorf("%w: init segment: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// writeInit writes the file's header from the stream's init.
func (w *FileWriter) writeInit(init []byte) error {
	var s Splitter // for its readers of small masters
	id, hdr, size, unknown, err := elementAt(init)
	if err != nil || id != ebml.IDEBML || unknown || size > uint64(len(init)-hdr) {
		return badInit("no EBML header")
	}
	ebmlEnd := hdr + int(size)
	if _, err := s.readEBMLHeader(init[hdr:ebmlEnd], int64(hdr)); err != nil {
		return err
	}
	rest := init[ebmlEnd:]
	id, hdr, size, unknown, err = elementAt(rest)
	if err != nil || id != ebml.IDSegment {
		return badInit("no Segment after the EBML header")
	}
	rest = rest[hdr:]
	if !unknown && size < uint64(len(rest)) {
		rest = rest[:size]
	}
	var info, tracks []byte
	err = s.children(rest, int64(len(init)-len(rest)), func(id uint32, data []byte, _ int64) error {
		switch id {
		case ebml.IDInfo:
			info = data
		case ebml.IDTracks:
			tracks = data
		}
		return nil
	})
	if err != nil {
		return err
	}
	if tracks == nil {
		return badInit("no Tracks")
	}
	ts, err := s.readTracks(tracks, 0)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.isVideo() {
			w.video = append(w.video, t.number)
		}
	}

	w.emit(init[:ebmlEnd])
	w.emit(ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDSegment)))
	w.segData = w.end
	w.emit(void(seekHeadRoom))

	// Info: the init's children but Duration, then a Duration slot.
	var body []byte
	if info != nil {
		err = s.children(info, 0, func(id uint32, data []byte, _ int64) error {
			if id == ebml.IDTimecodeScale && readUint(data) > 0 {
				w.scale = int64(min(readUint(data), uint64(time.Second)))
			}
			if id != ebml.IDDuration {
				body = append(body, ebml.Element(id, data)...)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	body = append(body, ebml.Float(ebml.IDDuration, 0)...)
	w.infoPos = w.end - w.segData
	w.emit(ebml.Element(ebml.IDInfo, body))
	w.durationAt = w.end - 8
	w.tracksPos = w.end - w.segData
	w.emit(ebml.Element(ebml.IDTracks, tracks))
	return nil
}

// void makes a Void element of n >= 2 bytes in all.
func void(n int) []byte {
	l := 1
	for n-1-l >= 1<<(7*l)-1 {
		l++
	}
	b := ebml.AppendSizeLen([]byte{ebml.IDVoid}, uint64(n-1-l), l)
	return append(b, make([]byte, n-1-l)...)
}

// elementAt reads the element header at the start of b; hdr == 0 means b
// is too short.
func elementAt(b []byte) (id uint32, hdr int, size uint64, unknown bool, err error) {
	id, idLen, bad := readID(b)
	if bad == "" && idLen > 0 {
		var sizeLen int
		size, sizeLen, unknown, bad = readSize(b[idLen:])
		if bad == "" && sizeLen > 0 {
			return id, idLen + sizeLen, size, unknown, nil
		}
	}
	if bad != "" {
		return 0, 0, 0, false, errors.New(bad)
	}
	return 0, 0, 0, false, nil
}

// Media writes the next media piece of the stream. keyframe says the piece
// starts a Cluster whose first video block is a keyframe (every Cluster
// without video): its first block makes a CuePoint. discontinuity says
// pieces before it were dropped: the Cluster being written, if any, ends
// with what it has (an element cut short is taken back), and the file goes
// on with the next Cluster.
func (w *FileWriter) Media(b []byte, keyframe, discontinuity bool) error {
	if w.err != nil {
		return w.err
	}
	if discontinuity {
		w.cut()
	}
	w.pieces++
	// The Cluster this piece starts, if it starts with one, gets a CuePoint.
	w.keyPiece = keyframe && len(w.pend) == 0 && w.left == 0
	if err := w.feed(b); err != nil {
		w.err = err
		return err
	}
	return w.flush()
}

// feed parses b, the input after what was fed before.
func (w *FileWriter) feed(b []byte) error {
	if len(w.pend) > 0 {
		b = append(w.pend, b...)
		w.pend = nil
	}
	for len(b) > 0 {
		if w.left > 0 {
			n := int(min(w.left, int64(len(b))))
			if w.copying {
				w.emit(b[:n])
			}
			b = b[n:]
			w.left -= int64(n)
			w.in += int64(n)
			continue
		}
		w.closeMasters()
		id, hdr, size, unknown, err := elementAt(b)
		if err != nil {
			return fmt.Errorf("%w: %s at media offset %d", ErrInvalid, err, w.in)
		}
		if hdr == 0 {
			w.pend = append(w.pend[:0], b...)
			return nil
		}
		if w.level == levelCluster && endsUnknownCluster(id) {
			w.endCluster()
			continue
		}
		if unknown && !(id == ebml.IDCluster && w.level == levelSegment) {
			return fmt.Errorf("%w: unknown size is not allowed for %s at media offset %d", ErrInvalid, ebml.Name(id), w.in)
		}
		// The body bytes read with the header: a block's track, time and
		// flags, a Timecode's value.
		prefix := int(min(size, uint64(prefixLen(id, w.level))))
		if unknown {
			prefix = 0
		}
		if len(b) < hdr+prefix {
			w.pend = append(w.pend[:0], b...)
			return nil
		}
		entered, err := w.element(id, b[:hdr+prefix], hdr, size, unknown)
		if err != nil {
			return err
		}
		w.keyPiece = false
		b = b[hdr+prefix:]
		w.in += int64(hdr + prefix)
		if !entered {
			w.left = int64(size) - int64(prefix)
		}
	}
	w.closeMasters()
	return nil
}

// prefixLen is how much of an element's body the parser reads with its
// header.
func prefixLen(id uint32, level int) int {
	switch {
	case level == levelCluster && id == ebml.IDTimecode:
		return 8
	case level == levelCluster && id == ebml.IDSimpleBlock, level == levelGroup && id == ebml.IDBlock:
		return 8 + 2 // track number, time
	}
	return 0
}

// element handles an element whose header (and prefix) is e, of hdr bytes
// of header. It sets copying for the body that follows, or reports that the
// element is a master the parser entered (Cluster, BlockGroup).
func (w *FileWriter) element(id uint32, e []byte, hdr int, size uint64, unknown bool) (entered bool, err error) {
	switch w.level {
	case levelSegment:
		w.copying = false
		if id != ebml.IDCluster {
			return false, nil // Cues, Tags, SeekHead... of the source, or blocks of a Cluster cut off
		}
		w.clusterAt = w.end
		w.clusterTC = 0
		w.clusters++
		w.wantCue = w.keyPiece
		w.emit(ebml.AppendUnknownSize(ebml.AppendID(nil, ebml.IDCluster)))
		w.level = levelCluster
		w.clusterEnd = -1
		if !unknown {
			w.clusterEnd = w.in + int64(hdr) + int64(size)
		}
		return true, nil
	case levelCluster:
		w.childAt = w.end
		w.copying = id != ebml.IDPosition && id != ebml.IDPrevSize
		if w.clusterEnd >= 0 && w.in+int64(hdr)+int64(size) > w.clusterEnd {
			return false, fmt.Errorf("%w: %s overruns its Cluster at media offset %d", ErrInvalid, ebml.Name(id), w.in)
		}
		switch id {
		case ebml.IDTimecode:
			w.clusterTC = readUint(e[hdr:])
		case ebml.IDSimpleBlock:
			w.block(e[hdr:])
		case ebml.IDBlockGroup:
			w.level = levelGroup
			w.groupEnd = w.in + int64(hdr) + int64(size)
			entered = true
		}
	case levelGroup:
		w.copying = true
		if w.in+int64(hdr)+int64(size) > w.groupEnd {
			return false, fmt.Errorf("%w: %s overruns its BlockGroup at media offset %d", ErrInvalid, ebml.Name(id), w.in)
		}
		if id == ebml.IDBlock {
			w.block(e[hdr:])
		}
	}
	if w.copying {
		w.emit(e)
	}
	return entered, nil
}

// block notes the time of a block whose body starts with b, and makes the
// CuePoint of a keyframe Cluster at its first video block (at its first
// block when there is no video).
func (w *FileWriter) block(b []byte) {
	track, n, bad := readVint(b)
	if bad || n == 0 || len(b) < n+2 {
		return // the splitter lets it through: copied, not timed
	}
	t := int64(w.clusterTC) + int64(int16(binary.BigEndian.Uint16(b[n:])))
	w.noteTime(track, t)
	if w.wantCue && (len(w.video) == 0 || slices.Contains(w.video, track)) {
		w.wantCue = false
		w.addCue(cuePoint{time: uint64(max(t, 0)), pos: uint64(w.clusterAt - w.segData), track: track})
		w.cueChild = w.childAt
	}
}

func (w *FileWriter) noteTime(track uint64, t int64) {
	for i := range w.lastTime {
		if tt := &w.lastTime[i]; tt.track == track {
			if t > tt.last {
				tt.prev, tt.last = tt.last, t
			}
			return
		}
	}
	if len(w.lastTime) < 16 { // more tracks than that: the others are not timed
		w.lastTime = append(w.lastTime, trackTime{track: track, last: t, prev: -1})
	}
}

func (w *FileWriter) addCue(c cuePoint) {
	if w.cueSkip > 0 {
		w.cueSkip--
		return
	}
	if len(w.cues) == MaxCues {
		n := 0
		for i := 0; i < len(w.cues); i += 2 {
			w.cues[n] = w.cues[i]
			n++
		}
		w.cues = w.cues[:n]
		w.cueStride *= 2
	}
	w.cues = append(w.cues, c)
	w.cueSkip = w.cueStride - 1
}

// closeMasters ends the BlockGroup and Cluster of known size that end
// where the input is.
func (w *FileWriter) closeMasters() {
	if w.level == levelGroup && w.in >= w.groupEnd {
		w.level = levelCluster
	}
	if w.level == levelCluster && w.clusterEnd >= 0 && w.in >= w.clusterEnd {
		w.endCluster()
	}
}

// endCluster patches the size of the Cluster being written.
func (w *FileWriter) endCluster() {
	if w.level == levelSegment {
		return
	}
	w.patch(w.clusterAt+4, ebml.AppendSizeLen(nil, uint64(w.end-w.clusterAt-12), 8))
	w.level = levelSegment
	w.wantCue = false
}

// cut ends the Cluster being written where the input was cut: an element
// of it that is not all there is taken back.
func (w *FileWriter) cut() {
	if w.level == levelGroup || (w.level == levelCluster && w.left > 0 && w.copying) {
		w.rewind(w.childAt)
		if n := len(w.cues); n > 0 && w.cueChild >= w.childAt && w.cues[n-1].pos == uint64(w.clusterAt-w.segData) {
			w.cues = w.cues[:n-1]
		}
	}
	w.pend, w.left = nil, 0
	if w.level != levelSegment {
		w.level = levelCluster
		w.endCluster()
	}
}

// Close finishes the file: the Cluster being written, the Cues, the
// Segment's size, the Duration and the SeekHead. It does not close f.
func (w *FileWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	w.cut() // input that stopped inside an element
	var seek []byte
	seek = append(seek, seekEntry(ebml.IDInfo, w.infoPos)...)
	seek = append(seek, seekEntry(ebml.IDTracks, w.tracksPos)...)
	if len(w.cues) > 0 {
		seek = append(seek, seekEntry(ebml.IDCues, w.end-w.segData)...)
		var body []byte
		for _, c := range w.cues {
			body = append(body, ebml.Element(ebml.IDCuePoint,
				ebml.Uint(ebml.IDCueTime, c.time),
				ebml.Element(ebml.IDCueTrackPositions,
					ebml.Uint(ebml.IDCueTrack, c.track),
					ebml.Uint(ebml.IDCueClusterPosition, c.pos)))...)
		}
		w.emit(ebml.Element(ebml.IDCues, body))
	}
	head := ebml.Element(ebml.IDSeekHead, seek)
	w.patch(w.segData, append(head, void(seekHeadRoom-len(head))...))
	w.patch(w.segData-8, ebml.AppendSizeLen(nil, uint64(w.end-w.segData), 8))
	w.patch(w.durationAt, binary.BigEndian.AppendUint64(nil, math.Float64bits(float64(w.duration()))))
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.f.Truncate(w.end); err != nil {
		w.err = err
		return err
	}
	w.err = errors.New("relay: WebM file writer: closed")
	return nil
}

func seekEntry(id uint32, pos int64) []byte {
	return ebml.Element(ebml.IDSeek,
		ebml.Element(ebml.IDSeekID, ebml.AppendID(nil, id)),
		ebml.FixedUint(ebml.IDSeekPosition, uint64(pos)))
}

// duration is the end of the last block of the file's longest track, in
// TimecodeScale units: its time plus the time between it and the block
// before it (a block's own duration is not in a SimpleBlock).
func (w *FileWriter) duration() int64 {
	var d int64
	for _, tt := range w.lastTime {
		end := tt.last
		if tt.prev >= 0 {
			end += tt.last - tt.prev
		}
		d = max(d, end)
	}
	return d
}

// Duration is the Duration Close writes (so far).
func (w *FileWriter) Duration() time.Duration { return time.Duration(w.duration() * w.scale) }

// Empty reports whether the file has no Cluster: nothing to play.
func (w *FileWriter) Empty() bool { return w.clusters == 0 }

// Pieces counts the media pieces written.
func (w *FileWriter) Pieces() uint64 { return w.pieces }

// Size is the file's size so far.
func (w *FileWriter) Size() int64 { return w.end }

// emit appends p to the output.
func (w *FileWriter) emit(p []byte) {
	if len(w.buf)+len(p) > cap(w.buf) {
		w.flush()
		if len(p) >= cap(w.buf) {
			w.write(p, w.flushed)
			w.flushed += int64(len(p))
			w.end = w.flushed
			return
		}
	}
	w.buf = append(w.buf, p...)
	w.end += int64(len(p))
}

// patch overwrites the output at file offset off with p: a size, the
// Duration, the SeekHead. A patch is never split across a flush: emit
// appends every field whole.
func (w *FileWriter) patch(off int64, p []byte) {
	if off >= w.flushed {
		copy(w.buf[off-w.flushed:], p)
		return
	}
	w.write(p, off)
}

// rewind takes the output back to file offset off.
func (w *FileWriter) rewind(off int64) {
	if off >= w.flushed {
		w.buf = w.buf[:off-w.flushed]
	} else {
		w.buf = w.buf[:0]
		w.flushed = off
	}
	w.end = off
}

func (w *FileWriter) flush() error {
	if len(w.buf) > 0 {
		w.write(w.buf, w.flushed)
		w.flushed += int64(len(w.buf))
		w.buf = w.buf[:0]
	}
	return w.err
}

func (w *FileWriter) write(p []byte, off int64) {
	if w.err != nil {
		return
	}
	if _, err := w.f.WriteAt(p, off); err != nil {
		w.err = err
	}
}
