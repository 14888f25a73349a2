package e2e

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------------
// TestWeakLinkBench: the live scenario through a weak link.
//
//	cd e2e && SEGRELAY_WEAKLINK=1 go test -run '^TestWeakLinkBench$' -v -timeout 0 .
//
// puts toxiproxy (in process) between the browser and the hub, on the
// viewers' side or the publisher's, and runs livebench's scenario through it:
// a Chromium publisher of the canvas clock, two relay.js viewers and a
// control, a late joiner, each viewer on a link of its own. Settings:
//
//	SEGRELAY_WEAKLINK_LINKS   viewer:1000:100,publisher:1000:100 (side:kbit/s:RTT ms),
//	                          by default viewers and publishers at 500, 1000 and 2000 kbit/s, 100 ms
//	SEGRELAY_LIVEBENCH_BUILDS, _ROUNDS, _STEADY  as for TestLiveBench
//
// Each row gives the relay.js viewers' glass-to-glass p50, p95 and the
// latest frame's latency at the end (a lag that grows shows there), waits
// and stalled time per viewer, and the slowest viewer's fps.
func TestWeakLinkBench(t *testing.T) {
	if os.Getenv("SEGRELAY_WEAKLINK") == "" {
		t.Skip("the weak-link benchmark runs with SEGRELAY_WEAKLINK=1")
	}
	def := "viewer:500:100,viewer:1000:100,viewer:2000:100,publisher:500:100,publisher:1000:100,publisher:2000:100"
	links := strings.Split(envOr("SEGRELAY_WEAKLINK_LINKS", def), ",")
	builds := strings.Split(envOr("SEGRELAY_LIVEBENCH_BUILDS", "."), ",")
	rounds, err := strconv.Atoi(envOr("SEGRELAY_LIVEBENCH_ROUNDS", "1"))
	require.NoError(t, err, "SEGRELAY_LIVEBENCH_ROUNDS")
	steady := envDuration(t, "SEGRELAY_LIVEBENCH_STEADY", 30*time.Second)
	hubs, scripts := prepareBuilds(t, builds)
	b := startBrowserKind(t, "chromium")

	var table strings.Builder
	table.WriteString("| round | link | hub | relay.js | p50 | p95 | last frame | waiting / viewer | stalled / viewer | fps (min) | late join | control p50 | control waiting | load before → after |\n")
	table.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for round := 1; round <= rounds; round++ {
		for _, link := range links {
			side, kbit, rtt := parseLink(t, link)
			for _, build := range builds {
				hub, js := splitBuild(build)
				t.Run(fmt.Sprintf("%d/%s/%s", round, strings.ReplaceAll(link, ":", "-"), safeName(build)), func(t *testing.T) {
					base := startLiveHub(t, hubs[hub], scripts[js])
					sc := liveScenario{base: base, warmup: 5 * time.Second, steady: steady, lateAt: 8 * time.Second}
					weak := weakLink(t, base, kbit, rtt)
					if side == "viewer" {
						sc.viewBase = weak
					} else {
						sc.pubBase = weak
					}
					res := runLiveScenario(t, b, b, sc)
					p50, p95, waits, stalled, fps, _, _ := res.pooled()
					var last float64
					for _, v := range res.Player {
						if n := len(v.Latencies); n > 0 {
							last = max(last, v.Latencies[n-1])
						}
					}
					late := res.Player[len(res.Player)-1].FirstFrame
					row := fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %.1f | %.2f s | %.1f | %s | %s | %d | %.2f → %.2f |",
						round, link, hub, js, secs(p50), secs(p95), secs(last), waits, stalled/1000, fps, secs(float64(late)),
						secs(res.Control.P50), res.Control.Waits, res.LoadFrom[0], res.LoadTo[0])
					fmt.Println("weaklink:", row)
					table.WriteString(row + "\n")
				})
			}
		}
	}
	fmt.Printf("weaklink (steady %v, %d round(s)):\n%s", steady, rounds, table.String())
}

func parseLink(t *testing.T, s string) (side string, kbit, rttMs int) {
	f := strings.Split(s, ":")
	require.Len(t, f, 3, "link %q: want side:kbit:rtt", s)
	require.True(t, slices.Contains([]string{"viewer", "publisher"}, f[0]), "link %q: side is viewer or publisher", s)
	kbit, err := strconv.Atoi(f[1])
	require.NoError(t, err, "link %q", s)
	rttMs, err = strconv.Atoi(f[2])
	require.NoError(t, err, "link %q", s)
	return f[0], kbit, rttMs
}

// weakLink starts a toxiproxy proxy in front of base's server: each
// connection through it gets kbit kbit/s towards the client and half of
// rttMs of latency each way. It returns the proxy's base URL.
func weakLink(t *testing.T, base string, kbit, rttMs int) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "weak", "127.0.0.1:0", u.Host)
	require.NoError(t, proxy.Start())
	t.Cleanup(proxy.Stop)
	for _, toxic := range []string{
		fmt.Sprintf(`{"type":"bandwidth","stream":"downstream","attributes":{"rate":%d}}`, kbit/8),
		fmt.Sprintf(`{"type":"bandwidth","stream":"upstream","attributes":{"rate":%d}}`, kbit/8),
		fmt.Sprintf(`{"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, rttMs/2),
		fmt.Sprintf(`{"type":"latency","stream":"upstream","attributes":{"latency":%d}}`, rttMs/2),
	} {
		_, err := proxy.Toxics.AddToxicJson(strings.NewReader(toxic))
		require.NoError(t, err, toxic)
	}
	return "http://" + proxy.Listen
}
