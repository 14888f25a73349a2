package mp4

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/segrelay/relay/internal/webm"
)

// A File is where a FileWriter writes: an *os.File (package webm's File).
type File = webm.File

// A FileWriter writes one fragmented MP4 file from a live stream's pieces:
// the init (ftyp, moov), then the fragments as they came. Such a file needs
// no index to play or to seek in: a demuxer that can seek reads the moofs
// (ffmpeg 5.1 finds the duration and seeks in it as in its own fragmented
// files, which end with an mfra). It is not safe for concurrent use.
type FileWriter struct {
	f        File
	size     int64
	complete int64 // the file's end after the last whole fragment (moof, then mdat)
	moofOpen bool  // a moof was written, its mdat not yet
	dangling bool  // after complete: a fragment's boxes (styp, sidx, prft, emsg, moof) without its mdat
	shifted  bool  // a discontinuity came: offsets are no longer the stream's
	pieces   uint64
	frags    uint64 // whole fragments

	tracks  map[uint32]trackTime // by track_ID, from the moov
	pending []span               // the open moof's tracks, counted when its mdat comes
	timed   bool                 // start and end are set
	start   time.Duration
	end     time.Duration
}

// trackTime is what the durations of a track's samples need.
type trackTime struct {
	timescale uint32
	duration  uint32 // trex's default_sample_duration
}

// span is the time a traf covers.
type span struct{ start, end time.Duration }

var (
	typeMdhd = fourCC("mdhd")
	typeMdat = fourCC("mdat")
	typeMfra = fourCC("mfra") // ffmpeg's index at the end: its offsets are the stream's
	typeTfdt = fourCC("tfdt")
)

