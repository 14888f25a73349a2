package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Subprotocol is the WebSocket subprotocol of protocol v1. A client that
// asks for no subprotocol speaks the legacy framing.
const Subprotocol = "segrelay.v1"

// Publisher session modes of protocol v1.
const (
	ModeStream   = "stream"   // binary messages are a WebM byte stream, cut anywhere
	ModeSegments = "segments" // each segment is declared, then sent as binary messages
)

// message is a protocol v1 control message (a JSON text message). Fields
// not used by a type are left out when encoding and ignored when decoding.
type message struct {
	Type string `json:"type"`

	// start (both directions)
	MIME   string `json:"mime,omitempty"`
	Mode   string `json:"mode,omitempty"`   // publisher → hub
	Stream string `json:"stream,omitempty"` // hub → subscriber

	// segment and init
	Seq           uint64 `json:"seq,omitempty"`
	Size          *int64 `json:"size,omitempty"`
	Keyframe      bool   `json:"keyframe,omitempty"`
	Init          bool   `json:"init,omitempty"`
	Discontinuity bool   `json:"discontinuity,omitempty"`

	// stats (hub → publisher)
	Subscribers *int `json:"subscribers,omitempty"`
}

// errBadJSON marks a control message that is not a JSON object with a
// string "type" (close code 1007).
var errBadJSON = errors.New("relay: control message is not a JSON object with a type")

// parseMessage decodes one control message. It rejects what is not a JSON
// object with a string "type"; it does not judge the type, which depends on
// who receives it and when.
func parseMessage(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("%w: %v", errBadJSON, err)
	}
	if m.Type == "" {
		return message{}, fmt.Errorf("%w: no \"type\"", errBadJSON)
	}
	if m.Size != nil && *m.Size < 0 {
		return message{}, fmt.Errorf("%w: negative size %d", errBadJSON, *m.Size)
	}
	return m, nil
}

// appendHeader appends the control message announcing seg to a
// subscriber. It is hand-written so the hot path does not allocate.
func appendHeader(b []byte, seg *Segment, stream string) []byte {
	switch seg.Kind {
	case KindStart:
		m, _ := json.Marshal(message{Type: "start", Stream: stream, MIME: seg.MIME})
		return append(b, m...)
	case KindEnd:
		return append(b, `{"type":"end"}`...)
	case KindInit:
		b = append(b, `{"type":"init","seq":`...)
		b = strconv.AppendUint(b, seg.Seq, 10)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(len(seg.Data)), 10)
		return append(b, '}')
	}
	b = append(b, `{"type":"segment","seq":`...)
	b = strconv.AppendUint(b, seg.Seq, 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(len(seg.Data)), 10)
	b = append(b, `,"keyframe":`...)
	b = strconv.AppendBool(b, seg.Keyframe)
	b = append(b, `,"discontinuity":`...)
	b = strconv.AppendBool(b, seg.Discontinuity)
	return append(b, '}')
}
