// Package testutil holds the few helpers that the tests of the relay
// package and of the e2e module share.
package testutil

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Ctx returns a context for one test's work, ended after 20 s (a bound for a
// hung test, not a speed target) or when the test ends.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond until it holds, or fails the test after 15 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Tool returns the path of the command-line tool name (ffmpeg, ffprobe).
// Without it the test is skipped, or fails when CI=true: .ci/run installs
// every tool the tests need, so a missing one there is a broken setup.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true: .ci/run should have installed it): %v", name, err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}
