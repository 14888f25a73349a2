package natsrelay

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
)

// resyncEvery spaces catch-up requests that found nothing to catch up
// with, or failed.
const resyncEvery = time.Second

// A receiver relays one stream published on another node to this hub
// while the hub has subscribers for it: it subscribes to the stream's
// subject and feeds the hub through a relayed Publisher, so the hub keeps
// its own init and GOP cache for local late joiners.
//
// It follows one publisher session at a time and expects every Seq of it
// in order. Anything else (a gap, a part lost, a session it did not see
// start, a NATS reconnect, silence) makes it catch up: it asks the
// publishing node for the session's Start, init and media since the last
// keyframe, writes the init again (so the media after it carries
// Discontinuity on this hub) and that media, and goes on from the
// publishing hub's latest Seq. Media that would not start at a keyframe
// is never written.
type receiver struct {
	b      *Bridge
	stream string
	prev   *receiver // the stopped receiver of the same stream, if any
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// The run goroutine's state.
	asm        assembler
	session    string // the session followed, "" for none
	synced     bool   // expect is the next Seq of session
	expect     uint64
	waitKey    bool // write no media before a keyframe
	lastMsg    time.Time
	lastResync time.Time
	noSession  bool // the last catch-up found no live session
	resync     bool // a catch-up is due
	connected  bool

	mu  sync.Mutex // pub, for yield
	pub *relay.Publisher
}

func newReceiver(b *Bridge, stream string, prev *receiver) *receiver {
	r := &receiver{b: b, stream: stream, prev: prev, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(b.ctx)
	return r
}

func (r *receiver) stop() { r.cancel() }

func (r *receiver) run() {
	b := r.b
	defer b.wg.Done()
	defer close(r.done)
	defer func() {
		b.mu.Lock()
		if b.stopped[r.stream] == r {
			delete(b.stopped, r.stream)
		}
		b.mu.Unlock()
	}()
	if r.prev != nil {
		<-r.prev.done // its relayed session ended: the name is free
	}
	ch := make(chan *nats.Msg, 4096)
	sub, err := b.nc.ChanSubscribe(b.opts.Prefix+".seg."+encodeName(r.stream), ch)
	if err != nil {
		b.opts.Logger.Warn("natsrelay: cannot subscribe", "stream", r.stream, "err", err)
		<-r.ctx.Done()
		return
	}
	defer r.closePub()
	defer sub.Unsubscribe()
	r.connected = b.nc.IsConnected()
	r.lastMsg = time.Now()
	r.catchUp()
	tick := time.NewTicker(resyncEvery / 4)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case m := <-ch:
			r.lastMsg = time.Now()
			r.handle(m)
		case now := <-tick.C:
			connected := b.nc.IsConnected()
			if connected && !r.connected {
				r.resync = true // what was missed while NATS was away
			}
			r.connected = connected
			if r.hasPub() && now.Sub(r.lastMsg) > b.opts.IdleTimeout {
				r.resync = true // did the publisher go while NATS was away?
				r.lastMsg = now
			}
		}
		if r.resync && r.mayCatchUp() {
			r.catchUp()
		}
	}
}

// handle takes one message of the stream's subject.
func (r *receiver) handle(m *nats.Msg) {
	b := r.b
	if m.Header.Get(hNode) == b.opts.NodeID {
		return // this node's own publisher
	}
	b.stats.msgsIn.Add(1)
	b.stats.bytesIn.Add(uint64(len(m.Data)))
	seg, session, ok, err := r.asm.add(m)
	if err != nil {
		r.gap()
		return
	}
	if !ok {
		return
	}
	if b.owns(r.stream) {
		r.yield()
		return
	}
	switch seg.Kind {
	case relay.KindStart:
		if session == r.session && r.synced && seg.Seq < r.expect && r.hasPub() {
			return // a catch-up brought this session already
		}
		r.open(session, seg.MIME)
		r.synced, r.expect, r.waitKey = true, seg.Seq+1, false
	case relay.KindEnd:
		if session == r.session {
			r.closePub()
			r.session, r.synced = "", false
		}
	default:
		switch {
		case session != r.session || !r.synced:
			r.gap() // a session whose start was missed
		case seg.Seq < r.expect:
			// had it already (from a catch-up)
		case seg.Seq > r.expect:
			r.gap()
		default:
			r.expect++
			r.write(seg)
		}
	}
}

// gap notes that segments were lost: catch up before writing more.
func (r *receiver) gap() {
	if !r.resync {
		r.b.stats.gaps.Add(1)
	}
	r.synced, r.resync = false, true
	if r.mayCatchUp() {
		r.catchUp()
	}
}

// mayCatchUp spaces catch-ups: one a second, or ten when the last one
// found no session (one has started since).
func (r *receiver) mayCatchUp() bool {
	since := time.Since(r.lastResync)
	return since >= resyncEvery || (r.noSession && since >= resyncEvery/10)
}

