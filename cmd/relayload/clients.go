package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	relay "github.com/segrelay/relay"

	"github.com/segrelay/relay/internal/ebml"
)

const mime = "video/webm;codecs=vp8"

// RELAYLOAD_DEBUG=1 prints the first bytes of the first binary messages.
var debugOn = os.Getenv("RELAYLOAD_DEBUG") != ""

// media is what the publisher sends, built once; each segment's stamp and
// keyframe flag are written in place before it is sent.
type media struct {
	v1       bool // protocol v1 (segments, stream); else legacy framing
	mode     string
	init     []byte
	payload  []byte // segments: one segment; stream: one Cluster; legacy: one file (init + Cluster)
	stampAt  int    // where the stamp is in what a subscriber receives as one unit
	keyAt    int    // the first block's flags byte in payload (-1: none)
	segBytes int
}

func newMedia(c *config) *media {
	m := &media{mode: c.mode, v1: c.mode == "segments" || c.mode == "stream", keyAt: -1}
	m.segBytes = max(stampLen+64, int(c.bitrate/8*c.segment.Seconds()))
	frames := max(1, int(float64(c.fps)*c.segment.Seconds()))
	frameMs := int(c.segment.Milliseconds()) / frames
	switch c.mode {
	case "segments":
		m.init = []byte("relayload init segment")
		m.payload = make([]byte, m.segBytes)
	case "stream":
		m.init = webmInit()
		m.payload = webmCluster(nil, 0, frames, m.segBytes, true, frameMs)
		m.stampAt, m.keyAt = clusterStampOffset, clusterStampOffset-1
	default: // legacy, chunkrelay: standalone files, each starting at a keyframe
		m.init = webmInit()
		m.payload = webmCluster(append([]byte(nil), m.init...), 0, frames, m.segBytes-len(m.init), true, frameMs)
		m.stampAt = len(m.init) + clusterStampOffset
	}
	return m
}

// prepare stamps segment idx; key sets its keyframe flag.
func (m *media) prepare(idx uint64, key bool, c *config) {
	putStamp(m.payload[m.stampAt:], time.Now(), idx)
	if m.mode == "stream" {
		// Cluster Timecode, in ms.
		tc := uint32(idx * uint64(c.segment.Milliseconds()))
		copy(m.payload[4+8+2:], []byte{byte(tc >> 24), byte(tc >> 16), byte(tc >> 8), byte(tc)})
		if key {
			m.payload[m.keyAt] = 0x80
		} else {
			m.payload[m.keyAt] = 0
		}
	}
}

// publisher sends one segment per -segment, in -chunk-byte messages.
type publisher struct {
	c     *config
	m     *media
	conn  *websocket.Conn
	cl    *relay.PublishClient
	stop  chan struct{}
	done  chan struct{}
	ready chan error
	err   error

	next     atomic.Uint64 // index of the next segment
	firstIdx atomic.Uint64 // first index of the measurement window

	lat    hist // subscribers' latencies, window only
	writes hist // each publisher message write
	segs   hist // each whole segment
	over20 atomic.Int64
	late   atomic.Int64

	readDone chan struct{}
	readErr  atomic.Value // why the publisher's connection ended (string)
}

func (p *publisher) write(typ websocket.MessageType, b []byte) error {
	t := time.Now()
	err := p.conn.Write(context.Background(), typ, b)
	p.note(time.Since(t))
	return err
}

func (p *publisher) note(d time.Duration) {
	p.writes.add(d)
	if d > 20*time.Millisecond {
		p.over20.Add(1)
	}
}

// chunks writes b in -chunk-byte binary messages; a legacy file whose size
// is a multiple of the chunk size ends with an empty message.
func (p *publisher) chunks(b []byte) error {
	n := p.c.chunk
	for len(b) > 0 {
		k := min(n, len(b))
		if err := p.write(websocket.MessageBinary, b[:k]); err != nil {
			return err
		}
		b = b[k:]
		if len(b) == 0 && k == n && !p.m.v1 {
			return p.write(websocket.MessageBinary, nil)
		}
	}
	return nil
}

