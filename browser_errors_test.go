package relay

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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

// relay.js in Chromium: a refusal it cannot fix (401, 409) stops it after
// one attempt, with an "error" event that carries the hub's status and
// reason; a 429 is retried until the slot frees; failures found by the
// constructor reach listeners added right after it; options.signal ends a
// player and a publisher.
func TestBrowserRefusals(t *testing.T) {
	b := startBrowser(t)
	hub := NewHub(WithMaxSubscribersPerStream(1), WithAuthorize(func(r *http.Request, stream string, role Role) error {
		if stream == "private" {
			return ErrUnauthorized
		}
		return nil
	}))
	attempts := &attemptCounter{next: hub, n: map[string]int{}}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", attempts))
	mux.Handle("/", http.FileServer(http.Dir("testdata/browser")))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx := testCtx(t)
		hub.Shutdown(ctx)
		srv.Close()
	})
	ctx := testCtx(t)
	p := b.open(t, "errors", srv.URL+"/errors.html")
	waitPage(t, p, "the page to load relay.js", "window.ready", 10*time.Second)
	start := func(name, kind, url, opts string) {
		t.Helper()
		require.True(t, eval[bool](t, p, fmt.Sprintf("start(%q, %q, %q, %s)", name, kind, url, opts)))
	}
	const fast = "{reconnectMinDelay: 20, reconnectMaxDelay: 40}"

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
		{"p401", 401, ErrUnauthorized.Error()},
		{"pub409", 409, ErrStreamBusy.Error()},
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
	assert.Equal(t, pageEvent{Name: "p429", Type: "error", HTTPStatus: 429, Reason: ErrTooManySubscribers.Error(),
		Error: "RefusedError: segrelay: " + strings.Replace(srv.URL, "http", "ws", 1) + "/live/full/subscribe refused with 429: " + ErrTooManySubscribers.Error()}, events[0])
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
