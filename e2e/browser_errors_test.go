package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segrelay/relay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attemptCounter counts the requests to each route of the hub it wraps.
type attemptCounter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *attemptCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.n[r.URL.Path]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *attemptCounter) get(route string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[route]
}

// pageEvent is one "status" or "error" event of testdata/browser/errors.html.
type pageEvent struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Status     string `json:"status"`     // status events
	HTTPStatus int    `json:"httpStatus"` // error events of a refusal
	Reason     string `json:"reason"`
	Fatal      bool   `json:"fatal"`
	Error      string `json:"error"`
}

func pageEvents(t *testing.T, p *page, name string) []pageEvent {
	t.Helper()
	return eval[[]pageEvent](t, p, fmt.Sprintf("log.filter(e => e.name === %q)", name))
}

func statuses(events []pageEvent) []string {
	var s []string
	for _, e := range events {
		if e.Type == "status" {
			s = append(s, e.Status)
		}
	}
	return s
}

// newErrorsEnv serves a hub made with opts under /live/, counting the
// requests to each of its routes, and testdata/browser.
func newErrorsEnv(t *testing.T, opts ...relay.Option) (*relay.Hub, *attemptCounter, *httptest.Server) {
	hub := relay.NewHub(opts...)
	attempts := &attemptCounter{next: hub, n: map[string]int{}}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", attempts))
	mux.Handle("/", http.FileServer(http.Dir("testdata/browser")))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		hub.Shutdown(testCtx(t))
		srv.Close()
	})
	return hub, attempts, srv
}

// starter returns a function that calls the page's start (errors.html).
func starter(t *testing.T, p *page) func(name, kind, url, opts string) {
	return func(name, kind, url, opts string) {
		t.Helper()
		require.True(t, eval[bool](t, p, fmt.Sprintf("start(%q, %q, %q, %s)", name, kind, url, opts)))
	}
}

// Reconnections retry every 20 to 40 ms in these tests.
const fast = "{reconnectMinDelay: 20, reconnectMaxDelay: 40}"