func (p *publisher) sendSegment(b []byte, key, init bool) error {
	if p.cl != nil {
		kind := relay.KindMedia
		if init {
			kind = relay.KindInit
		}
		t := time.Now()
		err := p.cl.SendSegment(context.Background(), relay.Segment{Kind: kind, Keyframe: key, Data: b})
		p.note(time.Since(t))
		return err
	}
	decl := fmt.Sprintf(`{"type":"segment","size":%d,"keyframe":%t,"init":%t}`, len(b), key, init)
	if err := p.write(websocket.MessageText, []byte(decl)); err != nil {
		return err
	}
	return p.chunks(b)
}

func (p *publisher) run(ctx context.Context, url string) {
	defer close(p.done)
	c, m := p.c, p.m
	err := func() error {
		if c.mode == "segments" && c.chunk == 0 {
			cl, err := relay.DialPublish(ctx, url, relay.PublishStart{MIME: mime, Mode: relay.ModeSegments}, nil)
			if err != nil {
				return err
			}
			p.cl = cl
			return p.sendSegment(m.init, false, true)
		}
		opts := &websocket.DialOptions{}
		if m.v1 {
			opts.Subprotocols = []string{relay.Subprotocol}
		}
		conn, _, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			return err
		}
		p.conn = conn
		p.readDone = make(chan struct{})
		go func() { // stats messages, the close frame
			defer close(p.readDone)
			for {
				if _, _, err := conn.Read(context.Background()); err != nil {
					p.readErr.Store(err.Error())
					return
				}
			}
		}()
		switch c.mode {
		case "segments":
			if err := p.write(websocket.MessageText, []byte(`{"type":"start","mime":"`+mime+`","mode":"segments"}`)); err != nil {
				return err
			}
			return p.sendSegment(m.init, false, true)
		case "stream":
			if err := p.write(websocket.MessageText, []byte(`{"type":"start","mode":"stream"}`)); err != nil {
				return err
			}
			return p.chunks(m.init)
		}
		return nil
	}()
	p.ready <- err
	if err != nil {
		p.err = err
		return
	}
	tick := time.NewTicker(c.segment)
	defer tick.Stop()
	for {
		idx := p.next.Load()
		key := idx%uint64(max(1, c.keyEvery)) == 0
		start := time.Now()
		m.prepare(idx, key, c)
		var err error
		switch c.mode {
		case "segments":
			err = p.sendSegment(m.payload, key, false)
		default:
			err = p.chunks(m.payload)
		}
		d := time.Since(start)
		p.segs.add(d)
		if err != nil {
			if e, ok := p.readErr.Load().(string); ok {
				err = fmt.Errorf("%w (the connection ended: %s)", err, e)
			}
			p.err = err
			return
		}
		p.next.Add(1)
		if d > c.segment {
			p.late.Add(1)
		}
		select {
		case <-tick.C:
		case <-p.stop:
			return
		}
	}
}

