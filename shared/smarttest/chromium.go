package smarttest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ChromiumPath is where Debian's chromium package installs its launcher.
const ChromiumPath = "/usr/bin/chromium"

// chromiumPackages are the Debian packages the browser tests need: the
// browser, and CJK fonts so that the zh-TW page renders glyphs, not boxes.
var chromiumPackages = []string{"chromium", "fonts-noto-cjk"}

const (
	chromiumLockPath       = "/tmp/smarttest-chromium-install.lock"
	chromiumInstallTimeout = 15 * time.Minute
)

var chromiumOnce struct {
	sync.Once
	path string
	err  error
}

// Chromium returns the path of a headless-capable Chromium for browser
// tests, installing Debian's chromium and fonts-noto-cjk with apt-get when
// either is missing (CI runs as root on a fresh Debian machine). An
// install runs once per process, and an exclusive file lock keeps test
// binaries of several packages from running apt-get at the same time. If
// the browser cannot be installed, the test fails with apt-get's output:
// browser tests fail rather than skip.
func Chromium(tb testing.TB) string {
	tb.Helper()
	chromiumOnce.Do(func() {
		chromiumOnce.path, chromiumOnce.err = ensureChromium()
	})
	if chromiumOnce.err != nil {
		tb.Fatalf("smarttest: %v", chromiumOnce.err)
	}
	return chromiumOnce.path
}

// ChromiumFlags returns the command-line flags a test browser needs, as
// name → value for chromedp.Flag: headless, no sandbox (tests run as
// root), no GPU, and nothing that calls the network on its own (this
// machine has no internet, and Chromium would wait on QUIC, component
// updates, sync or background fetches), plus a fresh profile directory
// that is removed when the test ends.
func ChromiumFlags(tb testing.TB) map[string]any {
	tb.Helper()
	dir, err := os.MkdirTemp("", "smarttest-chromium-profile-*")
	if err != nil {
		tb.Fatalf("smarttest: chromium profile directory: %v", err)
	}
	// Removed by hand rather than with tb.TempDir: Chromium's helper
	// processes can still be closing files when the test ends, and a
	// leftover file must not fail the test.
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return map[string]any{
		"headless":                      true,
		"no-sandbox":                    true,
		"disable-gpu":                   true,
		"disable-quic":                  true,
		"no-first-run":                  true,
		"no-default-browser-check":      true,
		"disable-background-networking": true,
		"disable-component-update":      true,
		"disable-sync":                  true,
		"disable-default-apps":          true,
		"disable-extensions":            true,
		"disable-dev-shm-usage":         true,
		"hide-scrollbars":               true,
		"mute-audio":                    true,
		"user-data-dir":                 dir,
	}
}

func ensureChromium() (string, error) {
	if chromiumReady() {
		return ChromiumPath, nil
	}
	lock, err := os.OpenFile(chromiumLockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", fmt.Errorf("chromium: lock %s: %w", chromiumLockPath, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("chromium: lock %s: %w", chromiumLockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	// Another test binary may have installed it while this one waited.
	if chromiumReady() {
		return ChromiumPath, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("chromium: %s or fonts-noto-cjk is missing and the tests do not run as root to install them; run: apt-get install -y %s",
			ChromiumPath, strings.Join(chromiumPackages, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromiumInstallTimeout)
	defer cancel()
	if out, err := aptGet(ctx, "update"); err != nil {
		return "", fmt.Errorf("chromium: apt-get update: %w\n%s", err, tail(out, 4000))
	}
	if out, err := aptGet(ctx, append([]string{"install", "-y", "--no-install-recommends"}, chromiumPackages...)...); err != nil {
		return "", fmt.Errorf("chromium: apt-get install %s: %w\n%s", strings.Join(chromiumPackages, " "), err, tail(out, 4000))
	}
	if !chromiumReady() {
		return "", fmt.Errorf("chromium: apt-get installed %s but %s is still missing", strings.Join(chromiumPackages, " "), ChromiumPath)
	}
	return ChromiumPath, nil
}

func aptGet(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// chromiumReady reports whether the browser and, on a Debian system, the
// CJK fonts are installed.
func chromiumReady() bool {
	if fi, err := os.Stat(ChromiumPath); err != nil || fi.IsDir() {
		return false
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return true // not Debian: trust the installed browser
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}\n", "fonts-noto-cjk").Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
