package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ---------------------------------------------------------------------------
// Firefox harness: headless Firefox driven over WebDriver BiDi, a JSON
// protocol on one WebSocket, with a client of its own (no geckodriver, no
// npm): session.new, browsingContext.create/navigate/close, script.evaluate
// and the log.entryAdded event are all the tests need.

// firefoxPath finds a Firefox binary: $SEGRELAY_FIREFOX, or firefox-esr,
// firefox on $PATH.
func firefoxPath() string {
	if p := os.Getenv("SEGRELAY_FIREFOX"); p != "" {
		return p
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needFirefox returns the Firefox to use, or skips the test when there is
// none; with CI=true a missing Firefox fails the test instead.
func needFirefox(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	p := firefoxPath()
	if p == "" {
		const msg = "no Firefox found (firefox-esr or firefox on $PATH, or $SEGRELAY_FIREFOX); on Debian: apt-get install -y firefox-esr"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the browser tests must run: " + msg)
		}
		t.Skip("skipping the Firefox tests: " + msg)
	}
	return p
}

// firefoxPrefs go into the fresh profile's user.js. Fake camera and
// microphone without a permission prompt, autoplay allowed (the pages play
// muted video and audio without a gesture), and nothing that reaches out to
// the network: no updates, telemetry, health report, captive portal or
// connectivity checks, Safe Browsing lists, Normandy/Nimbus experiments,
// remote settings, add-on or GMP (OpenH264) downloads, search or region
// updates, new-tab content.
var firefoxPrefs = map[string]any{
	"media.navigator.streams.fake":             true,
	"media.navigator.permission.disabled":      true,
	"media.autoplay.default":                   0, // allowed
	"media.autoplay.blocking_policy":           0,
	"media.autoplay.block-webaudio":            false,
	"media.block-autoplay-until-in-foreground": false,

	"app.update.disabledForTesting":                      true,
	"app.update.auto":                                    false,
	"app.update.checkInstallTime":                        false,
	"app.normandy.enabled":                               false,
	"app.normandy.api_url":                               "",
	"app.shield.optoutstudies.enabled":                   false,
	"messaging-system.rsexperimentloader.enabled":        false,
	"services.settings.server":                           "data:,#remote-settings-dummy/v1",
	"datareporting.policy.dataSubmissionEnabled":         false,
	"datareporting.healthreport.uploadEnabled":           false,
	"datareporting.usage.uploadEnabled":                  false,
	"toolkit.telemetry.enabled":                          false,
	"toolkit.telemetry.unified":                          false,
	"toolkit.telemetry.archive.enabled":                  false,
	"toolkit.telemetry.server":                           "https://127.0.0.1:9/",
	"toolkit.telemetry.reportingpolicy.firstRun":         false,
	"browser.ping-centre.telemetry":                      false,
	"browser.newtabpage.activity-stream.feeds.telemetry": false,
	"browser.newtabpage.activity-stream.telemetry":       false,
	"browser.shell.checkDefaultBrowser":                  false,
	"browser.startup.homepage_override.mstone":           "ignore",
	"browser.startup.page":                               0,
	"browser.startup.homepage":                           "about:blank",
	"startup.homepage_welcome_url":                       "about:blank",
	"startup.homepage_welcome_url.additional":            "",
	"browser.aboutwelcome.enabled":                       false,
	"browser.newtabpage.enabled":                         false,
	"browser.newtab.preload":                             false,
	"browser.topsites.contile.enabled":                   false,
	"browser.safebrowsing.malware.enabled":               false,
	"browser.safebrowsing.phishing.enabled":              false,
	"browser.safebrowsing.blockedURIs.enabled":           false,
	"browser.safebrowsing.downloads.enabled":             false,
	"browser.safebrowsing.downloads.remote.enabled":      false,
	"browser.safebrowsing.provider.google.updateURL":     "",
	"browser.safebrowsing.provider.google4.updateURL":    "",
	"browser.safebrowsing.provider.mozilla.updateURL":    "",
	"browser.search.update":                              false,
	"browser.region.network.url":                         "",
	"browser.region.update.enabled":                      false,
	"browser.discovery.enabled":                          false,
	"browser.tabs.warnOnClose":                           false,
	"browser.sessionstore.resume_from_crash":             false,
	"browser.warnOnQuit":                                 false,
	"network.captive-portal-service.enabled":             false,
	"network.connectivity-service.enabled":               false,
	"network.dns.disablePrefetch":                        true,
	"network.prefetch-next":                              false,
	"network.http.speculative-parallel-limit":            0,
	"extensions.update.enabled":                          false,
	"extensions.getAddons.cache.enabled":                 false,
	"extensions.blocklist.enabled":                       false,
	"extensions.systemAddon.update.enabled":              false,
	"media.gmp-manager.updateEnabled":                    false,
	"media.gmp-manager.url":                              "",
	"media.gmp-gmpopenh264.autoupdate":                   false,
	"media.gmp-gmpopenh264.enabled":                      false,
	"security.OCSP.enabled":                              0,
	"security.remote_settings.crlite_filters.enabled":    false,
	"security.remote_settings.intermediates.enabled":     false,
	"dom.disable_open_during_load":                       false,
}

// writeUserJS writes prefs as user.js into the profile directory dir.
func writeUserJS(dir string, prefs map[string]any) error {
	var b strings.Builder
	for k, v := range prefs {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, j)
	}
	return os.WriteFile(filepath.Join(dir, "user.js"), []byte(b.String()), 0o644)
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// firefox is one headless Firefox with a fresh profile and one BiDi session.
type firefox struct {
	cmd     *exec.Cmd
	profile string
	stderr  chan struct{} // closed when Firefox's stderr reaches EOF
	conn    *websocket.Conn
	readEnd chan struct{} // closed when the reader goroutine ends

	nextID  atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan bidiReply
	pages   map[string]*page // by browsing context id, for console lines
	readErr error
}

type bidiReply struct {
	Type    string          `json:"type"` // success, error, event
	ID      *int64          `json:"id"`
	Method  string          `json:"method"` // events
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// startFirefox starts Firefox and a BiDi session; t.Cleanup ends both and
// removes the profile.
func startFirefox(t *testing.T) *browser {
	t.Helper()
	exe := needFirefox(t)
	ff, err := launchFirefox(exe)
	if err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Cleanup(ff.close)
	return &browser{t: t, kind: "firefox", ff: ff}
}

func launchFirefox(exe string) (_ *firefox, err error) {
	profile, err := os.MkdirTemp("", "segrelay-firefox-")
	if err != nil {
		return nil, err
	}
	ff := &firefox{profile: profile, stderr: make(chan struct{}), readEnd: make(chan struct{}),
		pending: map[int64]chan bidiReply{}, pages: map[string]*page{}}
	defer func() {
		if err != nil {
			ff.close()
		}
	}()
	if err := writeUserJS(profile, firefoxPrefs); err != nil {
		close(ff.stderr)
		close(ff.readEnd)
		return nil, err
	}
	ff.cmd = exec.Command(exe, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0", "about:blank")
	ff.cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	ff.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // content processes too, for the kill
	stderr, err := ff.cmd.StderrPipe()
	if err != nil {
		close(ff.stderr)
		close(ff.readEnd)
		return nil, err
	}
	ff.cmd.Stdout = io.Discard
	if err := ff.cmd.Start(); err != nil {
		close(ff.stderr)
		close(ff.readEnd)
		return nil, err
	}
	urlc := make(chan string, 1)
	var tail tailBuffer
	go func() {
		defer close(ff.stderr)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found {
				if m := bidiListening.FindStringSubmatch(line); m != nil {
					found = true
					urlc <- m[1]
					continue
				}
			}
			tail.add(line)
		}
		io.Copy(io.Discard, stderr)
	}()
	var wsURL string
	select {
	case wsURL = <-urlc:
	case <-ff.stderr:
		close(ff.readEnd)
		return nil, fmt.Errorf("firefox exited before its BiDi server listened: %s", tail.String())
	case <-time.After(60 * time.Second):
		close(ff.readEnd)
		return nil, fmt.Errorf("no \"WebDriver BiDi listening\" line within 60 s: %s", tail.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ff.conn, _, err = websocket.Dial(ctx, wsURL+"/session", nil)
	if err != nil {
		close(ff.readEnd)
		return nil, fmt.Errorf("dial %s/session: %w", wsURL, err)
	}
	ff.conn.SetReadLimit(256 << 20)
	go ff.readLoop()
	if _, err := ff.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}); err != nil {
		return nil, err
	}
	if _, err := ff.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		return nil, err
	}
	return ff, nil
}

// tailBuffer keeps the last lines of Firefox's stderr, for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *tailBuffer) add(l string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, l)
	if len(b.lines) > 40 {
		b.lines = b.lines[1:]
	}
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

func (ff *firefox) readLoop() {
	defer close(ff.readEnd)
	for {
		_, data, err := ff.conn.Read(context.Background())
		if err != nil {
			ff.mu.Lock()
			ff.readErr = err
			for id, c := range ff.pending {
				close(c)
				delete(ff.pending, id)
			}
			ff.mu.Unlock()
			return
		}
		var r bidiReply
		if json.Unmarshal(data, &r) != nil {
			continue
		}
		if r.ID == nil {
			if r.Method == "log.entryAdded" {
				ff.logEntry(r.Params)
			}
			continue
		}
		ff.mu.Lock()
		c := ff.pending[*r.ID]
		delete(ff.pending, *r.ID)
		ff.mu.Unlock()
		if c != nil {
			c <- r
		}
	}
}

func (ff *firefox) logEntry(params json.RawMessage) {
	var e struct {
		Level  string `json:"level"`
		Text   string `json:"text"`
		Type   string `json:"type"`
		Method string `json:"method"`
		Source struct {
			Context string `json:"context"`
		} `json:"source"`
	}
	if json.Unmarshal(params, &e) != nil {
		return
	}
	ff.mu.Lock()
	p := ff.pages[e.Source.Context]
	ff.mu.Unlock()
	if p != nil {
		p.addConsole(e.Level + ": " + e.Text)
	}
}

// call sends one command and waits for its result.
func (ff *firefox) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id := ff.nextID.Add(1)
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	c := make(chan bidiReply, 1)
	ff.mu.Lock()
	if ff.readErr != nil {
		err := ff.readErr
		ff.mu.Unlock()
		return nil, fmt.Errorf("%s: connection lost: %w", method, err)
	}
	ff.pending[id] = c
	ff.mu.Unlock()
	if err := ff.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		ff.mu.Lock()
		delete(ff.pending, id)
		ff.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-c:
		if !ok {
			return nil, fmt.Errorf("%s: connection lost", method)
		}
		if r.Type == "error" || r.Error != "" {
			return nil, fmt.Errorf("%s: %s: %s", method, r.Error, r.Message)
		}
		return r.Result, nil
	case <-ctx.Done():
		ff.mu.Lock()
		delete(ff.pending, id)
		ff.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close ends the session, closes Firefox (kills it if need be, with every
// process of its group) and removes the profile.
func (ff *firefox) close() {
	if ff.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ff.call(ctx, "browser.close", map[string]any{})
		cancel()
		ff.conn.Close(websocket.StatusNormalClosure, "")
		ff.conn.CloseNow()
	}
	<-ff.readEnd
	if ff.cmd != nil && ff.cmd.Process != nil {
		select {
		case <-ff.stderr: // EOF once every process holding it is gone
		case <-time.After(10 * time.Second):
		}
		// Whatever is left of its process group (not reaped yet, so the
		// group id is still Firefox's), then reap it.
		syscall.Kill(-ff.cmd.Process.Pid, syscall.SIGKILL)
		<-ff.stderr
		ff.cmd.Wait()
	}
	os.RemoveAll(ff.profile)
}

// openFirefox opens url in a new window of its own (a page in a background
// tab may not render) and waits for it to load.
func (ff *firefox) open(t *testing.T, name, url string) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := ff.call(ctx, "browsingContext.create", map[string]any{"type": "window"})
	if err != nil {
		t.Fatalf("%s: new window: %v", name, err)
	}
	var c struct {
		Context string `json:"context"`
	}
	if err := json.Unmarshal(res, &c); err != nil {
		t.Fatalf("%s: browsingContext.create: %v", name, err)
	}
	p := &page{name: name, ff: ff, bctx: c.Context}
	ff.mu.Lock()
	ff.pages[c.Context] = p
	ff.mu.Unlock()
	t.Cleanup(func() {
		p.dumpConsole(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ff.call(ctx, "browsingContext.close", map[string]any{"context": c.Context})
		ff.mu.Lock()
		delete(ff.pages, c.Context)
		ff.mu.Unlock()
	})
	if _, err := ff.call(ctx, "browsingContext.navigate", map[string]any{"context": c.Context, "url": url, "wait": "complete"}); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return p
}

// evalJSON evaluates expr in the page, awaits it if it is a promise, and
// returns its value as JSON (null for undefined).
func (ff *firefox) evalJSON(ctx context.Context, bctx, expr string) ([]byte, error) {
	res, err := ff.call(ctx, "script.evaluate", map[string]any{
		"expression":   "(async () => JSON.stringify(await (" + expr + "\n)))()",
		"target":       map[string]any{"context": bctx},
		"awaitPromise": true,
	})
	if err != nil {
		return nil, err
	}
	var r struct {
		Type   string `json:"type"` // success, exception
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		return nil, errors.New("exception: " + r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return []byte("null"), nil // undefined, or a function
	}
	var s string
	if err := json.Unmarshal(r.Result.Value, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}