func (p *publisher) close() {
	if p.cl != nil {
		p.cl.Close()
		return
	}
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if p.m.v1 {
			p.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"end"}`))
		}
		p.conn.Close(websocket.StatusNormalClosure, "")
		p.conn.CloseNow()
		<-p.readDone
	}
}

// bufPool holds read buffers: a subscriber takes one only while it reads a
// message, so thousands of subscribers share a few.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

type subscriber struct {
	c    *config
	m    *media
	p    *publisher
	conn *websocket.Conn

	msgs, bytes, got, gaps atomic.Int64
	ended, stopping        atomic.Bool
}

func dialSubscriber(ctx context.Context, c *config, url string, m *media, p *publisher) (*subscriber, error) {
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	opts := &websocket.DialOptions{}
	if m.v1 {
		opts.Subprotocols = []string{relay.Subprotocol}
	}
	conn, _, err := websocket.Dial(dctx, url, opts)
	if err != nil {
		return nil, err
	}
	if m.v1 && conn.Subprotocol() != relay.Subprotocol {
		conn.CloseNow()
		return nil, errors.New("the server does not speak " + relay.Subprotocol)
	}
	conn.SetReadLimit(-1)
	return &subscriber{c: c, m: m, p: p, conn: conn}, nil
}

func (s *subscriber) run() {
	var err error
	if s.m.v1 {
		err = s.runV1()
	} else {
		err = s.runLegacy()
	}
	if err != nil && !s.stopping.Load() {
		s.ended.Store(true)
	}
}

// record notes a stamped unit received at now.
func (s *subscriber) record(stamp []byte, now time.Time) {
	sent, idx, ok := readStamp(stamp)
	if !ok || idx < s.p.firstIdx.Load() {
		return
	}
	s.p.lat.add(now.Sub(time.Unix(0, sent)))
	s.got.Add(1)
}

// readMsg reads a whole message into buf (reusing it when the message is
// bigger), keeping its first len(head) bytes in head. It returns the size.
func readMsg(r io.Reader, buf, head []byte) (n, h int, err error) {
	for {
		k, err := r.Read(buf)
		if h < len(head) {
			h += copy(head[h:], buf[:k])
		}
		n += k
		if err == io.EOF {
			return n, h, nil
		}
		if err != nil {
			return n, h, err
		}
	}
}

// runV1 reads protocol v1: a JSON header, then a binary message for init
// and segment; checks that seq grows by one.
func (s *subscriber) runV1() error {
	var hdr [512]byte
	var head [clusterStampOffset + stampLen]byte
	need := s.m.stampAt + stampLen
	var lastSeq uint64
	for {
		typ, r, err := s.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		bp := bufPool.Get().(*[]byte)
		if typ == websocket.MessageText {
			n, _, err := readMsg(r, *bp, hdr[:])
			bufPool.Put(bp)
			if err != nil {
				return err
			}
			s.msgs.Add(1)
			kind, seq, ok := parseHeader(hdr[:min(n, len(hdr))])
			if ok && kind == "segment" {
				if lastSeq != 0 && seq != lastSeq+1 {
					s.gaps.Add(int64(seq - lastSeq - 1))
				}
				lastSeq = seq
			} else if ok && kind == "init" {
				lastSeq = 0 // a joiner's first media follows its init with a gap
			}
			continue
		}
		n, h, err := readMsg(r, *bp, head[:])
		bufPool.Put(bp)
		if err != nil {
			return err
		}
		now := time.Now()
		if debugOn && s.msgs.Load() < 40 {
			fmt.Fprintf(os.Stderr, "debug: binary %d bytes: % x\n", n, head[:min(h, len(head))])
		}
		s.msgs.Add(1)
		s.bytes.Add(int64(n))
		switch {
		case s.m.mode == "segments":
			if h >= need {
				s.record(head[s.m.stampAt:need], now)
			}
		case bytes.HasPrefix(head[:h], clusterID) && h >= clusterStampOffset+stampLen:
			// A piece that starts a Cluster and holds its first block.
			s.record(head[clusterStampOffset:], now)
		case h >= blockStampOffset+stampLen && head[0] == ebml.IDSimpleBlock:
			// A piece that starts with a block: the hub cut the Cluster's
			// start off before its first block was whole.
			s.record(head[blockStampOffset:], now)
		}
	}
}

// parseHeader reads type and seq of the hub's control messages, quickly
// for the hub's own layout, with encoding/json otherwise.
func parseHeader(b []byte) (kind string, seq uint64, ok bool) {
	for _, k := range []string{"segment", "init"} {
		prefix := `{"type":"` + k + `","seq":`
		if bytes.HasPrefix(b, []byte(prefix)) {
			rest := b[len(prefix):]
			i := 0
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				i++
			}
			if v, err := strconv.ParseUint(string(rest[:i]), 10, 64); err == nil {
				return k, v, true
			}
		}
	}
	var m struct {
		Type string `json:"type"`
		Seq  uint64 `json:"seq"`
	}
	if json.Unmarshal(b, &m) != nil {
		return "", 0, false
	}
	return m.Type, m.Seq, true
}

// runLegacy reads the legacy framing: files in chunks, a message shorter
// than the chunk size ending each one.
func (s *subscriber) runLegacy() error {
	need := s.m.stampAt + stampLen
	head := make([]byte, need)
	h := 0
	for {
		_, r, err := s.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		bp := bufPool.Get().(*[]byte)
		n, k, err := readMsg(r, *bp, head[h:])
		bufPool.Put(bp)
		if err != nil {
			return err
		}
		h += k
		s.msgs.Add(1)
		s.bytes.Add(int64(n))
		if n < s.c.chunk {
			if h >= need {
				s.record(head[s.m.stampAt:need], time.Now())
			}
			h = 0
		}
	}
}
