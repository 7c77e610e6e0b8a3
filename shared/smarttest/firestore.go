// Package smarttest holds SMART Calc's test helpers and fakes, in one place
// like go-oidc's oidctest: the Firestore emulator harness here, and the
// fakes other packages' tests share.
package smarttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// EmulatorHostEnv is the variable the Firestore client library reads to talk
// to the emulator instead of Google Cloud.
const EmulatorHostEnv = "FIRESTORE_EMULATOR_HOST"

const (
	firestoreStartTimeout  = 60 * time.Second
	firestoreStopTimeout   = 15 * time.Second
	firestoreWarmUpTimeout = 60 * time.Second
)

// RunWithFirestore runs m against a Firestore emulator and returns the exit
// code for os.Exit. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(smarttest.RunWithFirestore(m)) }
//
// If FIRESTORE_EMULATOR_HOST is set, that emulator is used. Otherwise
// RunWithFirestore starts `gcloud emulators firestore start` on a free
// loopback port, waits until it answers, runs the tests and stops the
// emulator's whole process group (gcloud, its script and the Java server).
// The process group also dies if the test binary itself dies (a test
// timeout, a crash, a signal), so no Java process outlives the tests.
//
// If the emulator cannot start, RunWithFirestore says why, prints the tail
// of the emulator's output, and returns a non-zero code without running the
// tests: Firestore tests fail rather than skip.
func RunWithFirestore(m *testing.M) int {
	if host := os.Getenv(EmulatorHostEnv); host != "" {
		if err := warmUpFirestore(); err != nil {
			fmt.Fprintf(os.Stderr, "smarttest: firestore emulator at %s (from %s): %v\n", host, EmulatorHostEnv, err)
			return 1
		}
		return m.Run()
	}
	emu, err := startFirestoreEmulator()
	if err != nil {
		fmt.Fprintf(os.Stderr, "smarttest: %v\n", err)
		return 1
	}
	defer emu.stop()
	os.Setenv(EmulatorHostEnv, emu.host)
	defer os.Unsetenv(EmulatorHostEnv)
	if err := warmUpFirestore(); err != nil {
		fmt.Fprintf(os.Stderr, "smarttest: firestore emulator at %s: %v\n", emu.host, err)
		emu.printTail(os.Stderr)
		return 1
	}
	return m.Run()
}

// FirestoreEmulator is an emulator of a test's own, for fault tests that
// kill Firestore and bring it back. The shared emulator RunWithFirestore
// starts is never killed.
type FirestoreEmulator struct {
	host string
	mu   sync.Mutex
	emu  *firestoreEmulator
}

// StartFirestoreEmulator starts an emulator on a free loopback port, for this
// test alone, and stops it when the test ends. It fails the test if the
// emulator cannot start.
func StartFirestoreEmulator(tb testing.TB) *FirestoreEmulator {
	tb.Helper()
	emu, err := startFirestoreEmulator()
	if err != nil {
		tb.Fatalf("smarttest: %v", err)
	}
	e := &FirestoreEmulator{host: emu.host, emu: emu}
	if err := warmUpFirestoreAt(emu.host); err != nil {
		emu.stop()
		tb.Fatalf("smarttest: firestore emulator at %s: %v", emu.host, err)
	}
	tb.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.emu != nil {
			e.emu.stop()
			e.emu = nil
		}
	})
	return e
}

// Host is the emulator's host:port, the same across Kill and Restart.
func (e *FirestoreEmulator) Host() string { return e.host }

// Project returns a project id of its own, to isolate a test's documents.
func (e *FirestoreEmulator) Project() string { return uniqueFirestoreProjectID() }

// Kill stops the emulator at once (SIGKILL to its whole process group), as
// an outage would, and waits until it is gone. Its data is lost.
func (e *FirestoreEmulator) Kill(tb testing.TB) {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.emu == nil {
		return
	}
	pgid := e.emu.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !waitProcessGroupGone(pgid, e.emu.exited, firestoreStopTimeout) {
		tb.Fatalf("smarttest: firestore emulator (process group %d) survived SIGKILL", pgid)
	}
	e.emu.stop() // releases the watchdog and the log
	e.emu = nil
}

// Restart starts the emulator again on the same host after Kill, and
// waits until it answers. It starts empty.
func (e *FirestoreEmulator) Restart(tb testing.TB) {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.emu != nil {
		tb.Fatalf("smarttest: Restart without Kill")
	}
	emu, err := startFirestoreEmulatorAt(e.host)
	if err != nil {
		tb.Fatalf("smarttest: restart: %v", err)
	}
	e.emu = emu
}

// firestoreEmulator is a running `gcloud emulators firestore start`.
type firestoreEmulator struct {
	host     string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when gcloud has exited
	waitErr  error         // valid after exited is closed
	watchdog *exec.Cmd
	lease    *os.File // write end of the watchdog's pipe
	logPath  string
}

