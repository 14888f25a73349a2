package natsrelay

import (
	"net/http"
	"testing"

	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HEAD of live.webm on a node that has no subscriber of the stream, so
// relays nothing of it, answers from the cluster: 200 with the session's
// type while another node has a live publisher, 406 for the other
// container, 404 once the publisher is gone or for a stream nobody has.
func TestHeadLiveOnANodeThatDoesNotRelay(t *testing.T) {
	ns := startNATS(t, 0)
	a, b := newNode(t, ns, "a", Options{}), newNode(t, ns, "b", Options{})
	ctx := testCtx(t)
	head := func(route string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, b.srv.URL+"/live/"+route, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}

	code, _ := head("room/live.webm")
	assert.Equal(t, http.StatusNotFound, code, "before a publisher")

	pub, err := a.hub.Publish(ctx, "room", "")
	require.NoError(t, err)
	_, err = pub.Write(webmtest.Build(webmtest.Spec{Clusters: 2}).Data)
	require.NoError(t, err)
	require.NoError(t, pub.Flush())
	waitFor(t, "HEAD to find the stream live on a", func() bool { c, _ := head("room/live.webm"); return c == http.StatusOK })
	code, typ := head("room/live.webm")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, typ, "video/webm")
	code, _ = head("room/live.mp4")
	assert.Equal(t, http.StatusNotAcceptable, code)
	code, _ = head("other/live.webm")
	assert.Equal(t, http.StatusNotFound, code, "a stream nobody publishes")
	assert.Zero(t, b.hub.Stats().Subscribers, "a HEAD subscribes to nothing")

	require.NoError(t, pub.Close())
	waitFor(t, "HEAD to find the stream gone", func() bool { c, _ := head("room/live.webm"); return c == http.StatusNotFound })
}
