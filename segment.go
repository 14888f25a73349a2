package relay

import "fmt"

// Kind says what a Segment carries.
type Kind uint8

const (
	// KindStart opens a publisher session. It carries the session's MIME type
	// and no data. The session's init segment follows.
	KindStart Kind = iota + 1
	// KindInit is a container header (for WebM: the EBML header, Segment
	// header, Info and Tracks). A decoder needs it before any media segment.
	// A new init within a session means the encoder restarted.
	KindInit
	// KindMedia is media data (for WebM: one Cluster or a part of one).
	KindMedia
	// KindEnd closes a publisher session: the publisher left. The subscriber
	// stays and receives KindStart when the next publisher comes.
	KindEnd
)

func (k Kind) String() string {
	switch k {
	case KindStart:
		return "start"
	case KindInit:
		return "init"
	case KindMedia:
		return "media"
	case KindEnd:
		return "end"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// A Segment is one unit of a stream, in publish order.
//
// Data is shared by every subscriber and by the stream's cache: nobody may
// modify it once it has been published. Segments are passed by value; the
// struct is small and copying it never copies Data.
type Segment struct {
	Kind Kind

	// Seq numbers the init and media segments of a stream: +1 for each, the
	// same for every subscriber, growing across publisher sessions. A
	// subscriber that sees a gap knows segments were skipped. Start and End
	// carry the Seq of the last segment before them in process, and 0 from
	// a SubscribeClient (protocol v1 sends no seq with them).
	Seq uint64

	// Keyframe is set on media segments a decoder can start from: for WebM,
	// those that begin a Cluster whose first video block is a keyframe.
	Keyframe bool

	// Discontinuity is set on a media segment that does not continue the one
	// the subscriber received before it: segments were skipped (the
	// subscriber was too slow), or a new init came before it (a new
	// publisher session, or the publisher's encoder restarted). A player
	// resets its timeline there. The first media segment a subscriber
	// receives never carries it.
	Discontinuity bool

	// MIME is the stream's media type, e.g. `video/webm;codecs=vp9,opus`.
	// Set on KindStart only.
	MIME string

	// Data is the segment's bytes (nil for Start and End).
	Data []byte

	// LegacyFiles, on an init, says that the media after it comes in the
	// standalone files of a legacy publisher, each ending at a media segment
	// with FileEnd: legacy subscribers pass each file on as it was sent,
	// without waiting for the next one. A bridge carries both, like Keyframe,
	// so that a legacy viewer on another node gets the same files.
	LegacyFiles bool
	FileEnd     bool
}

func (s Segment) String() string {
	return fmt.Sprintf("%s seq=%d keyframe=%t discontinuity=%t bytes=%d", s.Kind, s.Seq, s.Keyframe, s.Discontinuity, len(s.Data))
}
