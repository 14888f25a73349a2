package relay

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test that opens connections must leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
