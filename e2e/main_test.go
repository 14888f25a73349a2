// Package e2e holds the end-to-end tests that drive a real browser
// (headless Chromium, over the DevTools protocol with chromedp): relay.js
// publishing and playing through a Hub. It is a module of its own so that
// the library's importers never download a browser driver.
package e2e

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/segrelay/relay/internal/testutil"
)

// Every test that opens connections must leave no goroutine behind. The
// weak-link bench's toxiproxy is the exception: after Proxy.Stop, a link's
// toxics can stay blocked on a channel send (toxiproxy v2.5.0).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"), goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"))
}

func testCtx(t *testing.T) context.Context { return testutil.Ctx(t) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, cond)
}
