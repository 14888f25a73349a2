package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamModeEndToEnd(t *testing.T) {
	specs := map[string]webmtest.Spec{
		"video":        {Clusters: 5, KeyEvery: 2},
		"audio+video":  {Audio: true, Clusters: 8, KeyEvery: 3},
		"blockgroups":  {BlockGroups: true, Clusters: 4},
		"known-sizes":  {KnownSizes: true, Audio: true, Clusters: 4},
		"audio-only":   {Audio: true, NoVideo: true, Clusters: 4},
		"big-clusters": {Clusters: 3, Frames: 40, FrameBytes: 20000},
	}
	for name, spec := range specs {
		l := webmtest.Build(spec)
		cuts := map[string][][]byte{
			"5120":        cutEvery(l.Data, 5120),
			"chrome-like": chromeLike(l),
		}
		if len(l.Data) <= defaultMaxMessageBytes {
			cuts["whole"] = [][]byte{l.Data}
			cuts["7-bytes"] = cutEvery(l.Data, 7)
		}
		for cutName, msgs := range cuts {
			t.Run(name+"/"+cutName, func(t *testing.T) {
				// A test of the splitter, not of the skip rule: the whole
				// stream is sent before the subscriber's writer may run, so
				// its queue holds all of it (big-clusters is 2.4 MB, over the
				// 2 MiB default) and a write may wait for the reader long.
				e := newEnv(t, WithSubscriberQueueBytes(2*len(l.Data)), WithWriteTimeout(time.Minute))
				sub := e.subscribe("room1")
				pub := e.publish("room1", PublishStart{MIME: l.MIME})
				ctx := testCtx(t)
				for _, m := range msgs {
					require.NoError(t, pub.Send(ctx, m))
				}
				require.NoError(t, pub.Close())
				segs := readUntilEnd(t, sub)
				assert.Equal(t, l.MIME, segs[0].MIME)
				checkWebMSession(t, segs, l)
			})
		}
	}
}

func TestStreamModeMIMEFromWebM(t *testing.T) {
	e := newEnv(t)
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2})
	sub := e.subscribe("room1")
	pub := e.publish("room1", PublishStart{}) // no mime: read from the WebM
	require.NoError(t, pub.Send(testCtx(t), l.Data))
	require.NoError(t, pub.Close())
	segs := readUntilEnd(t, sub)
	assert.Equal(t, l.MIME, segs[0].MIME)
	checkWebMSession(t, segs, l)
}

// Split at every byte offset, through the in-process Publisher: the hub's
// segments never depend on where messages were cut.
func TestStreamModeEveryOffset(t *testing.T) {
	l := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, Frames: 2, FrameBytes: 60, KeyEvery: 2})
	hub := NewHub()
	defer hub.Shutdown(context.Background())
	ctx := context.Background()
	for cut := 0; cut <= len(l.Data); cut++ {
		sub, err := hub.Subscribe(ctx, "s")
		require.NoError(t, err)
		pub, err := hub.Publish(ctx, "s", l.MIME)
		require.NoError(t, err)
		_, err = pub.Write(l.Data[:cut])
		require.NoError(t, err)
		_, err = pub.Write(l.Data[cut:])
		require.NoError(t, err)
		pub.Close()
		var segs []Segment
		for {
			seg, err := sub.Next(ctx)
			require.NoError(t, err)
			segs = append(segs, seg)
			if seg.Kind == KindEnd {
				break
			}
		}
		sub.Close()
		checkWebMSession(t, segs, l)
		if t.Failed() {
			t.Fatalf("cut at %d", cut)
		}
	}
}

func TestSegmentsModeEndToEnd(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe("room1")
	pub := e.publish("room1", PublishStart{MIME: `video/mp4;codecs="avc1.42E01E"`, Mode: ModeSegments})
	ctx := testCtx(t)
	sent := []Segment{
		{Kind: KindInit, Data: []byte("ftyp+moov")},
		{Kind: KindMedia, Keyframe: true, Data: bytes.Repeat([]byte{1}, 70000)},
		{Kind: KindMedia, Data: []byte("moof+mdat 2")},
		{Kind: KindMedia, Keyframe: true, Data: []byte("moof+mdat 3")},
	}
	for _, s := range sent {
		require.NoError(t, pub.SendSegment(ctx, s))
	}
	require.NoError(t, pub.Close())
	segs := readUntilEnd(t, sub)
	require.Len(t, segs, len(sent)+2)
	assert.Equal(t, `video/mp4;codecs="avc1.42E01E"`, segs[0].MIME)
	for i, s := range sent {
		got := segs[i+1]
		assert.Equal(t, s.Kind, got.Kind)
		assert.Equal(t, s.Keyframe, got.Keyframe)
		assert.Equal(t, s.Data, got.Data)
		assert.Equal(t, segs[1].Seq+uint64(i), got.Seq)
	}
}