// NewFileWriter starts a file in f (written from offset 0) for a stream
// whose init segment is init: ftyp and moov, the moov with its mvex.
func NewFileWriter(f File, init []byte) (*FileWriter, error) {
	w := &FileWriter{f: f, tracks: map[uint32]trackTime{}}
	err := children(init, 0, func(h box, b []byte, off int64) error {
		if h.typ == typeMoov {
			return w.readMoov(b, off)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(w.tracks) == 0 {
		return nil, fmt.Errorf("%w: an init without a moov's tracks", ErrInvalid)
	}
	if err := w.write(init); err != nil {
		return nil, err
	}
	w.complete = w.size
	return w, nil
}

// readMoov takes each track's timescale (mdhd) and default sample
// duration (trex).
func (w *FileWriter) readMoov(body []byte, off int64) error {
	return children(body, off, func(h box, b []byte, off int64) error {
		switch h.typ {
		case typeTrak:
			var id, scale uint32
			err := children(b, off, func(h box, b []byte, off int64) error {
				switch h.typ {
				case typeTkhd:
					id = fullBoxField(b, 12, 20)
				case typeMdia:
					if mdhd := childBody(b, typeMdhd); mdhd != nil {
						scale = fullBoxField(mdhd, 12, 20)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			t := w.tracks[id]
			t.timescale = scale
			w.tracks[id] = t
		case typeMvex:
			return children(b, off, func(h box, b []byte, off int64) error {
				if h.typ == typeTrex && len(b) >= 16 {
					id := binary.BigEndian.Uint32(b[4:])
					t := w.tracks[id]
					t.duration = binary.BigEndian.Uint32(b[12:])
					w.tracks[id] = t
				}
				return nil
			})
		}
		return nil
	})
}

// fullBoxField reads the 32-bit field at at0 of a version 0 full box body,
// at at1 of a version 1 one (whose times before it are 64-bit); 0 when
// the body is short.
func fullBoxField(b []byte, at0, at1 int) uint32 {
	if len(b) < 4 {
		return 0
	}
	at := at0
	if b[0] == 1 {
		at = at1
	}
	if len(b) < at+4 {
		return 0
	}
	return binary.BigEndian.Uint32(b[at:])
}

// Media writes the next media piece of the stream: whole top-level boxes.
// keyframe is the splitter's flag (a fragment's start needs no cue here:
// the moofs are the index). discontinuity says pieces before it were
// dropped: a fragment they left without its mdat is taken back, and the
// file goes on with the next fragment, its decode times where the stream's
// are. From then on an mfra (ffmpeg writes one at the end of its stream)
// is left out: its offsets are the stream's, no longer the file's.
func (w *FileWriter) Media(b []byte, keyframe, discontinuity bool) error {
	if discontinuity {
		if err := w.takeBack(); err != nil {
			return err
		}
		w.shifted = true
	}
	var drop [][2]int // an mfra's bytes in b, once offsets shifted
	err := children(b, w.size, func(h box, body []byte, off int64) error {
		switch h.typ {
		case typeMfra:
			if w.shifted {
				end := int(off-w.size) + len(body)
				drop = append(drop, [2]int{int(off-w.size) - h.hdr, end})
			}
		case typeStyp, typeSidx, typeSsix, typePrft, typeEmsg:
			w.dangling = true
		case typeMoof:
			w.moofOpen, w.dangling = true, true
			w.pending = w.pending[:0]
			return w.readMoof(body, off)
		case typeMdat:
			if w.moofOpen {
				w.moofOpen, w.dangling = false, false
				w.frags++
				for _, s := range w.pending {
					if !w.timed {
						w.start, w.end, w.timed = s.start, s.end, true
					}
					w.start, w.end = min(w.start, s.start), max(w.end, s.end)
				}
				w.complete = off + int64(len(body))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.pieces++
	if len(drop) > 0 {
		kept := make([]byte, 0, len(b))
		at := 0
		for _, d := range drop {
			kept = append(kept, b[at:d[0]]...)
			at = d[1]
		}
		b = append(kept, b[at:]...)
	}
	return w.write(b)
}

// readMoof takes the time each traf covers: tfdt's base media decode time,
// plus its samples' durations (trun's, else tfhd's default, else trex's).
func (w *FileWriter) readMoof(body []byte, off int64) error {
	return children(body, off, func(h box, b []byte, off int64) error {
		if h.typ != typeTraf {
			return nil
		}
		var t trackTime
		var base, total uint64
		var haveBase bool
		err := children(b, off, func(h box, b []byte, off int64) error {
			switch h.typ {
			case typeTfhd:
				if len(b) < 8 {
					return nil
				}
				t = w.tracks[binary.BigEndian.Uint32(b[4:])]
				tf := binary.BigEndian.Uint32(b) & 0xffffff
				at := 8
				if tf&0x1 != 0 {
					at += 8
				}
				if tf&0x2 != 0 {
					at += 4
				}
				if tf&0x8 != 0 && len(b) >= at+4 {
					t.duration = binary.BigEndian.Uint32(b[at:])
				}
			case typeTfdt:
				switch {
				case len(b) >= 12 && b[0] == 1:
					base, haveBase = binary.BigEndian.Uint64(b[4:]), true
				case len(b) >= 8:
					base, haveBase = uint64(binary.BigEndian.Uint32(b[4:])), true
				}
			case typeTrun:
				total += trunDuration(b, t.duration)
			}
			return nil
		})
		if err != nil || !haveBase || t.timescale == 0 {
			return err
		}
		w.pending = append(w.pending, span{ticks(base, t.timescale), ticks(base+total, t.timescale)})
		return nil
	})
}

// trunDuration sums a trun's sample durations, def for each sample
// without its own.
func trunDuration(b []byte, def uint32) uint64 {
	if len(b) < 8 {
		return 0
	}
	tf := binary.BigEndian.Uint32(b) & 0xffffff
	n := uint64(binary.BigEndian.Uint32(b[4:]))
	if tf&0x100 == 0 {
		return n * uint64(def)
	}
	at := 8
	if tf&0x1 != 0 {
		at += 4
	}
	if tf&0x4 != 0 {
		at += 4
	}
	stride := 0
	for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if tf&bit != 0 {
			stride += 4
		}
	}
	var sum uint64
	for i := uint64(0); i < n && at+4 <= len(b); i++ {
		sum += uint64(binary.BigEndian.Uint32(b[at:]))
		at += stride
	}
	return sum
}

func ticks(n uint64, timescale uint32) time.Duration {
	sec := n / uint64(timescale)
	rem := n % uint64(timescale)
	return time.Duration(sec)*time.Second + time.Duration(rem*uint64(time.Second)/uint64(timescale))
}

func (w *FileWriter) write(b []byte) error {
	n, err := w.f.WriteAt(b, w.size)
	w.size += int64(n)
	return err
}

// takeBack truncates the file to its last whole fragment when a fragment's
// boxes came after it without their mdat; other boxes after it (free, an
// mfra) stay.
func (w *FileWriter) takeBack() error {
	if !w.dangling {
		return nil
	}
	if err := w.f.Truncate(w.complete); err != nil {
		return err
	}
	w.size, w.moofOpen, w.dangling, w.pending = w.complete, false, false, w.pending[:0]
	return nil
}

// Close finishes the file: a fragment left without its mdat is taken
// back. The moov keeps its empty duration (empty_moov: the fragments say
// it). It does not close f.
func (w *FileWriter) Close() error { return w.takeBack() }

// Duration is the time the whole fragments cover: from the earliest decode
// time of a track to the latest end of one.
func (w *FileWriter) Duration() time.Duration { return w.end - w.start }

// Empty reports whether the file has no whole fragment: nothing to play.
func (w *FileWriter) Empty() bool { return w.frags == 0 }

// Pieces counts the media pieces written.
func (w *FileWriter) Pieces() uint64 { return w.pieces }

// Size is the file's size so far.
func (w *FileWriter) Size() int64 { return w.size }
