package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserFirefoxSources publishes from Firefox what a page would rather
// than a canvas: its (fake) camera and microphone, VP8 + Opus, and the
// microphone alone, Opus. A Firefox viewer and a Chromium viewer must play
// it: media flows, the video's time advances, and with a camera decoded
// frames are shown; no error. (The fake camera draws no clock, so there is
// no latency figure here: TestBrowser has those.)
func TestBrowserFirefoxSources(t *testing.T) {
	ff := startFirefox(t)
	ch := startBrowser(t)
	for _, c := range []struct {
		name, source, mime, encoder string
		video                       bool
	}{
		// Video: WebCodecs, for a keyframe a second (relay.js's
		// PublishOptions.encoder); audio alone needs no keyframes.
		{"camera-mic", "camera", "video/webm;codecs=vp8,opus", "webcodecs", true},
		{"audio-only", "mic", "audio/webm;codecs=opus", "mediarecorder", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newBrowserEnv(t, "testdata/browser")
			stream := "ff-" + c.source
			pub := ff.open(t, "firefox-publisher", e.pageURL(fmt.Sprintf("publish.html?stream=%s&source=%s", stream, c.source)))
			waitPage(t, pub, "the publisher to be live", `window.pub && pub.status === "live" && pub.stats.blobs > 2`, 15*time.Second)
			assert.Equal(t, c.mime, eval[string](t, pub, "pub.mimeType"))
			assert.Equal(t, c.encoder, eval[string](t, pub, "pub.encoder"))
			viewers := []*page{
				ff.open(t, "firefox-viewer", e.pageURL("watch.html?stream="+stream)),
				ch.open(t, "chromium-viewer", e.pageURL("watch.html?stream="+stream)),
			}
			for _, v := range viewers {
				waitPage(t, v, "the viewer to play", `player.status === "live" && video.currentTime > 0`, 15*time.Second)
			}
			type sample struct {
				Time   float64 `json:"time"`
				Frames int     `json:"frames"`
				Status string  `json:"status"`
			}
			const probe = `({time: video.currentTime, frames: report().frames.length / 3, status: player.status})`
			before := make([]sample, len(viewers))
			for i, v := range viewers {
				before[i] = eval[sample](t, v, probe)
			}
			const watch = 8 * time.Second
			time.Sleep(watch)
			for i, v := range viewers {
				after := eval[sample](t, v, probe)
				r := eval[viewerReport](t, v, "report()")
				var errs, sessions []string
				for _, ev := range r.Events {
					switch ev[1] {
					case "error", "player-error":
						errs = append(errs, fmt.Sprint(ev[1], " ", ev[2]))
					case "player-session":
						sessions = append(sessions, fmt.Sprint(ev[2]))
					}
				}
				played := after.Time - before[i].Time
				frames := after.Frames - before[i].Frames
				t.Logf("%s: %s over %v: currentTime +%.2f s, %d frames shown, waiting %d, player %s %v",
					v.name, c.mime, watch, played, frames, r.count("waiting", 0, 1<<62), r.Status, r.Stats)
				assert.Empty(t, errs, "%s: errors", v.name)
				require.NotEmpty(t, sessions, v.name)
				assert.Contains(t, sessions[len(sessions)-1], `"mime":"`+c.mime+`"`, "%s: the session's type", v.name)
				// "stalled" is the player waiting for media (a Firefox
				// publisher's stream does); "error" or "failed" is broken.
				assert.Contains(t, []string{"live", "stalled"}, after.Status, v.name)
				// Generous: a stall of a few seconds is the player's
				// business (TestBrowser measures those); not playing is not.
				assert.Greater(t, played, watch.Seconds()/4, "%s: the media time hardly advanced", v.name)
				if c.video {
					assert.GreaterOrEqual(t, frames, int(watch.Seconds()), "%s: too few video frames shown", v.name)
					assert.Positive(t, eval[int](t, v, "video.videoWidth"), v.name)
				} else {
					assert.Zero(t, eval[int](t, v, "video.videoWidth"), "%s: an audio-only stream with a picture?", v.name)
				}
			}
		})
	}
}