// A segment's bytes may come in several binary messages.
func TestSegmentsModeSplitData(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe("s")
	c := e.dialRaw("s/publish", Subprotocol)
	ctx := testCtx(t)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"start","mime":"application/octet-stream","mode":"segments"}`)))
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"segment","size":6,"init":true}`)))
	for _, part := range []string{"in", "it", "!!"} {
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte(part)))
	}
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"segment","size":3,"keyframe":true,"extra":"ignored"}`)))
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, []byte("abc")))
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"end"}`)))
	segs := readUntilEnd(t, sub)
	require.Len(t, segs, 4)
	assert.Equal(t, "init!!", string(segs[1].Data))
	assert.Equal(t, "abc", string(segs[2].Data))
	assert.True(t, segs[2].Keyframe)
	var err error
	for err == nil {
		_, _, err = c.Read(ctx) // stats, then the close
	}
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "end closes the session cleanly: %v", err)
}

func TestLateJoinGetsInitAndGOP(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	pub, err := e.hub.Publish(ctx, "room1", "video/webm")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	for i, key := range []bool{true, false, false, true, false, false} {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: key, Data: []byte{byte(i)}}))
	}
	sub := e.subscribe("room1")
	want := []Segment{
		{Kind: KindStart, MIME: "video/webm"},
		{Kind: KindInit, Seq: 1, Data: []byte("init")},
		{Kind: KindMedia, Seq: 5, Keyframe: true, Data: []byte{3}},
		{Kind: KindMedia, Seq: 6, Data: []byte{4}},
		{Kind: KindMedia, Seq: 7, Data: []byte{5}},
	}
	for _, w := range want {
		got, err := sub.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, w, got)
	}
	// Then live, with no discontinuity.
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: []byte{6}}))
	got, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, Segment{Kind: KindMedia, Seq: 8, Data: []byte{6}}, got)
}

// A late joiner without a cached keyframe (the GOP outgrew the cache)
// waits for the next keyframe instead of getting undecodable media.
func TestLateJoinWaitsForKeyframeWhenCacheOverflowed(t *testing.T) {
	hub := NewHub(WithGOPCacheBytes(10))
	ctx := context.Background()
	defer hub.Shutdown(ctx)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("i")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: make([]byte, 8)}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: make([]byte, 8)})) // 16 > 10: cache dropped
	sub, err := hub.Subscribe(ctx, "s")
	require.NoError(t, err)
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: []byte("skip")}))
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: true, Data: []byte("key")}))
	var kinds []string
	for range 3 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		kinds = append(kinds, seg.Kind.String()+":"+string(seg.Data))
	}
	assert.Equal(t, []string{"start:", "init:i", "media:key"}, kinds)
	assert.Equal(t, uint64(0), hub.Stats().Drops, "waiting for a first keyframe is no drop")
}

func TestSubscriberBeforePublisherAndAcrossSessions(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe("room1")
	l := webmtest.Build(webmtest.Spec{Clusters: 2})
	ctx := testCtx(t)

	pub := e.publish("room1", PublishStart{MIME: l.MIME})
	require.NoError(t, pub.Send(ctx, l.Data))
	require.NoError(t, pub.Close())
	first := readUntilEnd(t, sub)
	checkWebMSession(t, first, l)

	// The publisher comes back: start + init again, Seq keeps growing, and
	// the first media segment says the timeline restarted.
	pub = e.publish("room1", PublishStart{MIME: l.MIME})
	require.NoError(t, pub.Send(ctx, l.Data))
	require.NoError(t, pub.Close())
	second := readUntilEnd(t, sub)
	require.Equal(t, KindStart, second[0].Kind)
	require.Equal(t, KindInit, second[1].Kind)
	assert.Equal(t, first[len(first)-2].Seq+1, second[1].Seq, "seq grows across sessions")
	assert.True(t, second[2].Discontinuity, "first media of a new session")
	second[2].Discontinuity = false
	checkWebMSession(t, second, l)
}

