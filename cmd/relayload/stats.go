package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// hist is a lock-free log-linear histogram of durations in microseconds:
// 64 sub-buckets per power of two (about 1.5 % precision), exact max.
type hist struct {
	b     [64 * 64]atomic.Uint64
	n     atomic.Uint64
	maxUs atomic.Uint64
}

func histIndex(us uint64) int {
	if us < 64 {
		return int(us)
	}
	e := bits.Len64(us) - 7 // us >> e is in [64, 128)
	return (e+1)*64 + int(us>>e) - 64
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := i/64 - 1
	m := uint64(i%64 + 64)
	return (m+1)<<e - 1
}

func (h *hist) add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	i := min(histIndex(us), len(h.b)-1)
	h.b[i].Add(1)
	h.n.Add(1)
	for {
		m := h.maxUs.Load()
		if us <= m || h.maxUs.CompareAndSwap(m, us) {
			break
		}
	}
}

// quantile returns the q-quantile in milliseconds (0 when empty).
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= max(want, 1) {
			return math.Min(float64(histUpper(i)), float64(h.maxUs.Load())) / 1000
		}
	}
	return float64(h.maxUs.Load()) / 1000
}

func (h *hist) maxMs() float64 { return float64(h.maxUs.Load()) / 1000 }

// procStat is what /proc/PID tells of a process.
type procStat struct {
	cpu     time.Duration // utime + stime
	rssKB   int64
	hwmKB   int64
	threads int64
}

const clockTick = 100 // USER_HZ on Linux

func readProc(pid int) (procStat, error) {
	var ps procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ps, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return ps, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	ps.cpu = time.Duration(ut+st) * time.Second / clockTick
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	sc := bufio.NewScanner(bytes.NewReader(s))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "VmRSS":
			ps.rssKB = n
		case "VmHWM":
			ps.hwmKB = n
		case "Threads":
			ps.threads = n
		}
	}
	return ps, nil
}

// procNoFile returns the soft RLIMIT_NOFILE of a process.
func procNoFile(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) > 0 {
				if f[0] == "unlimited" {
					return math.MaxInt64, nil
				}
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits: no Max open files", pid)
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to its hard limit
// (Go does so at start on Linux too; this makes it explicit) and returns it.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// machineCPU is the whole machine's CPU time so far.
type machineCPU struct {
	busy, steal, pressure time.Duration
}

// readMachine reads /proc/stat's cpu line (busy: all but idle, iowait and
// steal) and /proc/pressure/cpu's "some" total; what it cannot read is 0.
func readMachine() machineCPU {
	var m machineCPU
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) >= 9 && f[0] == "cpu" {
			var v [8]int64
			for i := range v {
				v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
			}
			// user nice system idle iowait irq softirq steal
			m.busy = time.Duration(v[0]+v[1]+v[2]+v[5]+v[6]) * time.Second / clockTick
			m.steal = time.Duration(v[7]) * time.Second / clockTick
		}
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if _, tot, ok := strings.Cut(line, "total="); ok {
			us, _ := strconv.ParseInt(strings.TrimSpace(tot), 10, 64)
			m.pressure = time.Duration(us) * time.Microsecond
		}
	}
	return m
}