// relay.js in Chromium: a refusal it cannot fix (401, 409) stops it after
// one attempt, with an "error" event that carries the hub's status and
// reason; a 429 is retried until the slot frees; failures found by the
// constructor reach listeners added right after it; options.signal ends a
// player and a publisher.
func TestBrowserRefusals(t *testing.T) {
	b := startBrowser(t)
	hub, attempts, srv := newErrorsEnv(t, relay.WithMaxSubscribersPerStream(1), relay.WithAuthorize(func(r *http.Request, stream string, role relay.Role) error {
		if stream == "private" {
			return relay.ErrUnauthorized
		}
		return nil
	}))
	ctx := testCtx(t)
	p := b.open(t, "errors", srv.URL+"/errors.html")
	waitPage(t, p, "the page to load relay.js", "window.ready", 10*time.Second)
	start := starter(t, p)

	// 401 and 409: one attempt each, then "failed".
	busy, err := hub.Publish(ctx, "busy", "video/webm")
	require.NoError(t, err)
	defer busy.Close()
	start("p401", "play", "/live/private/subscribe", fast)
	start("pub409", "publish", "/live/busy/publish", fast)
	waitPage(t, p, "the player to fail", `objs.p401.status === "failed"`, 10*time.Second)
	waitPage(t, p, "the publisher to fail", `objs.pub409.status === "failed"`, 10*time.Second)
	// Retries would come every 20 to 40 ms: a second gives room for many (a
	// busy machine can only make fewer).
	time.Sleep(time.Second)
	assert.Equal(t, 1, attempts.get("/private/subscribe"), "the player tried once")
	assert.Equal(t, 1, attempts.get("/busy/publish"), "the publisher tried once")
	for _, c := range []struct {
		name   string
		status int
		reason string
	}{
		{"p401", 401, relay.ErrUnauthorized.Error()},
		{"pub409", 409, relay.ErrStreamBusy.Error()},
	} {
		events := pageEvents(t, p, c.name)
		assert.Equal(t, []string{"failed"}, statuses(events), "%s: straight to failed: %+v", c.name, events)
		var errs []pageEvent
		for _, e := range events {
			if e.Type == "error" {
				errs = append(errs, e)
			}
		}
		require.Len(t, errs, 1, "%s: %+v", c.name, events)
		assert.Equal(t, c.status, errs[0].HTTPStatus, c.name)
		assert.Equal(t, c.reason, errs[0].Reason, c.name)
		assert.True(t, errs[0].Fatal, c.name)
		assert.True(t, strings.HasPrefix(errs[0].Error, "RefusedError: "), "%s: %s", c.name, errs[0].Error)
		assert.Contains(t, errs[0].Error, c.reason)
	}
	assert.Equal(t, 1, hub.Stats().Publishers, "the refused publisher took nothing from the one that has the stream")

	// 429: retried (an "error" event that is not fatal each time) until the
	// stream has room again.
	full, err := hub.Subscribe(ctx, "full")
	require.NoError(t, err)
	start("p429", "play", "/live/full/subscribe", fast)
	waitFor(t, "the player to retry", func() bool { return attempts.get("/full/subscribe") >= 3 })
	full.Close()
	waitPage(t, p, "the player to connect once there is room", `objs.p429.status === "waiting"`, 10*time.Second)
	events := pageEvents(t, p, "p429")
	require.NotEmpty(t, events)
	assert.Equal(t, pageEvent{Name: "p429", Type: "error", HTTPStatus: 429, Reason: relay.ErrTooManySubscribers.Error(),
		Error: "RefusedError: segrelay: " + strings.Replace(srv.URL, "http", "ws", 1) + "/live/full/subscribe refused with 429: " + relay.ErrTooManySubscribers.Error()}, events[0])
	assert.Contains(t, statuses(events), "reconnecting")
	assert.NotContains(t, statuses(events), "failed")
	eval[any](t, p, "objs.p429.close(), null")

	// Failures found by the constructor reach listeners added after it, and
	// nothing connects.
	start("noMS", "play", "/live/x/subscribe", "{withoutMediaSource: true}")
	start("badType", "publish", "/live/y/publish", `{mimeType: "video/x-segrelay-nope"}`)
	waitPage(t, p, "the player without MediaSource to fail", `objs.noMS.status === "failed"`, 10*time.Second)
	waitPage(t, p, "the publisher of an unsupported type to fail", `objs.badType.status === "failed"`, 10*time.Second)
	for name, want := range map[string]string{"noMS": "no MediaSource", "badType": "video/x-segrelay-nope"} {
		events := pageEvents(t, p, name)
		require.Len(t, events, 2, "%s: an error, then the status: %+v", name, events)
		assert.Equal(t, "error", events[0].Type, name)
		assert.True(t, events[0].Fatal, name)
		assert.Contains(t, events[0].Error, want)
		assert.Equal(t, "failed", events[1].Status, name)
	}
	assert.Zero(t, attempts.get("/x/subscribe")+attempts.get("/y/publish"), "nothing connected")

	// options.signal: aborted before, it never connects; aborted later, it
	// ends the player and the publisher (which ends its session cleanly).
	start("abortedBefore", "play", "/live/z/subscribe", "{abortBefore: true}")
	start("player", "play", "/live/s/subscribe", "{}")
	start("publisher", "publish", "/live/s/publish", "{}")
	waitPage(t, p, "the aborted player to close", `objs.abortedBefore.status === "closed"`, 10*time.Second)
	waitPage(t, p, "the player to connect", `objs.player.status !== "connecting"`, 10*time.Second)
	waitPage(t, p, "the publisher to go live", `objs.publisher.status === "live"`, 10*time.Second)
	eval[any](t, p, `objs["player.abort"].abort(new Error("enough")), objs["publisher.abort"].abort(), null`)
	waitPage(t, p, "the player to close", `objs.player.status === "closed"`, 10*time.Second)
	waitPage(t, p, "the publisher to stop", `objs.publisher.status === "stopped"`, 10*time.Second)
	assert.Zero(t, attempts.get("/z/subscribe"))
	assert.Equal(t, "aborted: before", eval[string](t, p, `log.filter(e => e.name === "abortedBefore").pop().reason`))
	assert.Equal(t, "aborted: enough", eval[string](t, p, `log.filter(e => e.name === "player").pop().reason`))
	waitFor(t, "the hub to see the publisher and the player leave", func() bool {
		st := hub.Stats()
		return st.Publishers == 1 && st.Subscribers == 0 // "busy" remains
	})
	assert.Equal(t, []string{"live", "stopped"}, statuses(pageEvents(t, p, "publisher")))
}

