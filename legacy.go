package relay

import "fmt"

// The legacy framing is that of the blog design segrelay grew from: a page
// records standalone WebM files (5 s each there) and sends each one as
// binary chunks of a fixed size; a chunk shorter than that size ends the
// file. Legacy pages ask for no WebSocket subprotocol.

// legacyAssembler joins a legacy publisher's chunks back into files.
type legacyAssembler struct {
	chunkSize int
	maxFile   int
	buf       []byte
}

// add takes one message. It returns the file that message completes: a
// message shorter than the chunk size (an empty one too) ends the file.
// It returns nil while the file goes on, and for an empty message that ends
// nothing. The file returned is the caller's: add never touches it again.
func (a *legacyAssembler) add(msg []byte) ([]byte, error) {
	if len(a.buf)+len(msg) > a.maxFile {
		return nil, fmt.Errorf("%w: a legacy file of more than %d bytes", ErrSegmentTooBig, a.maxFile)
	}
	a.buf = append(a.buf, msg...)
	if len(msg) >= a.chunkSize {
		return nil, nil
	}
	return a.flush(), nil
}

// flush ends the file in progress (no chunk came for the idle timeout) and
// returns it, or nil if there is none.
func (a *legacyAssembler) flush() []byte {
	if len(a.buf) == 0 {
		return nil
	}
	file := a.buf
	a.buf = nil
	return file
}

// legacyFiles turns a subscriber's segments into standalone WebM files:
// the latest init followed by media from a keyframe. From a legacy publisher
// a file ends where the publisher's file ended, so it is passed on as it was
// sent; from a protocol v1 publisher, a file is one run of segments from a
// keyframe to the next.
type legacyFiles struct {
	maxFile int
	init    []byte
	media   [][]byte
	size    int
	asFiles bool     // the session comes from a legacy publisher
	parts   [][]byte // scratch for flush
}

// push takes the subscriber's next segment and calls emit with the parts of
// every file it completes: init first, then media. The parts alias segment
// data (immutable); emit must not keep the slice past its return.
func (f *legacyFiles) push(seg Segment, emit func(parts [][]byte) error) error {
	switch seg.Kind {
	case KindStart:
		f.asFiles = seg.legacyFiles
		return nil
	case KindInit:
		err := f.flush(emit)
		f.init = seg.Data
		return err
	case KindEnd:
		err := f.flush(emit)
		f.init = nil
		return err
	}
	if len(f.media) > 0 && (seg.Discontinuity || (seg.Keyframe && !f.asFiles) || f.size+len(seg.Data) > f.maxFile) {
		if err := f.flush(emit); err != nil {
			return err
		}
	}
	if len(f.media) == 0 && !seg.Keyframe {
		return nil // a standalone file must start at a keyframe
	}
	f.media = append(f.media, seg.Data)
	f.size += len(seg.Data)
	if seg.fileEnd {
		return f.flush(emit)
	}
	return nil
}

// flush emits the file gathered so far, if any, and starts a new one.
func (f *legacyFiles) flush(emit func(parts [][]byte) error) error {
	var err error
	if len(f.media) > 0 && f.init != nil {
		f.parts = append(f.parts[:0], f.init)
		f.parts = append(f.parts, f.media...)
		err = emit(f.parts)
		clear(f.parts)
	}
	clear(f.media)
	f.media, f.size = f.media[:0], 0
	return err
}
