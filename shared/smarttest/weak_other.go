//go:build !linux

package smarttest

import (
	"errors"
	"net"
)

func setBacklog(*net.TCPListener, int) error {
	return errors.New("re-setting a listen backlog is only known to work on Linux")
}
