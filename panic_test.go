package relay

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panickyBridge panics in Forward for one stream: a bug on the publish path
// (a Bridge is called there, as the splitter and the subscribers' queues
// are), injected without changing the code under test.
type panickyBridge struct {
	fakeBridge
	stream string
}

func (b *panickyBridge) Forward(stream string, seg Segment) {
	if stream == b.stream && seg.Kind == KindMedia {
		panic("injected: index out of range")
	}
	b.fakeBridge.Forward(stream, seg)
}

// A panic on one publisher's path ends that publisher alone: 1011 over a
// WebSocket, 500 over HTTP, the panic logged with its stack, every lock
// released (the stream takes its next publisher, Stats answers), the other
// streams untouched, and Shutdown returns.
func TestPanicOnThePublishPathEndsThatPublisherOnly(t *testing.T) {
	var logs logRecords
	e := newEnv(t, WithLogger(slog.New(&logs)))
	require.NoError(t, e.hub.SetBridge(&panickyBridge{stream: "bad"}))
	l := webmtest.Build(webmtest.Spec{Clusters: 4})
	ctx := testCtx(t)

	// A good stream, watched throughout.
	good := e.publish("good", PublishStart{MIME: "video/webm", Mode: ModeStream})
	viewer := e.subscribe("good")
	require.NoError(t, good.Send(ctx, l.Data[:l.Clusters[1].Offset]))

	bad := e.publish("bad", PublishStart{MIME: "video/webm", Mode: ModeStream})
	require.NoError(t, bad.Send(ctx, l.Data))
	<-bad.Done()
	wantInternalError(t, bad.Err())
	waitFor(t, "the log line", func() bool {
		return logs.find("segrelay: panic on a publisher's path (a bug)", map[string]string{"stream": "bad"}) != nil
	})
	line := logs.find("segrelay: panic on a publisher's path (a bug)", map[string]string{"stream": "bad"})
	assert.Contains(t, line["panic"], "injected")
	assert.Contains(t, line["stack"], "panickyBridge")

	// Over HTTP: 500.
	status, text := e.put(http.MethodPut, "bad/publish", bytes.NewReader(l.Data))
	assert.Equal(t, http.StatusInternalServerError, status, text)
	assert.NotContains(t, text, "injected", "what panicked stays in the log")

	// Nothing stayed held: the hub answers, the good stream flows on, and
	// "bad" takes a publisher again (which ends the same way).
	_ = e.hub.Stats()
	require.NoError(t, good.Send(ctx, l.Data[l.Clusters[1].Offset:]))
	got := 0
	for got < 4 { // start, init, and two of its media segments at least
		seg, err := viewer.Next(ctx)
		require.NoError(t, err)
		got++
		_ = seg
	}
	again := e.publish("bad", PublishStart{MIME: "video/webm", Mode: ModeStream})
	require.NoError(t, again.Send(ctx, l.Data))
	<-again.Done()
	wantInternalError(t, again.Err())

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.hub.Shutdown(sctx), "Shutdown returns: no session was left waiting")
}

// wantInternalError checks for the hub's 1011 close with errBug's text.
func wantInternalError(t *testing.T, err error) {
	t.Helper()
	var ce *CloseError
	require.ErrorAs(t, err, &ce, "%v", err)
	assert.Equal(t, 1011, ce.Code)
	assert.Equal(t, errBug.Error(), ce.Reason)
}
