package natsrelay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	relay "github.com/segrelay/relay"
)

// Options configure a Bridge. The zero value works: subjects under
// "segrelay", claims in the JetStream key-value bucket "segrelay-claims"
// with a 10 s TTL.
type Options struct {
	// Prefix starts every subject the bridge uses (default "segrelay"):
	// PREFIX.seg.NAME carries a stream's segments, PREFIX.gop.NAME is where
	// its publishing node answers catch-up requests. NAME is the stream
	// name with its dots as "=". Bridges that talk to each other need the
	// same prefix (and the same ClaimBucket).
	Prefix string

	// NodeID names this node in messages and claims (default: random, new
	// for every Bridge). It must be unique in the cluster.
	NodeID string

	// ClaimBucket is the JetStream key-value bucket of the claims that keep
	// one publisher per stream in the cluster (default "segrelay-claims";
	// created if missing, in memory). NoClaims turns claims off, for a
	// NATS without JetStream: then two nodes may publish the same stream.
	ClaimBucket string
	NoClaims    bool
	// ClaimTTL is how long a claim outlives its node: the owner refreshes
	// it every ClaimTTL/3, so a node that died blocks its streams on other
	// nodes for at most this long (default 10 s).
	ClaimTTL time.Duration
	// ClaimReplicas is the bucket's replica count in a NATS cluster
	// (default 1; 3 survives a NATS server's loss).
	ClaimReplicas int

	// SendQueueBytes bounds the segments waiting to go to NATS (default 16
	// MiB). Over it, media is dropped up to the next keyframe and remote
	// nodes see a gap.
	SendQueueBytes int
	// RequestTimeout bounds one claim or catch-up request (default 2 s).
	RequestTimeout time.Duration
	// IdleTimeout: a relayed stream from which nothing came for this long
	// is checked with its publishing node and ended if it has no publisher
	// any more (default 10 s).
	IdleTimeout time.Duration

	// Logger gets claim conflicts and NATS errors (default: discard).
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = "segrelay"
	}
	if o.NodeID == "" {
		var b [8]byte
		rand.Read(b[:])
		o.NodeID = hex.EncodeToString(b[:])
	}
	if o.ClaimBucket == "" {
		o.ClaimBucket = "segrelay-claims"
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 10 * time.Second
	}
	if o.ClaimReplicas <= 0 {
		o.ClaimReplicas = 1
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = 16 << 20
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 2 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// A Bridge connects a Hub to the hubs of other nodes through NATS. It is
// the hub's relay.Bridge: the segments of the hub's own publishers go to
// NATS, the hub's subscribers of streams published elsewhere are fed from
// NATS, and a stream has one publisher in the whole cluster.
type Bridge struct {
	hub  *relay.Hub
	nc   *nats.Conn
	opts Options
	kv   jetstream.KeyValue // nil with NoClaims

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	claims    map[string]*claim
	receivers map[string]*receiver
	stopped   map[string]*receiver // stopped, maybe still ending its relayed session

	out sender

	stats counters
}

// claim is this node's hold on a stream name.
type claim struct {
	ok       bool   // the claim succeeded (or NATS was unreachable)
	rev      uint64 // the key's revision written by this node; 0 when not written
	conflict bool   // another node holds the key (found by a refresh)
}

type counters struct {
	msgsOut, bytesOut, msgsIn, bytesIn atomic.Uint64
	dropped, gaps, resyncs, conflicts  atomic.Uint64
}

// Stats are a Bridge's counters since New.
type Stats struct {
	MsgsOut, BytesOut uint64 // segment messages sent to NATS (parts count one each), and their data bytes
	MsgsIn, BytesIn   uint64 // segment messages received from NATS for the relayed streams
	Dropped           uint64 // media segments not sent: the send queue was full, or NATS was down
	Gaps              uint64 // gaps in the Seq of a relayed stream, each healed by a catch-up
	Resyncs           uint64 // catch-up requests answered or timed out
	Conflicts         uint64 // claims found held by another node when refreshed (after a NATS outage), once per claim
}

// New connects hub to the cluster through nc and returns the running
// Bridge. Call it before the hub serves publishers. Unless
// opts.NoClaims, NATS must have JetStream (nats-server -js): the claims
// live in a key-value bucket, created if missing.
func New(hub *relay.Hub, nc *nats.Conn, opts Options) (*Bridge, error) {
	opts.defaults()
	b := &Bridge{
		hub:       hub,
		nc:        nc,
		opts:      opts,
		claims:    make(map[string]*claim),
		receivers: make(map[string]*receiver),
		stopped:   make(map[string]*receiver),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.out.init(b)
	if !opts.NoClaims {
		if err := b.openBucket(); err != nil {
			b.cancel()
			return nil, fmt.Errorf("natsrelay: claims need JetStream (nats-server -js), or set NoClaims: %w", err)
		}
	}
	if err := hub.SetBridge(b); err != nil {
		b.cancel()
		return nil, err
	}
	b.wg.Add(1)
	go b.out.run()
	if !opts.NoClaims {
		b.wg.Add(1)
		go b.refresh()
	}
	return b, nil
}

func (b *Bridge) openBucket() error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.RequestTimeout)
	defer cancel()
	js, err := jetstream.New(b.nc)
	if err != nil {
		return err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   b.opts.ClaimBucket,
		TTL:      b.opts.ClaimTTL,
		History:  1,
		Storage:  jetstream.MemoryStorage,
		Replicas: b.opts.ClaimReplicas,
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.kv = kv
	b.mu.Unlock()
	return nil
}

// Conn returns the bridge's NATS connection.
func (b *Bridge) Conn() *nats.Conn { return b.nc }

// NodeID returns the node's name in messages and claims.
func (b *Bridge) NodeID() string { return b.opts.NodeID }

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	c := &b.stats
	return Stats{
		MsgsOut: c.msgsOut.Load(), BytesOut: c.bytesOut.Load(),
		MsgsIn: c.msgsIn.Load(), BytesIn: c.bytesIn.Load(),
		Dropped: c.dropped.Load(), Gaps: c.gaps.Load(), Resyncs: c.resyncs.Load(), Conflicts: c.conflicts.Load(),
	}
}

