package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestBrowserPlayerVsControl guards relay.js's player against a loss of
// live picture that a threshold in seconds cannot see on a busy machine (a
// player that waited every 2–3 s, 0.2 s later, passed every timed test).
// It runs the live scenario (livebench_test.go) with a Chromium publisher
// and, in the same browser at the same time, relay.js viewers beside a
// control viewer (testdata/browser/control.html: one SourceBuffer, every
// segment appended as it arrives). Load slows both alike, so the test
// compares them: it fails when the player waits clearly more often or
// longer than the control, or its latency exceeds the control's plus the
// player's own target. A run whose control broke (a media error, or under
// 15 frames a second) has no reference and is skipped, with why.
//
// SEGRELAY_RELAYJS serves another relay.js to the pages (e.g. an earlier
// revision's, from git show REV:relay.js), to check that the guard sees
// its loss; SEGRELAY_GUARD_STEADY changes the 30 s window.
func TestBrowserPlayerVsControl(t *testing.T) {
	steady := envDuration(t, "SEGRELAY_GUARD_STEADY", 30*time.Second)
	pubB := startBrowserKind(t, "chromium")
	for _, kind := range []string{"chromium", "firefox"} {
		t.Run(kind, func(t *testing.T) {
			viewB := pubB
			if kind != "chromium" {
				viewB = startBrowserKind(t, kind)
			}
			e := newBrowserEnv(t, "testdata/browser")
			res := runLiveScenario(t, pubB, viewB, liveScenario{base: e.srv.URL, warmup: 5 * time.Second, steady: steady, lateAt: 8 * time.Second})
			t.Logf("load average %.2f → %.2f", res.LoadFrom[0], res.LoadTo[0])
			if why := noReference(res.Control); why != "" {
				// The control is Firefox's MSE fed Chromium's stream as it
				// comes: now and then it gets a decode error (the known
				// MediaError 3 of docs/browser-facts.md) or stops.
				t.Skipf("no reference in this run: %s", why)
			}
			// The known Firefox decode error of Chromium's VP9 (the
			// control's skip above) strikes one viewer or all of them at
			// random; with three relay.js viewers beside one control, one
			// start-over more than the control per viewer is tolerated, as
			// TestBrowser does, and two fail.
			knownStartOvers := 0
			if kind == "firefox" {
				knownStartOvers = 1
			}
			for _, v := range res.Player {
				if v.MediaErrors > res.Control.MediaErrors && v.MediaErrors <= res.Control.MediaErrors+knownStartOvers {
					t.Logf("%s: %d media errors, the control %d: the known decode error of docs/browser-facts.md, tolerated", v.Name, v.MediaErrors, res.Control.MediaErrors)
				}
			}
			for _, msg := range compareWithControl(res, knownStartOvers) {
				t.Error(msg)
			}
		})
	}
}

// compareWithControl returns what the relay.js viewers of res did clearly
// worse than the control viewer beside them; knownStartOvers is how many
// media errors a viewer may have over the control's (a browser's known
// defect that strikes viewers at random, not in step with the control).
//
// "Clearly": the control's waits plus half as many again and two more (a
// busy machine makes both wait now and then, not in step), and stalled time
// over the control's by half and 0.3 s. Latency: the control has none to
// keep, it plays at 1x from where it started, so the player, which aims for
// its target from the live edge, is never further behind than that plus its
// target; this holds only while the control has not skipped a hole (a skip
// brings it closer to live), so it is checked only then.
func compareWithControl(res liveResult, knownStartOvers int) []string {
	var out []string
	c := res.Control
	for _, v := range res.Player {
		if lim := float64(c.Waits)*1.5 + 2; float64(v.Waits) > lim {
			out = append(out, fmt.Sprintf("%s: waited %d times, the control %d (at most %.0f)", v.Name, v.Waits, c.Waits, lim))
		}
		if lim := float64(c.Stalled)*1.5 + 300; float64(v.Stalled) > lim {
			out = append(out, fmt.Sprintf("%s: stalled %d ms, the control %d ms (at most %.0f ms)", v.Name, v.Stalled, c.Stalled, lim))
		}
		if lim := c.P50 + v.Target; c.GapSkips == 0 && v.P50 > lim {
			out = append(out, fmt.Sprintf("%s: latency p50 %s, the control's %s plus the player's target %s", v.Name, secs(v.P50), secs(c.P50), secs(v.Target)))
		}
		if v.MediaErrors > c.MediaErrors+knownStartOvers {
			out = append(out, fmt.Sprintf("%s: %d media errors, the control %d", v.Name, v.MediaErrors, c.MediaErrors))
		}
	}
	return out
}

// noReference says why the control cannot serve as one ("" if it can): it
// got a media error, or showed less than 15 frames a second (about half).
func noReference(c viewerFigures) string {
	if c.MediaErrors > 0 {
		return fmt.Sprintf("the control got %d media errors", c.MediaErrors)
	}
	if c.FPS < 15 {
		return fmt.Sprintf("the control showed %.1f frames a second (gap skips %d)", c.FPS, c.GapSkips)
	}
	return ""
}