// cutProxy forwards TCP connections to target. cut closes the client side
// of every connection and leaves the server side open, as a network that
// fails silently does: the server still believes in those connections
// until release closes them.
type cutProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	pairs  map[*proxyPair]struct{}
}

type proxyPair struct {
	client, server net.Conn
	ghost          atomic.Bool // cut: the server side stays open
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, pairs: map[*proxyPair]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.release()
		p.mu.Lock()
		for pair := range p.pairs {
			pair.client.Close()
			pair.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s}
		p.mu.Lock()
		p.pairs[pair] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.copy(pair, s, c)
		go p.copy(pair, c, s)
	}
}

// copy forwards src to dst; when either side ends, it closes both, unless
// the pair was cut: then the server side stays open.
func (p *cutProxy) copy(pair *proxyPair, dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	pair.client.Close()
	if !pair.ghost.Load() {
		pair.server.Close()
	}
}

// cut drops the client side of every open connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pair := range p.pairs {
		pair.ghost.Store(true)
		pair.client.Close()
	}
}

// release closes the server side of the connections cut.
func (p *cutProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pair := range p.pairs {
		if pair.ghost.Load() {
			pair.server.Close()
			delete(p.pairs, pair)
		}
	}
}

// A publisher whose connection failed silently reconnects while the hub
// still holds the old connection, so the stream is busy: that 409 is its
// own ghost, and relay.js retries until the hub lets the old connection go.
func TestBrowserPublisherOwnConflict(t *testing.T) {
	b := startBrowser(t)
	hub, attempts, srv := newErrorsEnv(t)
	proxy := newCutProxy(t, srv.Listener.Addr().String())
	p := b.open(t, "errors", "http://"+proxy.ln.Addr().String()+"/errors.html")
	waitPage(t, p, "the page to load relay.js", "window.ready", 10*time.Second)
	start := starter(t, p)

	start("pub", "publish", "/live/g/publish", fast)
	waitPage(t, p, "the publisher to go live", `objs.pub.status === "live"`, 10*time.Second)
	proxy.cut()
	waitPage(t, p, "the publisher to be refused as its own ghost", `log.some(e => e.name === "pub" && e.type === "error" && e.httpStatus === 409)`, 10*time.Second)
	assert.Equal(t, 1, hub.Stats().Publishers, "the ghost holds the stream")
	waitFor(t, "another retry", func() bool { return attempts.get("/g/publish") >= 3 })
	proxy.release()
	waitPage(t, p, "the publisher to be live again", `objs.pub.status === "live" && objs.pub.stats.reconnects > 0`, 10*time.Second)

	events := pageEvents(t, p, "pub")
	assert.NotContains(t, statuses(events), "failed", "%+v", events)
	for _, e := range events {
		if e.Type == "error" {
			assert.False(t, e.Fatal, "%+v", e)
			assert.Equal(t, 409, e.HTTPStatus, "%+v", e)
		}
	}
	eval[any](t, p, "objs.pub.stop(), null")
	waitPage(t, p, "the publisher to stop", `objs.pub.status === "stopped"`, 10*time.Second)
}
