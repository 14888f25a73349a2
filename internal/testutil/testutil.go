// Package testutil holds the few helpers that the tests of the relay
// package and of the e2e module share.
package testutil

import (
	"context"
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
