// Command table prints relayload JSON lines (files given as arguments) as a
// Markdown table.
//
//	go run ./tools/perf/table docs/perf/results/*.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

type result struct {
	Label      string  `json:"label"`
	Mode       string  `json:"mode"`
	N          int     `json:"n"`
	Connected  int     `json:"connected"`
	DialFailed int     `json:"dial_failed"`
	Dropped    int     `json:"dropped"`
	Loss       float64 `json:"loss"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	MsgsPS     float64 `json:"recv_msgs_s"`
	Mbps       float64 `json:"recv_mbit_s"`
	CPU        float64 `json:"server_cpu_cores"`
	RSSPerSub  float64 `json:"rss_per_sub_kb"`
	PubMax     float64 `json:"pub_write_max_ms"`
	PubSegMax  float64 `json:"pub_segment_max_ms"`
	ToolCPU    float64 `json:"tool_cpu_cores"`
	LoadAvg    string  `json:"loadavg"`
	GOGC       int     `json:"server_gogc"`
}

func main() {
	fmt.Println("| mode | N | connected | dropped | loss | p50 ms | p90 ms | p99 ms | max ms | msgs/s out | Mbit/s out | server CPU (cores) | µs CPU per sub-segment | RSS/sub KB | publisher max write ms | tool CPU | load avg |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, f := range os.Args[1:] {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r result
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Mode == "" {
				continue
			}
			mode := r.Mode
			if r.Label != "" {
				mode += " (" + r.Label + ")"
			}
			perSeg := 0.0
			if r.Connected > 0 {
				// server CPU per subscriber per 200 ms segment, in µs
				perSeg = r.CPU * 1e6 / (float64(r.Connected) * 5)
			}
			fmt.Printf("| %s | %d | %d | %d | %.2f%% | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f | %.2f | %s |\n",
				mode, r.N, r.Connected, r.Dropped+r.DialFailed, 100*r.Loss, r.P50, r.P90, r.P99, r.Max,
				r.MsgsPS, r.Mbps, r.CPU, perSeg, r.RSSPerSub, r.PubMax, r.ToolCPU, r.LoadAvg)
		}
		fh.Close()
	}
}