func TestRecorderRestartMidStream(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe("room1")
	a := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 2})
	b := webmtest.Build(webmtest.Spec{Audio: true, Clusters: 3, KeyEvery: 2})
	pub := e.publish("room1", PublishStart{MIME: a.MIME})
	ctx := testCtx(t)
	// The second recording's EBML header arrives in the middle of a message.
	// The subscriber reads the first recording's init before it, since a new
	// init replaces one still queued (TestInitFloodIsBounded).
	joined := append(append([]byte(nil), a.Data...), b.Data...)
	msgs := cutEvery(joined, 5000)
	require.Less(t, 5000, len(a.Data)-a.InitLen, "the EBML header is not in the first message")
	require.NoError(t, pub.Send(ctx, msgs[0]))
	var segs []Segment
	for len(segs) < 2 || segs[len(segs)-1].Kind != KindInit {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		segs = append(segs, seg)
	}
	for _, m := range msgs[1:] {
		require.NoError(t, pub.Send(ctx, m))
	}
	require.NoError(t, pub.Close())
	segs = append(segs, readUntilEnd(t, sub)...)
	var inits []int
	for i, s := range segs {
		if s.Kind == KindInit {
			inits = append(inits, i)
		}
	}
	require.Len(t, inits, 2)
	assert.Equal(t, b.Data[:b.InitLen], segs[inits[1]].Data)
	assert.True(t, segs[inits[1]+1].Discontinuity, "the media after a new init carries Discontinuity")
	first := append([]Segment{}, segs[:inits[1]]...)
	checkWebMSession(t, append(first, Segment{Kind: KindEnd}), a)
	second := append([]Segment{segs[0]}, segs[inits[1]:]...)
	second[2].Discontinuity = false
	checkWebMSession(t, second, b)
}

func TestSecondPublisherGets409(t *testing.T) {
	e := newEnv(t)
	e.publish("room1", PublishStart{MIME: "video/webm"})
	_, err := DialPublish(testCtx(t), e.url("room1/publish"), PublishStart{MIME: "video/webm"}, nil)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusConflict, he.Status)
	// Another stream is free.
	e.publish("room2", PublishStart{MIME: "video/webm"})
}

func TestStreamIsFreedWhenPublisherLeaves(t *testing.T) {
	e := newEnv(t)
	p := e.publish("room1", PublishStart{MIME: "video/webm"})
	require.NoError(t, p.Close())
	waitFor(t, "the stream to be free", func() bool { return e.hub.Stats().Publishers == 0 })
	e.publish("room1", PublishStart{MIME: "video/webm"})
	assert.Equal(t, 1, e.hub.Stats().Publishers)
}

func TestPublisherGetsSubscriberCount(t *testing.T) {
	e := newEnv(t)
	pub := e.publish("room1", PublishStart{MIME: "x", Mode: ModeSegments})
	e.subscribe("room1")
	e.subscribe("room1")
	ctx := testCtx(t)
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("i")}))
	waitFor(t, "stats", func() bool {
		// Stats are sent when the count changed, at most once a second.
		pub.SendSegment(ctx, Segment{Kind: KindMedia, Keyframe: true, Data: []byte("m")})
		return pub.Subscribers() == 2
	})
}