// Close stops the bridge: relayed streams end on this hub, this node's
// claims are deleted, nothing more goes to NATS. The hub keeps serving its
// own publishers' local viewers. Call it after hub.Shutdown (or before, to
// leave the cluster); it does not close nc.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var recvs []*receiver
	for _, r := range b.receivers {
		recvs = append(recvs, r)
	}
	clear(b.receivers)
	claims := b.claims
	b.claims = make(map[string]*claim)
	kv := b.kv
	b.mu.Unlock()

	for _, r := range recvs {
		r.stop()
	}
	for _, r := range recvs {
		<-r.done
	}
	if kv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.RequestTimeout)
		for name, c := range claims {
			if c.rev != 0 && b.nc.IsConnected() {
				kv.Delete(ctx, encodeName(name), jetstream.LastRevision(c.rev))
			}
		}
		cancel()
	}
	b.cancel()
	b.out.close()
	b.wg.Wait()
	return nil
}

// errBusy refuses a publisher: another node holds the stream.
func errBusy(owner string) error {
	return fmt.Errorf("%w on node %s", relay.ErrStreamBusy, owner)
}

// Claim takes stream for a publisher of this node in the cluster-wide
// bucket (relay.Bridge). While NATS is unreachable it allows the
// publisher: local viewers keep working, and the claim is written when
// NATS is back (see the README for what happens if another node took the
// stream meanwhile).
func (b *Bridge) Claim(stream string) error {
	b.mu.Lock()
	if b.closed || b.kv == nil {
		b.mu.Unlock()
		return nil
	}
	if b.claims[stream] != nil {
		b.mu.Unlock()
		return errBusy(b.opts.NodeID) // the hub refuses it anyway
	}
	c := &claim{}
	b.claims[stream] = c
	kv := b.kv
	b.mu.Unlock()

	rev, owner, err := b.takeAnew(kv, stream)
	b.mu.Lock()
	switch {
	case owner != "":
		delete(b.claims, stream)
		b.mu.Unlock()
		return errBusy(owner)
	case err != nil:
		b.opts.Logger.Warn("natsrelay: claim not written, publisher allowed", "stream", stream, "err", err)
	}
	c.ok, c.rev = true, rev
	r := b.receivers[stream]
	b.mu.Unlock()
	if r != nil {
		r.yield() // a relayed session of a publisher that left must not hold the name
	}
	b.reconcile(stream) // the hub has the stream's segments first-hand now
	return nil
}

// take writes the claim of stream: the revision written, or the owner
// when another node holds it, or an error when NATS cannot say.
func (b *Bridge) take(kv jetstream.KeyValue, stream string) (rev uint64, owner string, err error) {
	if !b.nc.IsConnected() {
		return 0, "", nats.ErrConnectionClosed
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.RequestTimeout)
	defer cancel()
	key, me := encodeName(stream), []byte(b.opts.NodeID)
	rev, err = kv.Create(ctx, key, me)
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, "", err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return 0, "", err
	}
	if string(e.Value()) != b.opts.NodeID {
		return 0, string(e.Value()), nil
	}
	rev, err = kv.Update(ctx, key, me, e.Revision())
	return rev, "", err
}

// takeAnew is take, creating the bucket again if it is gone: it lives in
// memory, so a NATS server that restarted has lost it.
func (b *Bridge) takeAnew(kv jetstream.KeyValue, stream string) (rev uint64, owner string, err error) {
	rev, owner, err = b.take(kv, stream)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) {
		if b.openBucket() == nil {
			b.mu.Lock()
			kv = b.kv
			b.mu.Unlock()
			rev, owner, err = b.take(kv, stream)
		}
	}
	return rev, owner, err
}

