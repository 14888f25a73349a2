package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/segrelay/relay/internal/mp4"
	"github.com/segrelay/relay/internal/webm"
)

// Recording (WithRecording): a recorder is a subscriber of one publisher
// session, joined when the session claims its stream so that it receives
// the Start, the init and every segment, and detached when the session
// ends so that the next session's Start cannot drop what it has not written
// yet. It writes on a goroutine of its own, which Shutdown waits for.
//
// A WebM session becomes .webm files (webm.FileWriter: Cues, Duration,
// seekable), an MP4 one .mp4 files (mp4.FileWriter: the init and the
// fragments as they came, a fragmented MP4 that ffmpeg seeks in by reading
// its moofs). A session in neither container (a segments-mode MIME the hub
// does not know) is written as WebM, as before there was MP4.

// recordQueueFactor sizes a recorder's queue: this many times
// WithSubscriberQueueBytes (8 MiB by default, about 25 s of a 2.5 Mbit/s
// stream), so that a disk that stalls for seconds costs no media, while a
// hub whose every stream records to a dead disk holds at most
// MaxStreams × 8 MiB more (see the README's Deploying section).
const recordQueueFactor = 4

// recordConfig is what WithRecording sets.
type recordConfig struct {
	on     bool
	dir    string
	accept func(stream string) bool // nil: every stream

	// create makes a recording's file: createFile, or a disk of the
	// tests' own (a slow one).
	create func(dir, base, ext string) (recordFile, string, error)
}

// recordFile is what a recorder writes to: an *os.File.
type recordFile interface {
	webm.File
	Close() error
}

// recordTimeLayout names a file after the UTC time its recording began,
// without colons (not allowed in Windows file names, awkward in URLs).
const recordTimeLayout = "2006-01-02T15-04-05.000Z"

// records reports whether the local publisher of stream name is recorded.
// It runs on a new publisher's path before the hub's locks: WithRecording's
// function must be quick.
func (h *Hub) records(name string, relayed bool) bool {
	rc := h.cfg.recording
	return rc.on && !relayed && validStreamName(name) && (rc.accept == nil || rc.accept(name))
}

// recorder writes the files of one publisher session.
type recorder struct {
	hub   *Hub
	sub   *Subscriber
	pubID uint64
	begun time.Time // the session claimed its stream

	container Container // the session's, from its Start

	files int // begun, or tried
	file  recordFile
	w     mediaFile
	path  string
	drops uint64 // the subscriber's drops when the file began
}

// mediaFile is what a recorder writes with: a webm.FileWriter or an
// mp4.FileWriter.
type mediaFile interface {
	Media(b []byte, keyframe, discontinuity bool) error
	Close() error
	Duration() time.Duration
	Empty() bool
	Pieces() uint64
	Size() int64
}

// joinRecorder joins a recorder to st, whose new publisher p was just
// claimed, and starts it. It is no viewer, so a Bridge is not told of it
// (Bridge.Interest). Caller holds h.mu and st.mu, and the hub is not closed.
func (h *Hub) joinRecorder(st *stream, p *Publisher) {
	s := &Subscriber{hub: h, stream: st, limit: recordQueueFactor * h.cfg.queueBytes, notify: make(chan struct{}, 1)}
	s.session = session{id: h.lastID.Add(1), role: RoleSubscribe}
	st.join(s)
	s.waitKey = false // it joined before the session's first segment: it takes them all
	st.rec = s
	r := &recorder{hub: h, sub: s, pubID: p.session.id, begun: time.Now()}
	h.wg.Add(1)
	go r.run()
}

// detachRecorder takes the recorder of st's ending session out of the
// stream: it has the session's End queued, and writes what is queued
// before it at its own pace; a session that never started has no End, and
// ends its recorder here. Caller holds h.mu and st.mu.
func (h *Hub) detachRecorder(st *stream, started bool) {
	s := st.rec
	if s == nil {
		return
	}
	st.rec = nil
	if !started {
		s.fail(ErrClosed) // it got nothing: no file, no event
	}
	st.remove(s)
}

