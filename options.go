package relay

import (
	"io"
	"log/slog"
	"net/http"
	"time"
)

// An Option configures a Hub. Every option has a sensible default: NewHub()
// with no options is a working hub.
type Option func(*config)

type config struct {
	authorize      func(r *http.Request, stream string, role Role) error
	originPatterns []string
	hostPatterns   []string

	maxMessageBytes int
	maxSegmentBytes int
	maxInitBytes    int
	gopCacheBytes   int
	queueBytes      int
	subscriberLag   time.Duration
	memoryBudget    int64

	writeTimeout         time.Duration
	pingInterval         time.Duration
	startTimeout         time.Duration
	publisherIdleTimeout time.Duration
	publisherMinBytes    int

	maxStreams              int
	maxSubscribers          int
	maxSubscribersPerStream int

	legacyChunkSize   int
	legacyFileTimeout time.Duration

	coalesceBytes int
	coalesceDelay time.Duration

	liveWait time.Duration

	logger *slog.Logger

	events func(Event)

	recording recordConfig // WithRecording (recorder.go)
}

// Defaults, documented on the options that change them.
// The limits are chosen so that NewHub() with no options is safe to expose:
// see the README's Deploying section for the memory bound they give.
const (
	defaultMaxMessageBytes      = 1 << 20
	defaultMaxSegmentBytes      = 8 << 20
	defaultMaxInitBytes         = 1 << 20
	defaultGOPCacheBytes        = 8 << 20
	defaultQueueBytes           = 2 << 20
	defaultMemoryBudget         = 256 << 20
	defaultWriteTimeout         = 10 * time.Second
	defaultPingInterval         = 30 * time.Second
	defaultStartTimeout         = 5 * time.Second
	defaultPublisherIdleTimeout = 30 * time.Second
	defaultPublisherMinBytes    = 8 << 10
	defaultMaxStreams           = 100
	defaultMaxSubscribers       = 1000
	defaultLegacyChunkSize      = 5120
	defaultLegacyFileTimeout    = time.Second
	defaultCoalesceBytes        = 64 << 10
	defaultCoalesceDelay        = 50 * time.Millisecond
	defaultLiveWait             = 10 * time.Second
)

