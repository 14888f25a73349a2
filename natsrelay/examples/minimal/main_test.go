package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/examples/minimal/app"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Two instances of the example and one NATS server: a stream published on
// one is watched on the other.
func TestTwoInstances(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	require.True(t, ns.ReadyForConnections(10*time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var urls []string
	for _, name := range []string{"one", "two"} {
		hub, bridge, err := newHub(logger, ns.ClientURL(), name)
		require.NoError(t, err)
		srv := httptest.NewServer(app.NewMux(hub))
		defer func() {
			hub.Shutdown(ctx)
			bridge.Close()
			bridge.Conn().Close()
			srv.Close()
		}()
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http")+"/live/room1/")
	}

	sub, err := relay.DialSubscribe(ctx, urls[1]+"subscribe", nil)
	require.NoError(t, err)
	defer sub.Close()
	pub, err := relay.DialPublish(ctx, urls[0]+"publish", relay.PublishStart{MIME: "video/webm", Mode: relay.ModeSegments}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.SendSegment(ctx, relay.Segment{Kind: relay.KindInit, Data: []byte("init")}))
	require.NoError(t, pub.SendSegment(ctx, relay.Segment{Kind: relay.KindMedia, Keyframe: true, Data: []byte("frame")}))
	for {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		if seg.Kind == relay.KindMedia {
			require.Equal(t, []byte("frame"), seg.Data)
			break
		}
	}
	_, err = relay.DialPublish(ctx, urls[1]+"publish", relay.PublishStart{MIME: "video/webm", Mode: relay.ModeSegments}, nil)
	require.ErrorIs(t, err, relay.ErrStreamBusy, "one publisher per stream across the instances")
}
