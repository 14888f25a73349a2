package relay

import (
	"errors"
	"fmt"

	"github.com/segrelay/relay/internal/webm"
)

// Errors returned by the Hub, Publisher and Subscriber. The WebSocket
// handler maps them to HTTP statuses before the upgrade and to close codes
// after it (see the README's error table).
var (
	// ErrBadStreamName: a stream name is 1 to 128 characters of
	// [A-Za-z0-9_.-] and does not start with a dot. (HTTP 400)
	ErrBadStreamName = errors.New("relay: bad stream name")
	// ErrStreamBusy: the stream already has a publisher. (HTTP 409)
	ErrStreamBusy = errors.New("relay: stream already has a publisher")
	// ErrTooManyStreams: the hub has WithMaxStreams live streams. (HTTP 429)
	ErrTooManyStreams = errors.New("relay: too many streams")
	// ErrTooManySubscribers: the hub has WithMaxSubscribers subscribers, or
	// the stream WithMaxSubscribersPerStream. (HTTP 429)
	ErrTooManySubscribers = errors.New("relay: too many subscribers")
	// ErrOverBudget: the bytes the hub holds for publishers reached
	// WithMemoryBudget. (HTTP 503 for a new publisher, close code 1009)
	ErrOverBudget = errors.New("relay: hub memory budget exceeded")
	// ErrHubClosed: the hub is shutting down. (HTTP 503, close code 1001)
	ErrHubClosed = errors.New("relay: hub shutting down")
	// ErrTooSlow: the subscriber kept falling behind and was closed. (close code 1013)
	ErrTooSlow = errors.New("relay: subscriber too slow")
	// ErrClosed: the Publisher or Subscriber was closed by its owner.
	ErrClosed = errors.New("relay: closed")
	// ErrBadWebM: a publisher's WebM stream does not parse. (close code 1007)
	ErrBadWebM = webm.ErrInvalid
	// ErrSegmentTooBig: a segment, or the part of a WebM stream that must
	// be held whole, is over WithMaxSegmentBytes. (close code 1009)
	ErrSegmentTooBig = webm.ErrTooBig
	// ErrUnauthorized can be returned by an Authorize hook to answer 401
	// instead of 403.
	ErrUnauthorized = errors.New("relay: unauthorized")
)

// Role is what a connection wants to do with a stream.
type Role uint8

const (
	RolePublish Role = iota + 1
	RoleSubscribe
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
	Subscribers int // subscribers, in-process and WebSocket

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
}

// StreamInfo describes one stream of a Hub.
type StreamInfo struct {
	Name        string
	Live        bool   // a publisher is connected
	MIME        string // the live session's media type, "" until it is known
	Subscribers int
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
