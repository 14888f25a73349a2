package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBrowserWebMAppender appends real streams, segment by segment, to one
// SourceBuffer in Chromium and Firefox through relay.js's WebMAppender
// (testdata/browser/appender.html) and requires one buffered range from the
// first frame to the last (within 0.1 s): no frame dropped. The streams: every MediaRecorder
// recording in ../testdata/recordings, cut where each blob ends, and a
// capture of a hub's segments of a Chromium publisher with a microphone
// (testdata/segments), which Firefox drops most of when appended as they
// are. What the same segments give appended as they are is logged.
func TestBrowserWebMAppender(t *testing.T) {
	type stream struct{ name, dir, query, mime string }
	var streams []stream
	recs, err := filepath.Glob("../testdata/recordings/*/meta.json")
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	for _, meta := range recs {
		dir := filepath.Dir(meta)
		var m struct {
			RecMime string `json:"recMime"`
		}
		b, err := os.ReadFile(meta)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &m), meta)
		blobs, err := filepath.Glob(filepath.Join(dir, "[0-9]*.webm"))
		require.NoError(t, err)
		streams = append(streams, stream{filepath.Base(dir), "/recordings/" + filepath.Base(dir), fmt.Sprintf("blobs=%d", len(blobs)), m.RecMime})
	}
	segs, err := filepath.Glob("testdata/segments/chromium_clock_vp9-opus/s*.webm")
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	streams = append(streams, stream{"hub_chromium_clock_vp9-opus", "/segments/chromium_clock_vp9-opus", fmt.Sprintf("segments=%d", len(segs)), "video/webm;codecs=vp9,opus"})

	// The files, from another origin (CORS) than the pages.
	files := http.NewServeMux()
	files.Handle("/recordings/", http.StripPrefix("/recordings/", http.FileServer(http.Dir("../testdata/recordings"))))
	files.Handle("/segments/", http.StripPrefix("/segments/", http.FileServer(http.Dir("testdata/segments"))))
	fsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		files.ServeHTTP(w, r)
	}))
	defer fsrv.Close()

	for _, kind := range []string{"chromium", "firefox"} {
		t.Run(kind, func(t *testing.T) {
			b := startBrowserKind(t, kind)
			e := newBrowserEnv(t, "testdata/browser")
			type result struct {
				Ranges    [][2]float64 `json:"ranges"`
				Segments  int          `json:"segments"`
				LastBlock float64      `json:"lastBlock"`
				Error     string       `json:"error"`
			}
			get := func(t *testing.T, s stream, mode string) result {
				q := fmt.Sprintf("%s&base=%s&mime=%s&mode=%s", s.query, url.QueryEscape(fsrv.URL+s.dir), url.QueryEscape(s.mime), mode)
				p := b.open(t, mode, e.pageURL("appender.html?"+q))
				waitPage(t, p, "the appends", "window.result", 60*time.Second)
				r := eval[result](t, p, "window.result")
				require.Empty(t, r.Error, "%s %s", s.name, mode)
				return r
			}
			for _, s := range streams {
				t.Run(s.name, func(t *testing.T) {
					raw := get(t, s, "raw")
					r := get(t, s, "appender")
					t.Logf("%d segments, last block at %.3f s; appended as they are: %v; through the WebMAppender: %v", r.Segments, r.LastBlock, raw.Ranges, r.Ranges)
					require.Len(t, r.Ranges, 1, "buffered ranges through the WebMAppender: a frame was dropped")
					require.LessOrEqual(t, r.Ranges[0][0], 0.1, "the first frame")
					// Up to the last block (where one track ends earlier, Chromium's
					// range ends with it: 27 ms in a Firefox recording).
					require.GreaterOrEqual(t, r.Ranges[0][1], r.LastBlock-0.1, "the last frame")
				})
			}
		})
	}
}
