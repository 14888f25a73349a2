package relay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The origin check, request by request: a page may connect from the hub's
// own origin (same host and port), from an origin matching a pattern, or
// without an Origin header; any other port of the same host is another
// origin.
func TestCheckOrigin(t *testing.T) {
	patterns := []string{"trusted.example", "https://secure.example", "*.wild.example"}
	cases := []struct {
		host, origin string
		ok           bool
	}{
		{"relay.example:8080", "", true},
		{"relay.example:8080", "http://relay.example:8080", true},
		{"relay.example:8080", "https://RELAY.example:8080", true},
		{"relay.example:8080", "http://relay.example:8081", false},
		{"relay.example:8080", "http://relay.example", false},
		{"relay.example", "http://relay.example", true},
		{"relay.example", "http://relay.example:8080", false},
		{"relay.example:8080", "http://other.example:8080", false},
		// Patterns without a scheme match the host, with a scheme "scheme://host".
		{"relay.example", "http://trusted.example", true},
		{"relay.example", "https://trusted.example", true},
		{"relay.example", "https://trusted.example:8443", false},
		{"relay.example", "https://secure.example", true},
		{"relay.example", "HTTPS://Secure.Example", true},
		{"relay.example", "http://secure.example", false},
		{"relay.example", "https://secure.example:444", false},
		{"relay.example", "https://a.wild.example", true},
		{"relay.example", "https://wild.example", false},
		{"relay.example", "null", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "http://"+c.host+"/s/subscribe", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		err := checkOrigin(r, patterns)
		if c.ok {
			assert.NoError(t, err, "host %s, origin %s", c.host, c.origin)
		} else {
			assert.Error(t, err, "host %s, origin %s", c.host, c.origin)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "http://relay.example/s/subscribe", nil)
	r.Header.Set("Origin", "http://x.example")
	assert.ErrorContains(t, checkOrigin(r, []string{"[bad"}), "bad origin pattern")
}

// The same over real WebSockets: the Host a browser sends is the server's
// host and port, so a page served by the hub's own server may publish and
// subscribe, and a page on another port of the same host may not.
func TestOriginOverHTTP(t *testing.T) {
	e := newEnv(t, WithOriginPatterns("https://secure.example"))
	self := e.srv.URL // http://127.0.0.1:PORT
	host := strings.TrimPrefix(self, "http://")
	hostname, port, ok := strings.Cut(host, ":")
	require.True(t, ok, self)
	otherPort := "1"
	if port == otherPort {
		otherPort = "2"
	}
	cases := []struct {
		origin string
		status int // 0: the upgrade succeeds
	}{
		{self, 0},
		{"http://" + hostname + ":" + otherPort, http.StatusForbidden},
		{"http://" + hostname, http.StatusForbidden},
		{"https://secure.example", 0},
		{"http://secure.example", http.StatusForbidden},
	}
	for _, c := range cases {
		for _, route := range []string{"o/publish", "o/subscribe"} {
			conn, resp, err := websocket.Dial(testCtx(t), e.url(route), &websocket.DialOptions{
				Subprotocols: []string{Subprotocol},
				HTTPHeader:   http.Header{"Origin": {c.origin}},
			})
			if c.status == 0 {
				require.NoError(t, err, "origin %s, %s", c.origin, route)
				conn.CloseNow()
				continue
			}
			require.Error(t, err, "origin %s, %s", c.origin, route)
			require.NotNil(t, resp, "origin %s, %s: %v", c.origin, route, err)
			assert.Equal(t, c.status, resp.StatusCode, "origin %s, %s", c.origin, route)
		}
		waitFor(t, "the stream to be free", func() bool { return e.hub.Stats().Streams == 0 })
	}
}
