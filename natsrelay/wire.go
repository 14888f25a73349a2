package natsrelay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
)

// NATS headers of a segment message. A segment larger than what fits in
// one message under the server's max payload is sent as consecutive
// messages with Segrelay-Part "i/n"; the others are the same on every part.
const (
	hNode    = "Segrelay-Node"          // the sending node
	hSession = "Segrelay-Session"       // the publisher session, unique in the cluster
	hKind    = "Segrelay-Kind"          // start, init, media, end; done ends a catch-up reply
	hSeq     = "Segrelay-Seq"           // the segment's Seq on the publishing hub
	hKey     = "Segrelay-Keyframe"      // "1" on keyframes
	hDisc    = "Segrelay-Discontinuity" // "1" where the publishing hub marked one
	hMIME    = "Segrelay-Mime"          // on start
	hFiles   = "Segrelay-Legacy-Files"  // "1" on an init whose media comes in a legacy publisher's files
	hFileEnd = "Segrelay-File-End"      // "1" on the last segment of such a file
	hPart    = "Segrelay-Part"          // "i/n" when the segment is split
)

const kindDone = "done"

// headerRoom is what a message's headers may take of the max payload.
const headerRoom = 1024

// encodeName maps a stream name to one subject token and KV key: the dots
// a name may hold would make several tokens (and ".." an invalid subject),
// so they become "=", which no stream name has.
func encodeName(name string) string { return strings.ReplaceAll(name, ".", "=") }

func kindString(k relay.Kind) string {
	switch k {
	case relay.KindStart:
		return "start"
	case relay.KindInit:
		return "init"
	case relay.KindMedia:
		return "media"
	case relay.KindEnd:
		return "end"
	}
	return ""
}

func parseKind(s string) relay.Kind {
	switch s {
	case "start":
		return relay.KindStart
	case "init":
		return relay.KindInit
	case "media":
		return relay.KindMedia
	case "end":
		return relay.KindEnd
	}
	return 0
}

// chunkSize is the most segment bytes one message carries.
func chunkSize(maxPayload int64) int {
	if maxPayload <= 2*headerRoom {
		return int(max(maxPayload/2, 1))
	}
	return int(maxPayload - headerRoom)
}

// segmentMsgs returns the messages that carry seg to subject.
func segmentMsgs(subject, node, session string, seg relay.Segment, maxPayload int64) []*nats.Msg {
	size := chunkSize(maxPayload)
	n := max(1, (len(seg.Data)+size-1)/size)
	msgs := make([]*nats.Msg, 0, n)
	for i := range n {
		m := nats.NewMsg(subject)
		m.Header.Set(hNode, node)
		m.Header.Set(hSession, session)
		m.Header.Set(hKind, kindString(seg.Kind))
		m.Header.Set(hSeq, strconv.FormatUint(seg.Seq, 10))
		if seg.Keyframe {
			m.Header.Set(hKey, "1")
		}
		if seg.Discontinuity {
			m.Header.Set(hDisc, "1")
		}
		if seg.LegacyFiles {
			m.Header.Set(hFiles, "1")
		}
		if seg.FileEnd {
			m.Header.Set(hFileEnd, "1")
		}
		if seg.Kind == relay.KindStart {
			m.Header.Set(hMIME, seg.MIME)
		}
		if n > 1 {
			m.Header.Set(hPart, fmt.Sprintf("%d/%d", i, n))
		}
		m.Data = seg.Data[min(i*size, len(seg.Data)):min((i+1)*size, len(seg.Data))]
		msgs = append(msgs, m)
	}
	return msgs
}

// errBadMessage: a message that is not a segment, or a part out of order.
var errBadMessage = errors.New("natsrelay: bad or incomplete segment message")

// An assembler rejoins the parts of split segments. Parts of one segment
// come in order from one sender, so a part out of place means some were
// lost.
type assembler struct {
	session string
	seq     uint64
	next, n int
	parts   [][]byte
	size    int
}

// add takes one message. It returns the segment and its session once the
// segment is complete, ok false while parts are missing, or errBadMessage.
func (a *assembler) add(m *nats.Msg) (seg relay.Segment, session string, ok bool, err error) {
	seg.Kind = parseKind(m.Header.Get(hKind))
	if seg.Kind == 0 {
		return seg, "", false, errBadMessage
	}
	seq, err := strconv.ParseUint(m.Header.Get(hSeq), 10, 64)
	if err != nil {
		return seg, "", false, errBadMessage
	}
	seg.Seq = seq
	seg.Keyframe = m.Header.Get(hKey) == "1"
	seg.Discontinuity = m.Header.Get(hDisc) == "1"
	seg.LegacyFiles = m.Header.Get(hFiles) == "1"
	seg.FileEnd = m.Header.Get(hFileEnd) == "1"
	seg.MIME = m.Header.Get(hMIME)
	session = m.Header.Get(hSession)
	part := m.Header.Get(hPart)
	if part == "" {
		if a.n > 0 {
			a.reset()
			return seg, "", false, errBadMessage
		}
		seg.Data = m.Data
		return seg, session, true, nil
	}
	is, ns, _ := strings.Cut(part, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		a.reset()
		return seg, "", false, errBadMessage
	}
	if i == 0 {
		if a.n > 0 {
			a.reset()
			err = errBadMessage // the last segment lost its end; this one may be whole
		}
		a.session, a.seq, a.n = session, seq, n
	} else if a.n == 0 || i != a.next || n != a.n || seq != a.seq || session != a.session {
		a.reset()
		return seg, "", false, errBadMessage
	}
	a.parts = append(a.parts, m.Data)
	a.size += len(m.Data)
	a.next = i + 1
	if a.next < a.n {
		return seg, "", false, err
	}
	data := make([]byte, 0, a.size)
	for _, p := range a.parts {
		data = append(data, p...)
	}
	a.reset()
	seg.Data = data
	return seg, session, true, err
}

func (a *assembler) reset() {
	clear(a.parts)
	*a = assembler{parts: a.parts[:0]}
}