// firestoreWatchdogScript blocks reading fd 3, a pipe whose write end only
// the test process holds. The read returns when that process closes it or
// dies for any reason (a test timeout, a crash, a signal), and the watchdog
// then terminates the emulator's process group ($1), killing it if it
// lingers.
const firestoreWatchdogScript = `read -r _ <&3
for i in 1 2 3 4 5 6 7 8 9 10; do
	kill -TERM "-$1" 2>/dev/null || exit 0
	sleep 1
done
kill -KILL "-$1" 2>/dev/null`

func startFirestoreEmulator() (*firestoreEmulator, error) {
	port, err := firestoreEmulatorPort()
	if err != nil {
		return nil, fmt.Errorf("cannot start the Firestore emulator: no free port: %w", err)
	}
	return startFirestoreEmulatorAt(fmt.Sprintf("127.0.0.1:%d", port))
}

func startFirestoreEmulatorAt(host string) (*firestoreEmulator, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, fmt.Errorf("cannot start the Firestore emulator: gcloud not found in PATH (install the Google Cloud SDK with the cloud-firestore-emulator component, or set %s): %w", EmulatorHostEnv, err)
	}
	logFile, err := os.CreateTemp("", "firestore-emulator-*.log")
	if err != nil {
		return nil, fmt.Errorf("cannot start the Firestore emulator: log file: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(gcloud, "emulators", "firestore", "start", "--host-port="+host, "--quiet")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// gcloud moves itself into a process group of its own unless it leads
	// its session, so make it a session leader: its process group (its pid)
	// then holds gcloud, the emulator script and the Java server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		os.Remove(logFile.Name())
		return nil, fmt.Errorf("cannot start the Firestore emulator: %w", err)
	}
	e := &firestoreEmulator{host: host, cmd: cmd, exited: make(chan struct{}), logPath: logFile.Name()}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	if err := e.startWatchdog(); err != nil {
		e.stop()
		return nil, fmt.Errorf("cannot start the Firestore emulator: watchdog: %w", err)
	}
	if err := e.waitReady(); err != nil {
		err = fmt.Errorf("cannot start the Firestore emulator (%s): %w", strings.Join(cmd.Args, " "), err)
		e.printTail(os.Stderr)
		e.stop()
		return nil, err
	}
	return e, nil
}

// startWatchdog starts the process that stops the emulator if the test
// process dies without calling stop.
func (e *firestoreEmulator) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	wd := exec.Command("/bin/sh", "-c", firestoreWatchdogScript, "sh", strconv.Itoa(e.cmd.Process.Pid))
	wd.ExtraFiles = []*os.File{r} // fd 3
	// Its own process group, so that a Ctrl-C aimed at the tests does not
	// kill the watchdog before it has done its job.
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := wd.Start(); err != nil {
		w.Close()
		return err
	}
	e.watchdog, e.lease = wd, w
	return nil
}

// waitReady polls the emulator's HTTP endpoint, which answers "Ok" once the
// server is up.
func (e *firestoreEmulator) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(firestoreStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-e.exited:
			return fmt.Errorf("emulator exited before it was ready: %v", e.waitErr)
		default:
		}
		resp, err := client.Get("http://" + e.host + "/")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "Ok") {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("emulator not ready after %v", firestoreStartTimeout)
}

// stop terminates the emulator's process group, waits until it is gone,
// then releases the watchdog.
func (e *firestoreEmulator) stop() {
	pgid := e.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if !waitProcessGroupGone(pgid, e.exited, firestoreStopTimeout) {
		fmt.Fprintf(os.Stderr, "smarttest: firestore emulator (process group %d) ignored SIGTERM; killing it\n", pgid)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		waitProcessGroupGone(pgid, e.exited, 5*time.Second)
	}
	if e.watchdog != nil {
		e.lease.Close() // the watchdog finds the group gone and exits
		_ = e.watchdog.Wait()
	}
	os.Remove(e.logPath)
}

