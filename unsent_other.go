//go:build !linux

package relay

import "net"

// unsentBytes: only Linux tells (unsent_linux.go); elsewhere the time bound
// sees the subscriber's queue alone.
func unsentBytes(net.Conn) (uint64, bool) { return 0, false }
