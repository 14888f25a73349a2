package natsrelay

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsServer is an embedded nats-server with JetStream on loopback, which
// a test can stop and start again on the same port.
type natsServer struct {
	t    *testing.T
	opts server.Options
	srv  *server.Server
}

func startNATS(t *testing.T, maxPayload int32) *natsServer {
	t.Helper()
	n := &natsServer{t: t, opts: server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		MaxPayload: maxPayload,
		NoLog:      true,
		NoSigs:     true,
	}}
	n.start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	opts := n.opts
	s, err := server.NewServer(&opts)
	require.NoError(n.t, err)
	s.Start()
	require.True(n.t, s.ReadyForConnections(10*time.Second), "nats-server did not start")
	n.srv = s
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// node is one app instance: a Hub on an httptest server, its NATS
// connection and its Bridge.
type node struct {
	t      *testing.T
	name   string
	hub    *relay.Hub
	srv    *httptest.Server
	nc     *nats.Conn
	bridge *Bridge
	down   bool
}

func newNode(t *testing.T, ns *natsServer, name string, opts Options) *node {
	t.Helper()
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0), nats.Name(name))
	require.NoError(t, err)
	hub := relay.NewHub()
	if opts.NodeID == "" {
		opts.NodeID = name
	}
	b, err := New(hub, nc, opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	n := &node{t: t, name: name, hub: hub, srv: httptest.NewServer(mux), nc: nc, bridge: b}
	t.Cleanup(n.stop)
	return n
}

// stop shuts the node down in the order an app does.
func (n *node) stop() {
	if n.down {
		return
	}
	n.down = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.hub.Shutdown(ctx)
	n.bridge.Close()
	n.nc.Close()
	n.srv.Close()
}

// crash stops the node as a killed process would: its NATS connection
// goes first, so its claims are not deleted.
func (n *node) crash() {
	n.nc.Close()
	n.stop()
}

func (n *node) url(route string) string {
	return "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/live/" + route
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, or fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// media is a test publisher's segments: an init, and media segments whose
// first 8 bytes are their index, a keyframe every keyEvery.
type media struct {
	init     []byte
	size     int
	keyEvery int
	next     int
}

func newMedia(tag string, size, keyEvery int) *media {
	return &media{init: []byte("init-" + tag), size: size, keyEvery: keyEvery}
}

func (m *media) segment() relay.Segment {
	data := make([]byte, max(m.size, 8))
	binary.BigEndian.PutUint64(data, uint64(m.next))
	for i := 8; i < len(data); i++ {
		data[i] = byte(m.next + i)
	}
	seg := relay.Segment{Kind: relay.KindMedia, Keyframe: m.next%m.keyEvery == 0, Data: data}
	m.next++
	return seg
}

func index(seg relay.Segment) int { return int(binary.BigEndian.Uint64(seg.Data)) }

// segmentSource is what the tests read segments from: a SubscribeClient
// or an in-process Subscriber.
type segmentSource interface {
	Next(ctx context.Context) (relay.Segment, error)
}

// viewer reads a stream and checks that it never gets media it cannot
// decode: its first media after an init is a keyframe, and media that does
// not follow the one before (index+1) is a keyframe marked Discontinuity.
type viewer struct {
	t      *testing.T
	src    segmentSource
	inits  [][]byte
	starts int
	ends   int
	media  []int // indexes, in order
	discs  []int // indexes of the media marked Discontinuity
	prev   int
	afterI bool // the next media follows an init
}

func newViewer(t *testing.T, src segmentSource) *viewer { return &viewer{t: t, src: src, prev: -1} }

// next reads one segment and checks it.
func (v *viewer) next(ctx context.Context) relay.Segment {
	v.t.Helper()
	seg, err := v.src.Next(ctx)
	require.NoError(v.t, err)
	switch seg.Kind {
	case relay.KindStart:
		v.starts++
	case relay.KindEnd:
		v.ends++
	case relay.KindInit:
		v.inits = append(v.inits, seg.Data)
		v.afterI = true
	case relay.KindMedia:
		i := index(seg)
		if v.afterI || v.prev < 0 {
			require.True(v.t, seg.Keyframe, "media %d after an init is not a keyframe", i)
		}
		if v.prev >= 0 && i != v.prev+1 && !v.afterI {
			require.True(v.t, seg.Keyframe && seg.Discontinuity, "media %d after %d: a jump without a keyframe marked discontinuity", i, v.prev)
		}
		if seg.Discontinuity {
			v.discs = append(v.discs, i)
		}
		v.afterI = false
		v.prev = i
		v.media = append(v.media, i)
	}
	return seg
}

// until reads until media index i (or later) came.
func (v *viewer) until(ctx context.Context, i int) {
	v.t.Helper()
	for v.prev < i {
		v.next(ctx)
	}
}

// untilKind reads until a segment of kind k came.
func (v *viewer) untilKind(ctx context.Context, k relay.Kind) relay.Segment {
	v.t.Helper()
	for {
		if seg := v.next(ctx); seg.Kind == k {
			return seg
		}
	}
}