// run writes the session's segments until its End, or until the
// recording fails.
func (r *recorder) run() {
	defer r.hub.wg.Done()
	for {
		// The subscriber ends with its session's End (or sooner, too
		// slow); the hub's context only when Shutdown cannot wait.
		seg, err := r.sub.Next(r.hub.recording)
		if err == nil {
			err = r.hub.recording.Err() // Next hands out what is queued first
		}
		if err != nil { // too slow (ErrTooSlow), closed by the app, or Shutdown's context done
			err = r.errorf("%w", err)
			r.finish(err)
			r.sub.end(err)
			return
		}
		switch seg.Kind {
		case KindStart:
			r.container = seg.Container()
		case KindInit:
			r.finish(nil) // an encoder restart: its own file
			err = r.open(seg.Data)
		case KindMedia:
			if r.w != nil {
				err = r.w.Media(seg.Data, seg.Keyframe, seg.Discontinuity)
			}
		case KindEnd:
			r.finish(nil)
			r.sub.end(ErrClosed)
			return
		}
		if err != nil {
			// The rest of the session is not recorded; the stream goes on.
			err = r.errorf("%w", err)
			if r.w != nil {
				r.finish(err)
			} else {
				r.emit(EventRecordEnd, r.path, SessionStats{}, err) // the file could not begin
			}
			r.sub.end(ErrClosed)
			return
		}
	}
}

func (r *recorder) errorf(format string, args ...any) error {
	return fmt.Errorf("relay: recording stream %q: %w", r.sub.stream.name, fmt.Errorf(format, args...))
}

// open starts the file of the init segment init.
func (r *recorder) open(init []byte) error {
	start := r.begun
	if r.files > 0 {
		start = time.Now() // an encoder restart
	}
	r.files++
	r.sub.mu.Lock()
	r.drops = r.sub.drops
	r.sub.mu.Unlock()
	create := r.hub.cfg.recording.create
	if create == nil {
		create = createFile
	}
	dir := filepath.Join(r.hub.cfg.recording.dir, r.sub.stream.name)
	ext := ".webm"
	if r.container == ContainerMP4 {
		ext = ".mp4"
	}
	f, path, err := create(dir, start.UTC().Format(recordTimeLayout), ext)
	r.path = path
	if err != nil {
		return err
	}
	var w mediaFile
	if r.container == ContainerMP4 {
		w, err = mp4.NewFileWriter(f, init)
	} else {
		w, err = webm.NewFileWriter(f, init)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	r.file, r.w = f, w
	r.emit(EventRecordStart, path, SessionStats{}, nil)
	return nil
}

// createFile creates dir/base.webm (ext: ".webm", or ".mp4"), or
// dir/base-1.webm and so on when it exists: two files of one stream begun
// within the same millisecond (a restart), or a second hub recording to the
// same directory.
func createFile(dir, base, ext string) (recordFile, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, filepath.Join(dir, base+ext), err
	}
	for i := 0; ; i++ {
		name := base + ext
		if i > 0 {
			name = fmt.Sprintf("%s-%d%s", base, i, ext)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		switch {
		case err == nil:
			return f, path, nil
		case !errors.Is(err, fs.ErrExist) || i == 999:
			return nil, path, err
		}
	}
}

// finish closes the file being written, if any: its Cues, sizes and
// Duration are written, and EventRecordEnd reports it with err (nil: the
// file ended cleanly).
func (r *recorder) finish(err error) {
	if r.w == nil {
		return
	}
	werr := r.w.Close()
	if cerr := r.file.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil && err == nil {
		err = r.errorf("%w", werr)
	}
	r.sub.mu.Lock()
	drops := r.sub.drops - r.drops
	r.sub.mu.Unlock()
	stats := SessionStats{Duration: r.w.Duration(), Bytes: uint64(r.w.Size()), Segments: r.w.Pieces(), Drops: drops}
	if r.w.Empty() {
		// No media: nothing to play (and a file ffmpeg calls broken).
		if rerr := os.Remove(r.path); rerr == nil {
			stats.Bytes = 0
		}
	}
	r.emit(EventRecordEnd, r.path, stats, err)
	r.w, r.file = nil, nil
}

func (r *recorder) emit(kind EventKind, path string, stats SessionStats, err error) {
	r.hub.emit(Event{Kind: kind, Stream: r.sub.stream.name, Role: RolePublish, ID: r.pubID, Path: path, Err: err, Session: stats})
}

// appendViewers appends st's subscribers but its recorder, which ends with
// its publisher's session: ending it first would drop what it has not
// written. Caller holds st.mu.
func (st *stream) appendViewers(subs []*Subscriber) []*Subscriber {
	for _, s := range st.subs {
		if s != st.rec {
			subs = append(subs, s)
		}
	}
	return subs
}
