package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// oracleQuantile is the q-quantile of sorted by the nearest-rank rule: the
// smallest value with at least ceil(q*n) values at or below it.
func oracleQuantile(sorted []uint64, q float64) uint64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Every value falls in a bucket whose range holds it, the buckets are
// contiguous and increasing, and a bucket is at most 1/64 of its values wide.
func TestHistBuckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<20; us++ {
		i := histIndex(us)
		if i != prev && i != prev+1 {
			t.Fatalf("value %d: bucket %d after %d", us, i, prev)
		}
		prev = i
		if histUpper(i) < us {
			t.Fatalf("value %d in bucket %d, whose upper bound is %d", us, i, histUpper(i))
		}
		if i > 0 && histUpper(i-1) >= us {
			t.Fatalf("value %d in bucket %d, but bucket %d reaches %d", us, i, i-1, histUpper(i-1))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		us := r.Uint64() >> r.IntN(64)
		i := histIndex(us)
		if i >= len(hist{}.b) {
			t.Fatalf("value %d: bucket %d out of range", us, i)
		}
		lo := uint64(0)
		if i > 0 {
			lo = histUpper(i-1) + 1
		}
		if us < lo || us > histUpper(i) {
			t.Fatalf("value %d not in bucket %d [%d, %d]", us, i, lo, histUpper(i))
		}
		if w := histUpper(i) - lo; us >= 64 && float64(w) > float64(lo)/64 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/64", i, lo, histUpper(i))
		}
	}
}

// Quantiles against a sorted slice: never below the true value, at most one
// bucket (1/64, or 1 µs for small values) above it, never above the max;
// the max is exact.
func TestHistQuantilesAgainstSortedSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dists := map[string]func() time.Duration{
		"uniform ms":  func() time.Duration { return time.Duration(r.IntN(500_000)) * time.Microsecond },
		"exponential": func() time.Duration { return time.Duration(r.ExpFloat64() * float64(80*time.Millisecond)) },
		"small µs":    func() time.Duration { return time.Duration(r.IntN(100)) * time.Microsecond },
		"heavy tail":  func() time.Duration { return time.Duration(math.Pow(10, 2+5*r.Float64())) * time.Microsecond },
		"constant":    func() time.Duration { return 123456 * time.Microsecond },
	}
	for name, draw := range dists {
		for _, n := range []int{1, 2, 3, 10, 99, 1000, 54321} {
			var h hist
			vals := make([]uint64, n)
			for i := range vals {
				d := draw()
				h.add(d)
				vals[i] = uint64(d / time.Microsecond)
			}
			slices.Sort(vals)
			maxUs := vals[n-1]
			if got := h.maxMs(); got != float64(maxUs)/1000 {
				t.Errorf("%s n=%d: max %v ms, want %v", name, n, got, float64(maxUs)/1000)
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				want := oracleQuantile(vals, q)
				gotUs := h.quantile(q) * 1000
				hi := math.Min(float64(maxUs), float64(want)+math.Max(1, float64(want)/64))
				if gotUs < float64(want)-1e-6 || gotUs > hi+1e-6 {
					t.Errorf("%s n=%d q=%v: %v µs, want %d µs (at most %v)", name, n, q, gotUs, want, hi)
				}
			}
		}
	}
}

func TestHistEmptyAndNegative(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 || h.maxMs() != 0 {
		t.Fatal("an empty histogram reports 0")
	}
	h.add(-time.Second)
	if h.quantile(0.5) != 0 || h.maxMs() != 0 || h.n.Load() != 1 {
		t.Fatal("a negative duration counts as 0")
	}
	h.add(time.Hour)
	if got := h.quantile(1); got != float64(time.Hour/time.Millisecond) {
		t.Fatalf("the largest value is exact: %v ms", got)
	}
}

// Concurrent adds lose nothing (run with -race).
func TestHistConcurrentAdds(t *testing.T) {
	var h hist
	var wg sync.WaitGroup
	const workers, each = 8, 5000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.add(time.Duration(w*each+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h.n.Load() != workers*each {
		t.Fatalf("count %d, want %d", h.n.Load(), workers*each)
	}
	var sum uint64
	for i := range h.b {
		sum += h.b[i].Load()
	}
	if sum != workers*each {
		t.Fatalf("buckets hold %d, want %d", sum, workers*each)
	}
	if want := float64(workers*each-1) / 1000; h.maxMs() != want {
		t.Fatalf("max %v ms, want %v", h.maxMs(), want)
	}
	// The median of 0..39999 µs is 19999 µs, within one bucket.
	if got := h.quantile(0.5) * 1000; got < 19999 || got > 19999*(1+1.0/64) {
		t.Fatalf("median %v µs", got)
	}
}
