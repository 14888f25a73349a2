package relay

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hub serves relay.d.ts beside relay.js.
func TestRelayDTSServed(t *testing.T) {
	e := newEnv(t)
	want, err := os.ReadFile("relay.d.ts")
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(e.srv.URL + "/live/relay.d.ts")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/typescript; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, string(want), string(body), "the embedded relay.d.ts is the repository's")
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.NotEqual(t, clientFiles["relay.js"].etag, etag)

	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/live/relay.d.ts", nil)
	require.NoError(t, err)
	req.Header.Set("If-None-Match", etag)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
}

// relay.d.ts declares exactly what relay.js exports: its own exports and
// the names it re-exports from the modules beside it.
func TestRelayDTSMatchesExports(t *testing.T) {
	exports := func(file string, re *regexp.Regexp) []string {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var names []string
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if m[1] != "" {
				names = append(names, m[1])
			}
			for _, n := range strings.Split(m[2], ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		return names
	}
	js := exports("relay.js", regexp.MustCompile(`(?m)^export (?:(?:const|function|class) (\w+)|\{([^}]*)\} from )`))
	dts := exports("relay.d.ts", regexp.MustCompile(`(?m)^export declare (?:const|function|class) (\w+)()`))
	require.NotEmpty(t, js)
	assert.Equal(t, js, dts)
}

// testdata/typescript/use.ts, which uses every export, type-checks against
// relay.d.ts with tsc (found as $SEGRELAY_TSC or on the PATH; .ci/run
// installs it). Without tsc the test skips, except under CI=true.
func TestRelayDTSTypeCheck(t *testing.T) {
	tsc := os.Getenv("SEGRELAY_TSC")
	if tsc == "" {
		tsc, _ = exec.LookPath("tsc")
	}
	if tsc == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("tsc not found: set SEGRELAY_TSC or put tsc on the PATH (.ci/run installs it)")
		}
		t.Skip("tsc not found (set SEGRELAY_TSC, or npm install typescript): relay.d.ts not type-checked")
	}
	dir := t.TempDir()
	for _, f := range []string{"relay.d.ts", "testdata/typescript/use.ts"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
	}
	cmd := exec.Command(tsc, "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
		"--moduleResolution", "bundler", "--lib", "es2022,dom", "use.ts")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "tsc: %s", out)
}

// TestRelayJSServed checks the hub serves relay.js and every module it
// imports, and those they import (no browser needed).
func TestRelayJSServed(t *testing.T) {
	importRE := regexp.MustCompile(`(?m)^(?:import|export) \{[^}]*\} from "\./([^"]+)";`)
	seen := map[string]bool{}
	var src strings.Builder
	for todo := []string{"relay.js"}; len(todo) > 0; todo = todo[1:] {
		file := todo[0]
		if seen[file] {
			continue
		}
		seen[file] = true
		require.Contains(t, clientFiles, file, "a module the client imports is not served")
		t.Run(file, func(t *testing.T) { testClientModuleServed(t, file) })
		js, err := os.ReadFile(file)
		require.NoError(t, err)
		src.Write(js)
		for _, m := range importRE.FindAllStringSubmatch(string(js), -1) {
			todo = append(todo, m[1])
		}
	}
	for name, f := range clientFiles {
		if strings.HasSuffix(name, ".js") {
			assert.True(t, seen[name], "%s is served but nothing imports it", name)
			assert.Equal(t, name, f.name)
		}
	}
	assert.Len(t, seen, 6, "relay.js and the five modules beside it")
	// The modules are ES modules with the documented exports.
	for _, name := range []string{"export function publish(", "export function play(", "export class Publisher", "export class Player", `SUBPROTOCOL = "segrelay.v1"`} {
		assert.Contains(t, src.String(), name)
	}
}

func testClientModuleServed(t *testing.T, file string) {
	e := newEnv(t)
	want, err := os.ReadFile(file)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(method string, h http.Header) (*http.Response, []byte) {
		req, err := http.NewRequest(method, e.srv.URL+"/live/"+file, nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	resp, body := get(http.MethodGet, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, string(want), string(body), "the embedded %s is the repository's", file)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)

	resp, body = get(http.MethodGet, http.Header{"If-None-Match": {etag}})
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	assert.Empty(t, body)
	resp, body = get(http.MethodHead, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, body)
	resp, _ = get(http.MethodPost, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// TestRelayJSUnits runs the node unit tests of relay.js's modules, every
// relay-*_test.mjs: relay-connection_test.mjs (Connection's reconnections
// and refusals, Backoff), relay-mime_test.mjs (MIME picking, codecs,
// tracks), relay-player_test.mjs (AppendQueue, the latency controller),
// relay-webm_test.mjs (every recording of testdata/recordings and a hub
// capture through the WebMAppender; the WebCodecs recorder's muxer) and
// relay_test.mjs (relay.js's exports). Without node the test skips, except
// under CI=true (.ci/run installs node).
func TestRelayJSUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node not found: the relay.js unit tests need it (.ci/run installs it)")
		}
		t.Skip("node not found: relay.js unit tests not run")
	}
	files, err := filepath.Glob("relay*_test.mjs")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			out, err := exec.Command(node, "--test", f).CombinedOutput()
			require.NoError(t, err, "node --test %s:\n%s", f, out)
			assert.Regexp(t, regexp.MustCompile(`(?m)^# fail 0$`), string(out))
			assert.NotRegexp(t, regexp.MustCompile(`(?m)^# pass 0$`), string(out), "no test ran")
		})
	}
}
