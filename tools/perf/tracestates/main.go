// Command tracestates says where chosen goroutines of a Go execution trace
// spent their time: running, runnable (waiting for a P), in a syscall, or
// waiting, and on what. It reads the traces that relayload -trace writes.
// A nested module (golang.org/x/exp/trace), outside the workspace:
//
//	cd tools/perf/tracestates
//	GOWORK=off go run . /tmp/t/load.trace 'main.(*publisher).run' 'main.(*publisher).run'
//	GOWORK=off go run . /tmp/t/server.trace readMessages
//
// The second argument picks the goroutines whose own stack (at any state
// change) has a function containing it. The optional third names the
// function a goroutine parks in between pieces of work: each stretch from
// leaving that wait to parking there again (for the load tool's publisher:
// sending one segment, which relayload times as its write) is a busy
// period, reported with its time in each state.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type period struct {
	start, end trace.Time
	by         map[string]time.Duration
}

type goroutine struct {
	matched bool
	state   string
	since   trace.Time
	spans   map[string][]time.Duration // per state
	cur     *period
	periods []*period
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tracestates FILE MATCH [PARK]")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	match, park := os.Args[2], ""
	if len(os.Args) > 3 {
		park = os.Args[3]
	}
	r, err := trace.NewReader(f)
	if err != nil {
		fail(err)
	}
	gs := map[trace.GoID]*goroutine{}
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := gs[st.Resource.Goroutine()]
		if g == nil {
			g = &goroutine{spans: map[string][]time.Duration{}}
			gs[st.Resource.Goroutine()] = g
		}
		from, to := st.Goroutine()
		stk := st.Stack
		if stk == trace.NoStack {
			stk = ev.Stack()
		}
		// A creation's stack is the creator's.
		if !g.matched && from != trace.GoNotExist && has(stk, match) {
			g.matched = true
		}
		if g.state != "" {
			d := ev.Time().Sub(g.since)
			g.spans[g.state] = append(g.spans[g.state], d)
			if g.cur != nil {
				g.cur.by[g.state] += d
			}
		}
		state := to.String()
		if to == trace.GoWaiting {
			where := caller(stk)
			state = "Waiting (" + st.Reason + ") in " + where
			if park != "" && g.cur != nil && strings.Contains(where, park) {
				g.cur.end = ev.Time()
				g.periods = append(g.periods, g.cur)
				g.cur = nil
			}
		}
		if park != "" && g.cur == nil && from == trace.GoWaiting && strings.Contains(g.state, park) {
			g.cur = &period{start: ev.Time(), by: map[string]time.Duration{}}
		}
		g.state, g.since = state, ev.Time()
	}
	fmt.Printf("%s: %.2f s\n", os.Args[1], last.Sub(first).Seconds())
	var ids []trace.GoID
	for id, g := range gs {
		if g.matched {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		report(id, gs[id])
	}
}

func report(id trace.GoID, g *goroutine) {
	fmt.Printf("goroutine %d\n", id)
	total := map[string]time.Duration{}
	var states []string
	for s, l := range g.spans {
		for _, d := range l {
			total[s] += d
		}
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool { return total[states[i]] > total[states[j]] })
	for _, s := range states {
		l := g.spans[s]
		slices.SortFunc(l, func(a, b time.Duration) int { return int(b - a) })
		var top []string
		for _, d := range l[:min(5, len(l))] {
			top = append(top, ms(d))
		}
		fmt.Printf("  %-72.72s %9s ms in %6d, p99 %7s, longest %s\n", s, ms(total[s]), len(l), ms(l[len(l)/100]), strings.Join(top, " "))
	}
	if len(g.periods) == 0 {
		return
	}
	ps := g.periods
	sort.Slice(ps, func(i, j int) bool { return ps[i].end.Sub(ps[i].start) > ps[j].end.Sub(ps[j].start) })
	over := 0
	for _, p := range ps {
		if p.end.Sub(p.start) > 20*time.Millisecond {
			over++
		}
	}
	fmt.Printf("  %d busy periods, %d over 20 ms; the longest:\n", len(ps), over)
	for _, p := range ps[:min(8, len(ps))] {
		var parts []string
		for s, d := range p.by {
			if d >= 100*time.Microsecond {
				parts = append(parts, s+" "+ms(d))
			}
		}
		sort.Strings(parts)
		fmt.Printf("    %s ms: %s\n", ms(p.end.Sub(p.start)), strings.Join(parts, "; "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }

func has(st trace.Stack, s string) bool {
	for fr := range st.Frames() {
		if strings.Contains(fr.Func, s) {
			return true
		}
	}
	return false
}

// caller is the innermost function of st outside the runtime and sync.
func caller(st trace.Stack) string {
	for fr := range st.Frames() {
		if !strings.HasPrefix(fr.Func, "runtime.") && !strings.HasPrefix(fr.Func, "internal/") && !strings.HasPrefix(fr.Func, "sync.") {
			return fr.Func
		}
	}
	return ""
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracestates:", err)
	os.Exit(1)
}
