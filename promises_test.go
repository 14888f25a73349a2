package relay

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
//	SEGRELAY_PROMISES=testdata/browser/live-figures.jsonl \
//	    go test -race -count=1 -run 'TestBrowser$' -v .
//
// appends one JSON line with the figures, the load average and the commit to
// that file, and fails if a promise is not kept while the machine's 1-minute
// load average when the test began (the load of others: the test itself,
// Chromium and its encoders, adds several) was at most
// SEGRELAY_PROMISES_MAXLOAD (default: the number of CPUs). Above it, the
// figures are recorded as measurements only ("asserted": false).

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
	Time     string             `json:"time"`
	Commit   string             `json:"commit"`
	Command  string             `json:"command"`
	CPUs     int                `json:"cpus"`
	Before   [3]float64         `json:"loadavgBefore"` // when TestBrowser began
	Load     [3]float64         `json:"loadavgAfter"`  // at its end
	MaxLoad  float64            `json:"maxLoad"`
	Steady   string             `json:"steady"`
	Ms       map[string]float64 `json:"ms"`
	Promised map[string]float64 `json:"promisedMs"`
	Asserted bool               `json:"asserted"`
	Kept     bool               `json:"kept"`
	Broken   []string           `json:"broken,omitempty"`
}

// checkPromises runs at the end of TestBrowser when SEGRELAY_PROMISES is set.
func checkPromises(t *testing.T, figs *figures, steady time.Duration) {
	path := os.Getenv("SEGRELAY_PROMISES")
	if path == "" {
		return
	}
	rec := liveFigures{
		Time:     time.Now().UTC().Format(time.RFC3339),
		Commit:   gitCommit(),
		Command:  "SEGRELAY_PROMISES=" + path + " go test -race -count=1 -run 'TestBrowser$' -v .",
		CPUs:     runtime.NumCPU(),
		Before:   figs.loadBefore,
		Load:     loadAvg(),
		MaxLoad:  float64(runtime.NumCPU()),
		Steady:   steady.String(),
		Promised: promisedMs,
	}
	if s := os.Getenv("SEGRELAY_PROMISES_MAXLOAD"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("SEGRELAY_PROMISES_MAXLOAD: %v", err)
		}
		rec.MaxLoad = v
	}
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
	rec.Asserted = rec.Before[0] >= 0 && rec.Before[0] <= rec.MaxLoad && !t.Failed()
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
		t.Errorf("promised live figures not kept at load average %v (at most %v): %v; figures %v, promised %v",
			rec.Before, rec.MaxLoad, rec.Broken, rec.Ms, promisedMs)
	case !rec.Asserted:
		t.Logf("promised live figures not asserted: load average %v before the test over %v, or the test failed", rec.Before, rec.MaxLoad)
	}
}

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
