package relay

import (
	"net"
	"syscall"
	"unsafe"
)

// unsentBytes returns the bytes the kernel still holds of what was written
// to conn: not yet sent, or sent and not yet acknowledged by the peer
// (SIOCOUTQ). ok is false when conn cannot tell.
func unsentBytes(conn net.Conn) (n uint64, ok bool) {
	if u, isTLS := conn.(interface{ NetConn() net.Conn }); isTLS {
		conn = u.NetConn()
	}
	sc, isSys := conn.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	if rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v)))
	}) != nil || errno != 0 || v < 0 {
		return 0, false
	}
	return uint64(v), true
}