// waitProcessGroupGone waits until gcloud has been reaped and no process is
// left in process group pgid.
func waitProcessGroupGone(pgid int, exited <-chan struct{}, timeout time.Duration) bool {
	deadline := time.After(timeout)
	select {
	case <-exited:
	case <-deadline:
		return false
	}
	for {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printTail prints the last lines of the emulator's output.
func (e *firestoreEmulator) printTail(w io.Writer) {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	fmt.Fprintf(w, "--- firestore emulator output (tail) ---\n%s\n---\n", b)
}

func firestoreEmulatorPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// warmUpFirestore runs a few operations so that the emulator's first, slow RPCs (JVM
// warm-up, ~1–2 s) do not land in a test's timeout or a benchmark.
func warmUpFirestore() error { return warmUpFirestoreAt("") }

// warmUpFirestoreAt warms up the emulator at host ("" for the one
// FIRESTORE_EMULATOR_HOST names).
func warmUpFirestoreAt(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), firestoreWarmUpTimeout)
	defer cancel()
	var opts []option.ClientOption
	if host != "" {
		conn, err := grpc.NewClient("passthrough:///"+host,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(firestoreEmulatorOwner{}))
		if err != nil {
			return fmt.Errorf("warm-up: dial: %w", err)
		}
		defer conn.Close()
		opts = append(opts, option.WithGRPCConn(conn))
	}
	c, err := firestore.NewClient(ctx, "smarttest-warmup-"+firestoreRandomHex(4), opts...)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	defer c.Close()
	for i := range 50 {
		ref := c.Collection("warmup").Doc(fmt.Sprintf("d%d", i))
		if _, err := ref.Create(ctx, map[string]any{"n": i, "at": time.Now()}); err != nil {
			return fmt.Errorf("warm-up: create: %w", err)
		}
		snap, err := ref.Get(ctx)
		if err != nil {
			return fmt.Errorf("warm-up: get: %w", err)
		}
		if _, err := ref.Update(ctx, []firestore.Update{{Path: "n", Value: firestore.Delete}}, firestore.LastUpdateTime(snap.UpdateTime)); err != nil {
			return fmt.Errorf("warm-up: update: %w", err)
		}
		if _, err := ref.Delete(ctx); err != nil {
			return fmt.Errorf("warm-up: delete: %w", err)
		}
	}
	return nil
}

var firestoreProjectSeq atomic.Int64

func firestoreRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueFirestoreProjectID returns a project id no other test, package or run uses,
// so that tests sharing one emulator never see each other's documents.
func uniqueFirestoreProjectID() string {
	return fmt.Sprintf("smarttest-%s-%d", firestoreRandomHex(4), firestoreProjectSeq.Add(1))
}

func firestoreEmulatorHost(tb testing.TB) string {
	tb.Helper()
	host := os.Getenv(EmulatorHostEnv)
	if host == "" {
		tb.Fatalf("smarttest: %s is not set: call smarttest.RunWithFirestore from TestMain", EmulatorHostEnv)
	}
	return host
}

// NewFirestoreClient returns a client of the emulator for a project of its
// own, so that the test's documents are isolated, and closes it when the
// test ends. It fails the test if no emulator is configured.
//
// Under the emulator the client library dials its own connection, so an
// option.WithGRPCDialOption in opts has no effect; pass
// option.WithGRPCConn instead (as NewCountingFirestoreClient does).
func NewFirestoreClient(tb testing.TB, opts ...option.ClientOption) *firestore.Client {
	tb.Helper()
	firestoreEmulatorHost(tb)
	c, err := firestore.NewClient(context.Background(), uniqueFirestoreProjectID(), opts...)
	if err != nil {
		tb.Fatalf("smarttest: firestore client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// NewCountingFirestoreClient is NewFirestoreClient with every RPC counted,
// for tests that hold an operation to its RPC budget. Each attempt counts,
// retries included.
func NewCountingFirestoreClient(tb testing.TB) (*firestore.Client, *RPCCounter) {
	tb.Helper()
	host := firestoreEmulatorHost(tb)
	counter := &RPCCounter{}
	// The same connection the library makes for the emulator (insecure, the
	// emulator's admin credentials), plus the counting interceptors.
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(firestoreEmulatorOwner{}),
	}, counter.DialOptions()...)
	conn, err := grpc.NewClient("passthrough:///"+host, dialOpts...)
	if err != nil {
		tb.Fatalf("smarttest: dial firestore emulator: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	return NewFirestoreClient(tb, option.WithGRPCConn(conn)), counter
}

// firestoreEmulatorOwner authenticates as the emulator's administrator, as the
// client library does under FIRESTORE_EMULATOR_HOST.
type firestoreEmulatorOwner struct{}

func (firestoreEmulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (firestoreEmulatorOwner) RequireTransportSecurity() bool { return false }

// RPCCounter counts gRPC calls by method. Its interceptors count a call
// when it starts, unary and streaming alike (Firestore's Get is the
// streaming BatchGetDocuments; Create, Update and Delete are Commit).
// It is safe for concurrent use.
type RPCCounter struct {
	mu    sync.Mutex
	calls map[string]int
	total int
}

func (c *RPCCounter) record(fullMethod string) {
	name := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = make(map[string]int)
	}
	c.calls[name]++
	c.total++
}

// Total returns the number of calls since the last Reset.
func (c *RPCCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Count returns the number of calls of one method since the last Reset, by
// its short name ("Commit", "BatchGetDocuments").
func (c *RPCCounter) Count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// Counts returns a copy of the per-method counts.
func (c *RPCCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		m[k] = v
	}
	return m
}

// Reset sets every count to zero.
func (c *RPCCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
	c.total = 0
}

// UnaryClientInterceptor counts unary calls.
func (c *RPCCounter) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c.record(method)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor counts streaming calls.
func (c *RPCCounter) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c.record(method)
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// DialOptions returns the dial options that install both interceptors, for
// a connection passed with option.WithGRPCConn, or for
// option.WithGRPCDialOption against real Firestore.
func (c *RPCCounter) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}
}
