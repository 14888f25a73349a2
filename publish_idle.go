package relay

import (
	"fmt"
	"time"
)

// idleRule is the publisher idle rule, for WebSocket and HTTP publishers
// alike: a session must publish WithPublisherMinBytes within every
// WithPublisherIdleTimeout. Messages or body reads that publish nothing (a
// trickle of tiny chunks, stats, a segment sent byte by byte) do not keep a
// stream's name.
type idleRule struct {
	minBytes   int64
	timeout    time.Duration
	progressAt int64 // Publisher.Published at the last progress
}

func newIdleRule(cfg *config) idleRule {
	return idleRule{minBytes: int64(cfg.publisherMinBytes), timeout: cfg.publisherIdleTimeout}
}

// progressed reports whether the session published the minimum since the
// last progress, given what it has published in all; the caller then
// restarts its idle clock.
func (r *idleRule) progressed(published int64) bool {
	if published-r.progressAt < r.minBytes {
		return false
	}
	r.progressAt = published
	return true
}

// reason says why an idle session ends, for its close frame or error.
func (r *idleRule) reason() string {
	return fmt.Sprintf("published less than %d bytes in %v", r.minBytes, r.timeout)
}
