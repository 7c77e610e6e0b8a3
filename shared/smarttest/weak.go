package smarttest

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WeakServer serves a handler the way a small FHIR server does (Python's
// http.server, for one, whose accept queue holds 5): it takes Workers
// connections at a time and answers one request on each (no keep-alive),
// and its kernel accept queue holds only Backlog connections. The kernel
// itself refuses the connections beyond them: it drops their SYNs, and the
// client's TCP stack sends them again one second later, then three. Nothing
// in the app's client is faked.
type WeakServer struct {
	// URL is http://127.0.0.1:PORT.
	URL string

	mu       sync.Mutex
	accepted int64
}

// StartWeakServer starts a WeakServer for h on a loopback port with the
// given accept queue (listen(2) backlog) and number of workers; it stops
// when t ends. It needs Linux, which honours a listen backlog re-set on a
// listening socket; elsewhere the test is skipped.
func StartWeakServer(t testing.TB, h http.Handler, backlog, workers int) *WeakServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := setBacklog(ln.(*net.TCPListener), backlog); err != nil {
		ln.Close()
		t.Skipf("smarttest: cannot set a listen backlog here: %v", err)
	}
	ws := &WeakServer{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	go srv.Serve(&workerListener{Listener: ln, slots: make(chan struct{}, workers), ws: ws})
	t.Cleanup(func() { srv.Close() })
	return ws
}

// Accepted counts the connections the server has accepted so far.
func (ws *WeakServer) Accepted() int64 {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.accepted
}

// workerListener accepts a connection only when a worker is free, so the
// rest wait in the kernel's accept queue, and overflow it.
type workerListener struct {
	net.Listener
	slots chan struct{}
	ws    *WeakServer
}

func (l *workerListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.ws.mu.Lock()
	l.ws.accepted++
	l.ws.mu.Unlock()
	return &workerConn{Conn: c, release: func() { <-l.slots }}, nil
}

// workerConn frees its worker when the server closes it.
type workerConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *workerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ListenOverflows returns the kernel's count of connections dropped
// because an accept queue was full (TcpExt ListenOverflows, Linux). It
// counts every socket on the machine: compare two readings around a run
// on a machine that runs nothing else that overflows.
func ListenOverflows() (int64, bool) {
	f, err := os.Open("/proc/net/netstat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if len(names) == 0 || names[0] != "TcpExt:" || !sc.Scan() {
			continue
		}
		values := strings.Fields(sc.Text())
		for i, n := range names {
			if n == "ListenOverflows" && i < len(values) {
				v, err := strconv.ParseInt(values[i], 10, 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}