func TestHTTPErrors(t *testing.T) {
	e := newEnv(t,
		WithMaxStreams(2),
		WithMaxSubscribersPerStream(1),
		WithOriginPatterns("trusted.example"),
		WithAuthorize(func(r *http.Request, stream string, role Role) error {
			switch {
			case stream == "secret" && r.Header.Get("Authorization") == "":
				return ErrUnauthorized
			case stream == "secret" && r.Header.Get("Authorization") != "Bearer ok":
				return errors.New("forbidden: wrong token")
			case stream == "readonly" && role == RolePublish:
				return errors.New("forbidden: viewers only")
			}
			return nil
		}))
	e.publish("full", PublishStart{MIME: "x"})
	e.subscribe("full") // the stream's one subscriber

	cases := []struct {
		name    string
		route   string
		header  http.Header
		protos  []string
		status  int
		message string
	}{
		{"bad name: dot", ".hidden/subscribe", nil, []string{Subprotocol}, 400, "bad stream name"},
		{"bad name: char", "a$b/subscribe", nil, []string{Subprotocol}, 400, "bad stream name"},
		{"bad name: long", strings.Repeat("a", 129) + "/subscribe", nil, []string{Subprotocol}, 400, "bad stream name"},
		{"unknown subprotocol", "room/subscribe", nil, []string{"chat"}, 400, "unsupported subprotocol"},
		{"unknown route", "room/watch", nil, []string{Subprotocol}, 404, "no route"},
		{"no action", "room", nil, []string{Subprotocol}, 404, "no route"},
		{"unauthorized", "secret/subscribe", nil, []string{Subprotocol}, 401, "unauthorized"},
		{"forbidden", "secret/subscribe", http.Header{"Authorization": {"Bearer bad"}}, []string{Subprotocol}, 403, "wrong token"},
		{"forbidden role", "readonly/publish", nil, []string{Subprotocol}, 403, "viewers only"},
		{"cross origin", "room/subscribe", http.Header{"Origin": {"http://evil.example"}}, []string{Subprotocol}, 403, "origin"},
		{"busy", "full/publish", nil, []string{Subprotocol}, 409, "already has a publisher"},
		{"too many subscribers", "full/subscribe", nil, []string{Subprotocol}, 429, "too many subscribers"},
		{"legacy too many subscribers", "full/subscribe", nil, nil, 429, "too many subscribers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, resp, err := websocket.Dial(testCtx(t), e.url(c.route), &websocket.DialOptions{Subprotocols: c.protos, HTTPHeader: c.header})
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, c.status, resp.StatusCode)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Contains(t, string(body), c.message)
			assert.Equal(t, 1, strings.Count(string(body), "\n"), "one line: %q", body)
		})
	}

	// Allowed: a trusted origin, the right token.
	c, _, err := websocket.Dial(testCtx(t), e.url("ok/subscribe"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}, HTTPHeader: http.Header{"Origin": {"https://trusted.example"}}})
	require.NoError(t, err)
	c.CloseNow()
	waitFor(t, "the subscriber to leave", func() bool { return len(e.hub.Streams()) == 1 })
	c, _, err = websocket.Dial(testCtx(t), e.url("secret/subscribe"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}, HTTPHeader: http.Header{"Authorization": {"Bearer ok"}}})
	require.NoError(t, err)
	c.CloseNow()
	// Streams with only subscribers do not count: two live streams do, and
	// a third publisher is over the limit.
	e.publish("second", PublishStart{MIME: "x"})
	_, resp, err := websocket.Dial(testCtx(t), e.url("third/publish"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	// Plain HTTP requests.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for route, status := range map[string]int{"room/subscribe": 400, "": 404, "room/relay.js": 404} {
		resp, err := client.Get(e.srv.URL + "/live/" + route)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, status, resp.StatusCode, route)
	}
}

func TestShutdownRefusesNewConnections(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.hub.Shutdown(testCtx(t)))
	_, resp, err := websocket.Dial(testCtx(t), e.url("room/subscribe"), &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_, err = e.hub.Publish(context.Background(), "room", "x")
	assert.ErrorIs(t, err, ErrHubClosed)
}

func TestShutdownClosesLiveConnections(t *testing.T) {
	e := newEnv(t)
	pub := e.publish("room1", PublishStart{MIME: "x", Mode: ModeSegments})
	sub := e.subscribe("room1")
	legacySub := e.dialRaw("room1/subscribe")
	ctx := testCtx(t)
	_, err := sub.Next(ctx) // start
	require.NoError(t, err)
	inproc, err := e.hub.Subscribe(ctx, "room1")
	require.NoError(t, err)

	require.NoError(t, e.hub.Shutdown(ctx))

	seg, err := sub.Next(ctx)
	if err == nil {
		assert.Equal(t, KindEnd, seg.Kind, "the publisher's session ended")
		_, err = sub.Next(ctx)
	}
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "subscriber: %v", err)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(pub.Err()), "publisher: %v", pub.Err())
	_, _, err = legacySub.Read(ctx)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "legacy subscriber: %v", err)
	for {
		if _, err = inproc.Next(ctx); err != nil {
			break
		}
	}
	assert.ErrorIs(t, err, ErrHubClosed)
	assert.Equal(t, Stats{}, e.hub.Stats())
}

