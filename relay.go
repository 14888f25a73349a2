package relay

import (
	"fmt"
	"time"
)

// Role is what a connection wants to do with a stream.
type Role uint8

const (
	RolePublish   Role = iota + 1 // /{stream}/publish, Hub.Publish
	RoleSubscribe                 // /{stream}/subscribe, Hub.Subscribe
)

func (r Role) String() string {
	switch r {
	case RolePublish:
		return "publish"
	case RoleSubscribe:
		return "subscribe"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Stats is a snapshot of a Hub's counters.
type Stats struct {
	Streams     int // streams that have a publisher or subscribers
	Publishers  int // live publishers
	Subscribers int // subscribers, in-process, WebSocket and live.webm; never a recorder (WithRecording)

	BytesIn  uint64 // media bytes accepted from publishers
	BytesOut uint64 // media bytes handed to subscribers
	Segments uint64 // init and media segments published

	// Drops counts media segments skipped for slow subscribers, one per
	// subscriber per segment.
	Drops uint64
	// SlowClosed counts subscribers closed with ErrTooSlow.
	SlowClosed uint64

	// Held is the bytes held on behalf of publishers, counted against
	// WithMemoryBudget: inits, GOP caches, segments being received or held
	// back, legacy files being assembled, publishers' read buffers.
	Held int64

	// Refused counts the requests refused before the upgrade, by HTTP
	// status (nil when there were none).
	Refused map[int]uint64

	// EventsDropped counts events the WithEvents function was too slow
	// to take (see WithEvents).
	EventsDropped uint64
}

// StreamInfo describes one stream of a Hub. The figures count from when
// the stream came to be: when its first publisher or subscriber came, since
// the last moment it had neither.
type StreamInfo struct {
	Name        string
	Live        bool      // a publisher is connected
	MIME        string    // the live session's media type, "" until it is known
	Container   Container // ContainerOf(MIME): ContainerWebM, ContainerMP4, or ContainerUnknown
	Subscribers int       // as in Stats: the recorder is not one
	Recording   bool      // WithRecording's recorder is writing the live session

	PublisherID uint64        // the live publisher's session ID (Event.ID)
	Uptime      time.Duration // how long the live publisher has been on

	BytesIn    uint64  // bytes of init and media segments published
	BytesOut   uint64  // bytes handed to subscribers, all of them together
	Segments   uint64  // init and media segments published
	Bitrate    float64 // bits per second published, over the last 2 s
	Drops      uint64  // media segments skipped for slow subscribers, one per subscriber per segment
	Skips      uint64  // times a subscriber skipped to the next keyframe, or had an unsent init replaced
	SlowClosed uint64  // subscribers closed as too slow
	GOPBytes   int     // bytes in the cache a late joiner receives
}

// validStreamName reports whether name is 1–128 characters of
// [A-Za-z0-9_.-] not starting with a dot (so no "." or ".." path tricks).
func validStreamName(name string) bool {
	if len(name) == 0 || len(name) > 128 || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
