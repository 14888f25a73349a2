package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README promises live figures that a busy machine cannot keep:
// glass-to-glass p50 ≤ 0.6 s and p95 ≤ 1 s, a late joiner's first frame
// ≤ 0.5 s, playing again ≤ 2 s after a recorder or hub restart. TestBrowser
// asserts only bounds that hold under load (2.5 s, 4 s, 2 s, 6 s) and logs
// the figures. Opt-in, it also checks the promises:
//
//	cd e2e && SEGRELAY_PROMISES=testdata/browser/live-figures.jsonl \
//	    go test -race -count=1 -run 'TestBrowser$/chromium-chromium' -v .
//
// appends one JSON line with the figures, the load average and the commit to
// that file, and fails if a promise is not kept while the machine was
// quiet: the CPU that other processes than the test and its Chromium used
// during the run, on average, was at most SEGRELAY_PROMISES_MAXOTHERS CPUs
// (default 0.25; from /proc/stat and /proc/PID/stat). The load average is
// no measure of that: the test itself, Chromium encoding and decoding, adds
// several. When others were busier, the figures are recorded as
// measurements only ("asserted": false).

// promisedMs are the promised figures, in ms, by the key TestBrowser
// records them under.
var promisedMs = map[string]float64{
	"p50":                600,
	"p95":                1000,
	"lateJoinFirstFrame": 500,
	"recoveryRecorder":   2000,
	"recoveryHubRestart": 2000,
}

// measure records a figure for the promise check.
func (f *figures) measure(key string, ms float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ms == nil {
		f.ms = map[string]float64{}
	}
	f.ms[key] = ms
}

// liveFigures is one line of the record.
type liveFigures struct {
	Time      string             `json:"time"`
	Commit    string             `json:"commit"`
	Command   string             `json:"command"`
	CPUs      int                `json:"cpus"`
	Before    [3]float64         `json:"loadavgBefore"` // when TestBrowser began
	Load      [3]float64         `json:"loadavgAfter"`  // at its end
	Wall      float64            `json:"wallS"`
	OwnCPU    float64            `json:"ownCPUs"`    // CPUs used by the test and Chromium, on average
	OthersCPU float64            `json:"othersCPUs"` // CPUs used by every other process, on average
	MaxOthers float64            `json:"maxOthersCPUs"`
	Steady    string             `json:"steady"`
	Ms        map[string]float64 `json:"ms"`
	Promised  map[string]float64 `json:"promisedMs"`
	Asserted  bool               `json:"asserted"`
	Kept      bool               `json:"kept"`
	Broken    []string           `json:"broken,omitempty"`
}

// checkPromises runs at the end of TestBrowser when SEGRELAY_PROMISES is set.
func checkPromises(t *testing.T, figs *figures, steady time.Duration) {
	path := os.Getenv("SEGRELAY_PROMISES")
	if path == "" {
		return
	}
	rec := liveFigures{
		Time:      time.Now().UTC().Format(time.RFC3339),
		Commit:    gitCommit(),
		Command:   "SEGRELAY_PROMISES=" + path + " go test -race -count=1 -run 'TestBrowser$/chromium-chromium' -v .",
		CPUs:      runtime.NumCPU(),
		Before:    figs.before.load,
		Load:      loadAvg(),
		MaxOthers: 0.25,
		Steady:    steady.String(),
		Promised:  promisedMs,
	}
	if s := os.Getenv("SEGRELAY_PROMISES_MAXOTHERS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("SEGRELAY_PROMISES_MAXOTHERS: %v", err)
		}
		rec.MaxOthers = v
	}
	after := sampleMachine()
	rec.Wall = after.at.Sub(figs.before.at).Seconds()
	rec.OwnCPU = round2(float64(after.ours-figs.before.ours) / clockTicks / rec.Wall)
	rec.OthersCPU = round2(float64((after.busy-figs.before.busy)-(after.ours-figs.before.ours)) / clockTicks / rec.Wall)
	rec.Wall = round2(rec.Wall)
	figs.mu.Lock()
	rec.Ms = figs.ms
	figs.mu.Unlock()
	rec.Kept = true
	for key, limit := range promisedMs {
		v, ok := rec.Ms[key]
		if !ok || v > limit {
			rec.Kept = false
			rec.Broken = append(rec.Broken, key)
		}
	}
	rec.Asserted = figs.before.busy > 0 && rec.OthersCPU <= rec.MaxOthers && !t.Failed()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live figures: %s", b)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case rec.Asserted && !rec.Kept:
		t.Errorf("promised live figures not kept on a quiet machine (others used %.2f CPUs, at most %.2f): %v; figures %v, promised %v",
			rec.OthersCPU, rec.MaxOthers, rec.Broken, rec.Ms, promisedMs)
	case !rec.Asserted:
		t.Logf("promised live figures not asserted: other processes used %.2f CPUs (over %.2f), or the test failed", rec.OthersCPU, rec.MaxOthers)
	}
}

// machineSample is what sampleMachine reads: the CPU time, in clock ticks,
// that the whole machine spent busy, and that this process and its
// descendants (Chromium) used.
type machineSample struct {
	at         time.Time
	busy, ours int64
	load       [3]float64
}

const clockTicks = 100 // USER_HZ on Linux

func sampleMachine() machineSample {
	m := machineSample{at: time.Now(), load: loadAvg()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i != 3 && i != 4 && i < 8 { // not idle, not iowait; guest is in user
				m.busy += n
			}
		}
	}
	// This process and its descendants, living ones and those they reaped.
	parent := map[int]int{}
	cpu := map[int]int64{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:])) // state ppid ... utime(12) stime cutime cstime
		if len(f) < 15 {
			continue
		}
		parent[pid], _ = strconv.Atoi(f[1])
		for _, k := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseInt(f[k], 10, 64)
			cpu[pid] += n
		}
	}
	self := os.Getpid()
	for pid := range cpu {
		for p := pid; p > 1; p = parent[p] {
			if p == self {
				m.ours += cpu[pid]
				break
			}
		}
	}
	return m
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return [3]float64{-1, -1, -1}
	}
	for i, f := range strings.Fields(string(b))[:3] {
		l[i], _ = strconv.ParseFloat(f, 64)
	}
	return l
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += "+changes"
	}
	return c
}