func TestCloseCodes(t *testing.T) {
	e := newEnv(t, WithMaxMessageBytes(1000), WithMaxSegmentBytes(5000))
	start := `{"type":"start","mime":"video/webm","mode":"stream"}`
	startSeg := `{"type":"start","mime":"x","mode":"segments"}`
	cases := []struct {
		name   string
		route  string
		msgs   []any
		code   websocket.StatusCode
		reason string
	}{
		{"binary before start", "a/publish", []any{[]byte{1}}, websocket.StatusProtocolError, "before start"},
		{"unknown type", "a/publish", []any{start, `{"type":"dance"}`}, websocket.StatusProtocolError, "unknown message type"},
		{"start twice", "a/publish", []any{start, start}, websocket.StatusProtocolError, "twice"},
		{"unknown mode", "a/publish", []any{`{"type":"start","mime":"x","mode":"carrier-pigeon"}`}, websocket.StatusProtocolError, "unknown mode"},
		{"segment before start", "a/publish", []any{`{"type":"segment","size":1}`}, websocket.StatusProtocolError, "before start"},
		{"segment in stream mode", "a/publish", []any{start, `{"type":"segment","size":1}`}, websocket.StatusProtocolError, "stream mode"},
		{"binary without declaration", "a/publish", []any{startSeg, []byte{1}}, websocket.StatusProtocolError, "without a segment declaration"},
		{"bytes beyond size", "a/publish", []any{startSeg, `{"type":"segment","size":2,"init":true}`, []byte{1, 2, 3}}, websocket.StatusProtocolError, "beyond the declared size"},
		{"declared twice", "a/publish", []any{startSeg, `{"type":"segment","size":2}`, `{"type":"segment","size":2}`}, websocket.StatusProtocolError, "before the previous one was complete"},
		{"media before init", "a/publish", []any{startSeg, `{"type":"segment","size":1}`, []byte{1}}, websocket.StatusProtocolError, "before init"},
		{"end inside segment", "a/publish", []any{startSeg, `{"type":"segment","size":2}`, []byte{1}, `{"type":"end"}`}, websocket.StatusProtocolError, "end inside a segment"},
		{"bad JSON", "a/publish", []any{`{"type":`}, websocket.StatusInvalidFramePayloadData, "JSON"},
		{"JSON without type", "a/publish", []any{`{"mime":"x"}`}, websocket.StatusInvalidFramePayloadData, "type"},
		{"bad WebM", "a/publish", []any{start, []byte("this is not WebM at all")}, websocket.StatusInvalidFramePayloadData, "bad WebM"},
		{"message too big", "a/publish", []any{start, make([]byte, 1001)}, websocket.StatusMessageTooBig, "read limited at 1001 bytes"},
		{"segment too big", "a/publish", []any{startSeg, `{"type":"segment","size":5001}`}, websocket.StatusMessageTooBig, "limit is 5000"},
		{"subscriber sends binary", "a/subscribe", []any{[]byte{1}}, websocket.StatusProtocolError, "no binary"},
		{"end", "a/publish", []any{start, `{"type":"end"}`}, websocket.StatusNormalClosure, "end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, reason := closeCode(t, e, c.route, c.msgs...)
			assert.Equal(t, c.code, code, "reason: %s", reason)
			require.NotEmpty(t, c.reason, "a case must expect a reason")
			assert.Contains(t, reason, c.reason)
			waitFor(t, "the stream to be free", func() bool { return e.hub.Stats().Streams == 0 })
		})
	}
}

func TestPublisherIdleTimeout(t *testing.T) {
	e := newEnv(t, WithPublisherIdleTimeout(200*time.Millisecond))
	code, reason := closeCode(t, e, "a/publish", `{"type":"start","mime":"x"}`)
	assert.Equal(t, websocket.StatusPolicyViolation, code)
	assert.Contains(t, reason, "idle")
}

// A WebM element cut by a message boundary is held until its end arrives; a
// Cluster larger than the segment limit before its first video block is
// too big to hold.
func TestHeldBackTooBig(t *testing.T) {
	e := newEnv(t, WithMaxSegmentBytes(4000))
	l := webmtest.Build(webmtest.Spec{Clusters: 2, FrameBytes: 5000})
	code, reason := closeCode(t, e, "a/publish", `{"type":"start","mime":"video/webm"}`, l.Data[:1000], l.Data[1000:2000], l.Data[2000:3000], l.Data[3000:4000], l.Data[4000:5000], l.Data[5000:6000])
	assert.Equal(t, websocket.StatusMessageTooBig, code, reason)
}