func newConfig(opts []Option) config {
	c := config{
		maxMessageBytes:      defaultMaxMessageBytes,
		maxSegmentBytes:      defaultMaxSegmentBytes,
		maxInitBytes:         defaultMaxInitBytes,
		gopCacheBytes:        defaultGOPCacheBytes,
		queueBytes:           defaultQueueBytes,
		memoryBudget:         defaultMemoryBudget,
		writeTimeout:         defaultWriteTimeout,
		pingInterval:         defaultPingInterval,
		startTimeout:         defaultStartTimeout,
		publisherIdleTimeout: defaultPublisherIdleTimeout,
		publisherMinBytes:    defaultPublisherMinBytes,
		maxStreams:           defaultMaxStreams,
		maxSubscribers:       defaultMaxSubscribers,
		legacyChunkSize:      defaultLegacyChunkSize,
		legacyFileTimeout:    defaultLegacyFileTimeout,
		coalesceBytes:        defaultCoalesceBytes,
		coalesceDelay:        defaultCoalesceDelay,
		liveWait:             defaultLiveWait,
		logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// positive returns v, or def when v is zero or negative.
func positive[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// WithAuthorize sets the hook that decides, before the WebSocket upgrade,
// whether the request r may publish or subscribe to stream. It is the place
// to check cookies or tokens. A nil error allows; ErrUnauthorized (or an
// error wrapping it) answers 401, any other error 403, with the error's text
// as the body. The default allows everyone.
func WithAuthorize(f func(r *http.Request, stream string, role Role) error) Option {
	return func(c *config) { c.authorize = f }
}

// WithOriginPatterns allows cross-origin WebSocket requests from pages whose
// Origin host matches one of the patterns (path.Match syntax, matched
// case-insensitively against the host, or against "scheme://host" when the
// pattern contains "://"). By default only same-origin requests, and
// requests without an Origin header (non-browser clients), are accepted,
// as github.com/coder/websocket does.
func WithOriginPatterns(patterns ...string) Option {
	return func(c *config) { c.originPatterns = append([]string(nil), patterns...) }
}

// WithHosts allows only requests whose Host header matches one of the
// patterns (path.Match syntax, case-insensitive; a pattern without a port
// matches any port). Others get 403. By default every Host is accepted.
//
// It defends against DNS rebinding: a page on evil.example whose name is
// made to resolve to your server's address sends Host: evil.example and a
// matching Origin, so the same-origin check passes. A hub reachable on a
// private address (a LAN box, localhost during development) that relies on
// its address for access control should list its real names here.
func WithHosts(patterns ...string) Option {
	return func(c *config) { c.hostPatterns = append([]string(nil), patterns...) }
}

// WithMaxMessageBytes limits one WebSocket message from a publisher
// (default 1 MiB). A larger one closes the connection with 1009.
func WithMaxMessageBytes(n int) Option {
	return func(c *config) { c.maxMessageBytes = positive(n, defaultMaxMessageBytes) }
}

// WithMaxSegmentBytes limits one segment (default 8 MiB): a declared
// segment, a Cluster start held back until its keyframe flag is known, a
// legacy file. Over it the publisher is closed with 1009.
func WithMaxSegmentBytes(n int) Option {
	return func(c *config) { c.maxSegmentBytes = positive(n, defaultMaxSegmentBytes) }
}

// WithMaxInitBytes limits one init segment (default 1 MiB; real WebM
// headers are under a few KB). Over it the publisher is closed with 1009.
func WithMaxInitBytes(n int) Option {
	return func(c *config) { c.maxInitBytes = positive(n, defaultMaxInitBytes) }
}

// WithMemoryBudget bounds the bytes the hub holds on behalf of publishers
// (default 256 MiB): init segments, GOP caches, segments being received or
// held back, legacy files being assembled and publishers' read buffers. Over
// the budget, new publishers get 503, and a publisher whose bytes would push
// the hub over it is closed with 1009. Stats.Held is the current figure.
func WithMemoryBudget(n int64) Option {
	return func(c *config) { c.memoryBudget = positive(n, defaultMemoryBudget) }
}

// WithGOPCacheBytes bounds the per-stream cache of media since the last
// keyframe, which a late joiner receives at once (default 8 MiB). When a
// group of pictures outgrows it, late joiners wait for the next keyframe.
func WithGOPCacheBytes(n int) Option {
	return func(c *config) { c.gopCacheBytes = positive(n, defaultGOPCacheBytes) }
}

// WithSubscriberQueueBytes bounds the bytes queued for one subscriber
// (default 2 MiB, about 6 s of a 2.5 Mbit/s stream). Segment data is shared,
// so this bounds lateness, not memory per subscriber. A subscriber whose
// queue overflows skips to the next keyframe; one that overflows again and
// again is closed (ErrTooSlow, close code 1013).
func WithSubscriberQueueBytes(n int) Option {
	return func(c *config) { c.queueBytes = positive(n, defaultQueueBytes) }
}

// WithSubscriberMaxLag bounds, in time, how late a connection's subscriber
// (WebSocket or live.webm) may fall behind: when the oldest media segment
// waiting for it arrived more than d ago, its queue skips to the next
// keyframe (the segment there carries Discontinuity), as it does when the
// queue's bytes overflow, but without counting towards ErrTooSlow. A viewer
// on a link slower than the stream then sees a live picture with gaps
// instead of a growing delay. A WebSocket subscriber's writer also holds
// back while what it wrote and the kernel still holds was queued more than
// d/2 ago (Linux: the socket's unsent and unacknowledged bytes), so that its
// lateness does not hide in the kernel's buffers. A late joiner's cached
// segments count from when it joined. Off by default (0 or less: no time
// bound; the byte bound, WithSubscriberQueueBytes, stays): a reader that
// must get every frame (ffprobe on a busy machine) would lose some, and on
// links whose buffers hide the lateness from the hub it does not yet hold
// (docs/performance.md, "Weak links"); 1.5 s suits live viewers. In-process
// subscribers (Hub.Subscribe) and the recorder have no time bound.
func WithSubscriberMaxLag(d time.Duration) Option {
	return func(c *config) { c.subscriberLag = max(d, 0) }
}

// WithWriteTimeout bounds one write to a WebSocket peer (default 10 s). A
// subscriber whose socket stays full longer is dropped.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.writeTimeout = positive(d, defaultWriteTimeout) }
}

// WithPingInterval sets how long a subscriber connection may be idle before
// the hub pings it (default 30 s); a peer that does not answer within the
// write timeout is dropped.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.pingInterval = positive(d, defaultPingInterval) }
}

// WithStartTimeout closes a protocol v1 publisher that has not sent its
// start message this long after the upgrade (default 5 s) with 1008, so a
// connection cannot hold a stream's name without publishing. A legacy
// publisher has no start message (it sends its first chunk when its first
// file is recorded): the idle rule of WithPublisherIdleTimeout bounds it.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = positive(d, defaultStartTimeout) }
}

// WithPublisherIdleTimeout and WithPublisherMinBytes set the least a
// WebSocket publisher must do to keep its stream: publish at least minBytes
// of init and media segments within every idle timeout (defaults: 8 KiB in
// 30 s, under 2.2 kbit/s, far below any real audio or video). One that does
// not is closed with 1008, however many small messages it sends, so
// nobody holds a name with a trickle.
func WithPublisherIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.publisherIdleTimeout = positive(d, defaultPublisherIdleTimeout) }
}

// WithPublisherMinBytes: see WithPublisherIdleTimeout.
func WithPublisherMinBytes(n int) Option {
	return func(c *config) { c.publisherMinBytes = positive(n, defaultPublisherMinBytes) }
}

