package smarttest

import (
	"net"
	"syscall"
)

// setBacklog calls listen(2) again on a listening socket with a new
// backlog, which Linux applies to its accept queue.
func setBacklog(ln *net.TCPListener, backlog int) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	return lerr
}