// Release gives up this node's claim of stream (relay.Bridge).
func (b *Bridge) Release(stream string) {
	defer b.reconcile(stream) // its subscribers may watch another node's publisher next
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.claims[stream]
	delete(b.claims, stream)
	kv := b.kv
	if c == nil || c.rev == 0 || kv == nil || b.closed {
		return
	}
	// Off the publisher's path; the revision keeps a newer claim (of this
	// node, or of another) from being deleted.
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.RequestTimeout)
		defer cancel()
		kv.Delete(ctx, encodeName(stream), jetstream.LastRevision(c.rev))
	}()
}

// refresh keeps this node's claims alive every ClaimTTL/3, and at once
// when NATS is back after an outage (a restarted server has lost them) or
// after a refresh failed, so that the window in which another node could
// take a live stream stays short.
func (b *Bridge) refresh() {
	defer b.wg.Done()
	t := time.NewTicker(min(b.opts.ClaimTTL/3, 250*time.Millisecond))
	defer t.Stop()
	var last time.Time
	retry, connected := false, true
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		was := connected
		connected = b.nc.IsConnected()
		since := time.Since(last)
		due := !was || since >= b.opts.ClaimTTL/3 || (retry && since >= time.Second)
		if !connected || !due {
			continue
		}
		last = time.Now()
		b.mu.Lock()
		names := make([]string, 0, len(b.claims))
		for name, c := range b.claims {
			if c.ok {
				names = append(names, name)
			}
		}
		kv := b.kv
		b.mu.Unlock()
		retry = false
		for _, name := range names {
			if !b.refreshOne(kv, name) {
				retry = true
			}
		}
	}
}

// refreshOne refreshes one claim; false means try again soon.
func (b *Bridge) refreshOne(kv jetstream.KeyValue, name string) bool {
	b.mu.Lock()
	c := b.claims[name]
	var rev uint64
	if c != nil {
		rev = c.rev
	}
	b.mu.Unlock()
	if c == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.RequestTimeout)
	defer cancel()
	var owner string
	newRev, err := kv.Update(ctx, encodeName(name), []byte(b.opts.NodeID), rev)
	if err != nil {
		// Expired, lost with a NATS restart, or never written: take it again.
		newRev, owner, err = b.takeAnew(kv, name)
	}
	switch {
	case owner != "":
		b.mu.Lock()
		first := !c.conflict
		c.conflict = true
		b.mu.Unlock()
		if first {
			b.stats.conflicts.Add(1)
			b.opts.Logger.Warn("natsrelay: another node claimed a stream this node publishes (NATS was unreachable); both publish until one leaves",
				"stream", name, "owner", owner)
		}
		return false // the other may be gone in a moment
	case err != nil:
		b.opts.Logger.Warn("natsrelay: claim not refreshed", "stream", name, "err", err)
		return false
	}
	b.mu.Lock()
	released := b.claims[name] != c
	if !released {
		c.rev, c.conflict = newRev, false
	}
	b.mu.Unlock()
	if released && newRev != 0 {
		// The session ended while the claim was being written.
		kv.Delete(ctx, encodeName(name), jetstream.LastRevision(newRev))
	}
	return true
}

// owns reports whether a publisher of this node holds stream.
func (b *Bridge) owns(stream string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.claims[stream]
	return c != nil && c.ok
}

// Interest starts or stops relaying stream to this hub as its local
// subscribers come and go (relay.Bridge).
func (b *Bridge) Interest(stream string) { b.reconcile(stream) }

// Live asks the cluster whether stream has a live session on another node
// (relay.Bridge): a catch-up request for the session's Start alone, which
// only a node with a live session answers.
func (b *Bridge) Live(ctx context.Context, stream string) (mime string, ok bool) {
	req := nats.NewMsg(b.opts.Prefix + ".gop." + encodeName(stream))
	req.Header.Set(hNode, b.opts.NodeID)
	req.Header.Set(hKind, kindString(relay.KindStart))
	m, err := b.nc.RequestMsgWithContext(ctx, req)
	if err != nil {
		return "", false
	}
	var asm assembler
	seg, _, ok, err := asm.add(m)
	if err != nil || !ok || seg.Kind != relay.KindStart {
		return "", false
	}
	return seg.MIME, true
}

// reconcile relays stream to this hub while the hub has subscribers for it
// and no publisher of its own (whose segments the hub has already).
func (b *Bridge) reconcile(stream string) {
	want := b.hub.SubscriberCount(stream) > 0
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if c := b.claims[stream]; c != nil && c.ok {
		want = false
	}
	r := b.receivers[stream]
	switch {
	case want && r == nil:
		r = newReceiver(b, stream, b.stopped[stream])
		b.receivers[stream] = r
		b.wg.Add(1)
		go r.run()
	case !want && r != nil:
		delete(b.receivers, stream)
		r.stop()
		b.stopped[stream] = r // the next receiver waits for it to end (receiver.run)
	}
}

// Segment queues a segment of this hub's own publisher for NATS
// (relay.Bridge). It never blocks.
func (b *Bridge) Forward(stream string, seg relay.Segment) { b.out.push(stream, seg) }
