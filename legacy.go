package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm"
)

// The legacy framing is that of the blog design segrelay grew from: a page
// records standalone WebM files (5 s each there) and sends each one as
// binary chunks of a fixed size; a chunk shorter than that size ends the
// file. Legacy pages ask for no WebSocket subprotocol (handler.go). This
// file holds all of it: the options, the publisher side (chunks to files to
// segments) and the subscriber side (segments to files to chunks).

// WithLegacyChunkSize sets the chunk size of the legacy framing (default
// 5120 bytes): a legacy publisher's message shorter than this ends a file,
// and legacy subscribers receive files in chunks of this size.
func WithLegacyChunkSize(n int) Option {
	return func(c *config) { c.legacyChunkSize = positive(n, defaultLegacyChunkSize) }
}

// WithLegacyFileTimeout ends a legacy publisher's file when no chunk came
// for this long (default 1 s), so a file whose size is an exact multiple of
// the chunk size does not hang.
func WithLegacyFileTimeout(d time.Duration) Option {
	return func(c *config) { c.legacyFileTimeout = positive(d, defaultLegacyFileTimeout) }
}

// Publisher side.

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

// legacyMessage handles one message of a legacy publisher: binary chunks
// of files. Text messages carry nothing in the legacy framing and are
// ignored.
func (ps *pubSession) legacyMessage(m inMessage) *closeErr {
	if m.typ != websocket.MessageBinary {
		return nil
	}
	err := ps.held.resize(len(ps.files.buf)+len(m.data), "a legacy file")
	var f []byte
	if err == nil {
		f, err = ps.files.add(m.data)
	}
	if err == nil {
		err = ps.held.resize(cap(ps.files.buf), "a legacy file")
	}
	if err == nil && f != nil {
		err = ps.p.publishLegacyFile(f)
	}
	if err != nil {
		return closeFor(err)
	}
	return nil
}

// publishLegacyFile publishes one standalone WebM file of a legacy publisher: its
// init, then its Clusters, the last one marked as the end of the file.
func (p *Publisher) publishLegacyFile(file []byte) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.contain(&err)
	if err := p.use(modeFiles); err != nil {
		return err
	}
	var segs []*Segment
	collect := func(pc webm.Piece) error {
		segs = append(segs, pieceSegment(pc))
		return nil
	}
	sp := webm.NewSplitter(p.hub.cfg.maxSegmentBytes)
	if err := sp.Write(file, collect); err != nil {
		return err
	}
	if err := sp.End(collect); err != nil {
		return err
	}
	if len(segs) == 0 {
		return nil
	}
	if p.mime == "" {
		p.mime = sp.MIME()
	}
	p.hub.bytesIn.Add(uint64(len(file)))
	for _, seg := range segs {
		seg.LegacyFiles = seg.Kind == KindInit
	}
	segs[len(segs)-1].FileEnd = true
	for _, seg := range segs {
		if err := p.publish(seg); err != nil {
			return err
		}
	}
	return nil
}

// Subscriber side.

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
	asFiles bool     // the media after init comes in a legacy publisher's files
	parts   [][]byte // scratch for flush
}

// push takes the subscriber's next segment and calls emit with the parts of
// every file it completes: init first, then media. The parts alias segment
// data (immutable); emit must not keep the slice past its return.
func (f *legacyFiles) push(seg Segment, emit func(parts [][]byte) error) error {
	switch seg.Kind {
	case KindStart:
		return nil
	case KindInit:
		err := f.flush(emit)
		f.init, f.asFiles = seg.Data, seg.LegacyFiles
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
	if seg.FileEnd {
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

// runLegacy writes standalone WebM files in the legacy framing: chunks of
// the chunk size, then a shorter (possibly empty) one.
func (sw *subWriter) runLegacy() *closeErr {
	ping := time.NewTimer(sw.hub.cfg.pingInterval)
	defer ping.Stop()
	files := legacyFiles{maxFile: sw.hub.cfg.maxSegmentBytes}
	chunk := sw.hub.cfg.legacyChunkSize
	sw.buf = make([]byte, 0, chunk)
	for {
		seg, ce, ok := sw.wait(ping)
		if !ok {
			return ce
		}
		if seg.Kind == KindStart && seg.Container() == ContainerMP4 {
			return legacyRefusesMP4(sw.s.Stream())
		}
		if err := files.push(seg, sw.writeChunks); err != nil {
			return nil
		}
		ping.Reset(sw.hub.cfg.pingInterval)
	}
}

// legacyRefusesMP4 closes a legacy subscriber of an MP4 session: the
// legacy framing is standalone WebM files, which an MP4 stream cannot be
// cut into (close code 1003, unsupported data).
func legacyRefusesMP4(stream string) *closeErr {
	return closeWith(websocket.StatusUnsupportedData, "relay: stream %q is MP4: the legacy framing carries WebM only (use %s)", stream, Subprotocol)
}

// writeChunks sends one file, made of parts, in legacy chunks.
func (sw *subWriter) writeChunks(parts [][]byte) error {
	chunk := sw.hub.cfg.legacyChunkSize
	ctx, cancel := context.WithTimeout(sw.ctx, sw.hub.cfg.writeTimeout)
	defer cancel()
	sw.buf = sw.buf[:0]
	for _, p := range parts {
		for len(p) > 0 {
			n := min(chunk-len(sw.buf), len(p))
			sw.buf = append(sw.buf, p[:n]...)
			p = p[n:]
			if len(sw.buf) == chunk {
				if err := sw.c.conn.Write(ctx, websocket.MessageBinary, sw.buf); err != nil {
					return err
				}
				sw.buf = sw.buf[:0]
			}
		}
	}
	return sw.c.conn.Write(ctx, websocket.MessageBinary, sw.buf)
}