// Stream-mode coalescing: how long whole WebM elements may wait to leave
// together (see Publisher.Write).

// WithCoalesceBytes sets how many bytes of whole WebM elements a stream-mode
// publisher's segment gathers before it is forwarded even though more input
// is on its way (default 64 KiB: a 200 ms Cluster of a 2.5 Mbit/s stream).
// Coalescing only ever holds what arrives back to back: a message after
// which the publisher has sent nothing more is forwarded at once.
func WithCoalesceBytes(n int) Option {
	return func(c *config) { c.coalesceBytes = positive(n, defaultCoalesceBytes) }
}

// WithCoalesceDelay bounds how long whole WebM elements of a stream-mode
// publisher wait to be forwarded with what follows them (default 50 ms).
func WithCoalesceDelay(d time.Duration) Option {
	return func(c *config) { c.coalesceDelay = positive(d, defaultCoalesceDelay) }
}

// WithLiveWait bounds how long GET /{stream}/live.webm waits for a
// publisher session: before the response starts (404 after it), and after
// the publisher left (the response ends after it). Default 10 s. A waiting
// request is a subscriber: it counts against WithMaxSubscribers.
func WithLiveWait(d time.Duration) Option {
	return func(c *config) { c.liveWait = positive(d, defaultLiveWait) }
}

// WithMaxStreams limits the live streams, those with a publisher (default
// 100). Over it, publishers of other streams get 429. Streams that only
// have subscribers are bounded by WithMaxSubscribers.
func WithMaxStreams(n int) Option {
	return func(c *config) { c.maxStreams = positive(n, defaultMaxStreams) }
}

// WithMaxSubscribers limits the subscribers of the whole hub, in-process
// and WebSocket (default 1,000). Over it, new subscribers get 429.
func WithMaxSubscribers(n int) Option {
	return func(c *config) { c.maxSubscribers = positive(n, defaultMaxSubscribers) }
}

// WithMaxSubscribersPerStream limits the subscribers of one stream
// (default: only the hub's limit). Over it, new subscribers get 429.
func WithMaxSubscribersPerStream(n int) Option {
	return func(c *config) { c.maxSubscribersPerStream = max(n, 0) }
}

// WithLogger sets the logger for connection events and errors (default:
// discard). Per-connection events log at Debug, protocol errors at Info.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithRecording records every publisher session of the streams record
// accepts (nil: every stream) to its own file, <dir>/<stream>/<start>.webm
// (.mp4 for an MP4 session),
// where start is the UTC time the session began, without colons
// (2026-11-30T11-47-12.345Z.webm; -1, -2... are added to a name that
// exists). An encoder restart within a session (a new init) starts a new
// file, named after the time of the restart; so does every file of a
// legacy publisher. Only the hub's own publishers are recorded, not those a
// Cluster relays from other nodes. record runs on a new publisher's path,
// before the stream is claimed: it must be quick.
//
// The recorder is a subscriber of the session (counted in Stats and
// SubscriberCount, not in Publisher.Subscribers, never refused by the
// subscriber limits) with a queue 4 times WithSubscriberQueueBytes; it
// writes on a goroutine of its own and never makes the publisher wait. A
// disk too slow for that queue gets the slow-subscriber rules: the file
// skips to the next keyframe (a gap in its timeline), and after 3
// overflows in 30 s the recording ends with ErrTooSlow.
//
// A file ends cleanly when its session ends, at Shutdown (which waits for
// what is queued, unless its context ends first) and after an error.
// EventRecordStart and EventRecordEnd report it, the end with the error
// that stopped it (a disk full, a directory that cannot be written): a
// recording's error never ends the stream. A file that got no media is
// removed (EventRecordEnd reports 0 bytes); segments that do not parse as
// the session's container are not recorded (ErrBadWebM, ErrBadMP4).
//
// A WebM session (and one whose MIME names neither container) is written as
// .webm files that players can seek in: the recorder writes the Segment and
// Cluster sizes, Duration, a SeekHead and Cues (one CuePoint per keyframe
// Cluster, up to 4,096; a longer recording keeps every other one) when the
// file ends. Until then the file is a live WebM, which plays from start to
// end without seeking (as does one left by a crash).
//
// An MP4 session is written as .mp4 files: its init and its fragments as
// they came, a fragmented MP4 without an index (no sidx, no mfra); a
// fragment that skipping left without its mdat is taken back. ffmpeg and
// ffprobe (5.1) read the moofs of such a file when they open it: they find
// its duration and seek in it as in ffmpeg's own fragmented MP4, which ends
// with an mfra. A file left by a crash ends at its last whole fragment or
// inside one; it plays up to there.
func WithRecording(dir string, record func(stream string) bool) Option {
	return func(c *config) { c.recording = recordConfig{on: true, dir: dir, accept: record} }
}