// write passes an init or media segment to the hub.
func (r *receiver) write(seg relay.Segment) {
	if seg.Kind == relay.KindMedia && r.waitKey {
		if !seg.Keyframe {
			return
		}
		r.waitKey = false
	}
	r.mu.Lock()
	pub := r.pub
	r.mu.Unlock()
	if pub == nil {
		// The hub refused the relayed session (e.g. WithMaxStreams): try
		// again, at the pace of catch-ups.
		r.session = ""
		r.gap()
		return
	}
	if err := pub.WriteSegment(relay.Segment{Kind: seg.Kind, Keyframe: seg.Keyframe, Data: seg.Data, LegacyFiles: seg.LegacyFiles, FileEnd: seg.FileEnd}); err != nil {
		r.b.opts.Logger.Warn("natsrelay: relayed segment refused", "stream", r.stream, "err", err)
		r.closePub()
		r.session = ""
		r.gap()
	}
}

// open starts relaying session: a new relayed publisher on the hub.
func (r *receiver) open(session, mime string) {
	r.closePub()
	r.session = session
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b.owns(r.stream) {
		return
	}
	pub, err := r.b.hub.PublishRelayed(r.ctx, r.stream, mime)
	if err != nil {
		r.b.opts.Logger.Warn("natsrelay: cannot relay a stream", "stream", r.stream, "err", err)
		return
	}
	r.pub = pub
}

func (r *receiver) hasPub() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pub != nil
}

// closePub ends the relayed session on the hub, if any: its subscribers
// get End.
func (r *receiver) closePub() {
	r.mu.Lock()
	pub := r.pub
	r.pub = nil
	r.mu.Unlock()
	if pub != nil {
		pub.Close()
	}
}

// yield ends the relayed session because a publisher of this node took the
// stream (Bridge.Claim). Safe from any goroutine.
func (r *receiver) yield() { r.closePub() }

// errNoSession: the catch-up found no live session of the stream.
var errNoSession = errors.New("natsrelay: no live session")

// catchUp asks the publishing node for the live session and writes what
// the hub needs to start from it.
func (r *receiver) catchUp() {
	b := r.b
	r.lastResync, r.resync, r.noSession = time.Now(), false, false
	if b.owns(r.stream) {
		r.yield()
		return
	}
	segs, session, seq, err := r.request()
	b.stats.resyncs.Add(1)
	switch {
	case errors.Is(err, errNoSession):
		// Nobody publishes it: end ours; a Start will come when someone does.
		r.closePub()
		r.session, r.synced, r.noSession = "", false, true
		return
	case err != nil:
		if r.ctx.Err() == nil {
			r.resync = true
		}
		return
	}
	if session == r.session && r.synced && r.expect == seq+1 && r.hasPub() {
		return // nothing was missed
	}
	if session != r.session || !r.hasPub() {
		r.open(session, segs[0].MIME)
		if !r.hasPub() {
			r.session, r.synced, r.resync = "", false, true // try again later
			return
		}
	}
	r.waitKey = true
	for _, seg := range segs[1:] {
		r.write(seg)
	}
	r.synced, r.expect = true, seq+1
}

// request makes one catch-up request: the session's segments (Start
// first), its id and the publishing hub's latest Seq.
func (r *receiver) request() (segs []relay.Segment, session string, seq uint64, err error) {
	b := r.b
	inbox := b.nc.NewInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, "", 0, err
	}
	defer sub.Unsubscribe()
	req := nats.NewMsg(b.opts.Prefix + ".gop." + encodeName(r.stream))
	req.Reply = inbox
	req.Header.Set(hNode, b.opts.NodeID)
	if err := b.nc.PublishMsg(req); err != nil {
		return nil, "", 0, err
	}
	ctx, cancel := context.WithTimeout(r.ctx, b.opts.RequestTimeout)
	defer cancel()
	var asm assembler
	from := "" // the node answering; two answer only while two claim the stream (see the README)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, "", 0, errNoSession
		}
		if err != nil {
			return nil, "", 0, err
		}
		if node := m.Header.Get(hNode); from == "" {
			from = node
		} else if node != from {
			continue
		}
		if m.Header.Get(hKind) == kindDone {
			seq, err := strconv.ParseUint(m.Header.Get(hSeq), 10, 64)
			if err != nil || len(segs) < 2 || segs[0].Kind != relay.KindStart || segs[1].Kind != relay.KindInit {
				return nil, "", 0, errNoSession
			}
			return segs, m.Header.Get(hSession), seq, nil
		}
		seg, _, ok, err := asm.add(m)
		if err != nil {
			return nil, "", 0, err
		}
		if ok {
			segs = append(segs, seg)
		}
	}
}
