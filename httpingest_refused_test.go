package relay

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A refused PUT is answered at once, while its body is still open: 409 for
// a busy stream, 400 for a body that is not WebM. Before it sends an answer,
// net/http reads up to 256 KiB of a body the handler left unread, and a
// client that keeps a chunked body open (no host ReadTimeout bounds that)
// got no answer and held its connection for as long as it liked.
func TestHTTPRefusedPublisherAnsweredWhileItsBodyIsOpen(t *testing.T) {
	e := newEnv(t)
	l := webmtest.Build(webmtest.Spec{Clusters: 2})
	owner := e.publish("s", PublishStart{MIME: "video/webm", Mode: ModeStream})
	require.NoError(t, owner.Send(testCtx(t), l.Data))

	for _, tc := range []struct {
		name   string
		stream string
		first  []byte
		status int
	}{
		{"busy", "s", l.Data[:100], http.StatusConflict},
		{"not WebM", "t", []byte("this is not a WebM stream at all, nor any other container"), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close() // the body stays open until the test ends
			go pw.Write(tc.first)
			req, err := http.NewRequestWithContext(testCtx(t), http.MethodPut, e.httpURL(tc.stream+"/publish"), pr)
			require.NoError(t, err)
			type answer struct {
				resp *http.Response
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				done <- answer{resp, err}
			}()
			select {
			case a := <-done:
				require.NoError(t, a.err)
				defer a.resp.Body.Close()
				assert.Equal(t, tc.status, a.resp.StatusCode)
				// And the connection is gone, not held for the rest of
				// the body: the client's body copy fails.
				wrote := make(chan error, 1)
				go func() {
					var err error
					for err == nil {
						_, err = pw.Write(make([]byte, 32<<10))
					}
					wrote <- err
				}()
				select {
				case err := <-wrote:
					assert.Error(t, err)
				case <-time.After(10 * time.Second):
					t.Fatal("the hub holds the connection of a refused body")
				}
			case <-time.After(10 * time.Second): // no scheduling delay is that long: it never comes
				t.Fatal("no answer while the body is open")
			}
		})
	}
}
