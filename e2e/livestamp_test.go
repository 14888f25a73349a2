package e2e

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segrelay/relay/internal/testutil"
	"github.com/stretchr/testify/require"
)

// The clock of testdata/browser/clock.js for a publisher that is not a
// browser: Go draws each frame (640x360, gray) with Date.now() as 40 blocks
// across the top, and ffmpeg encodes the frames as they come and publishes
// them with PUT.

const (
	stampW, stampH = 640, 360
	stampCols      = 20 // as clock.js: 2 rows of 20 blocks, 32 bits of the time in ms and a CRC-8
)

// stampBits is clock.js's stampBits.
func stampBits(ms int64) []byte {
	v := uint32(ms)
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	var c byte
	for _, x := range b {
		c ^= x
		for i := 0; i < 8; i++ {
			if c&0x80 != 0 {
				c = c<<1 ^ 0x07
			} else {
				c <<= 1
			}
		}
	}
	b = append(b, c^0xa5)
	bits := make([]byte, 0, 40)
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			bits = append(bits, x>>i&1)
		}
	}
	return bits
}

// drawStamp draws frame n at time ms: a light background with a bar that
// moves (work for the encoder; never dark: a black frame counts as a
// flash), the code strip on top.
func drawStamp(img []byte, n int, ms int64) {
	bg := byte(150 + n%60)
	for i := range img {
		img[i] = bg
	}
	x0 := n * 8 % stampW
	for y := 200; y < 260; y++ {
		for x := x0; x < x0+60 && x < stampW; x++ {
			img[y*stampW+x] = 230
		}
	}
	bs := stampW / stampCols
	for i, bit := range stampBits(ms) {
		v := byte(0)
		if bit == 1 {
			v = 255
		}
		bx, by := i%stampCols*bs, i/stampCols*bs
		for y := by; y < by+bs; y++ {
			row := img[y*stampW+bx : y*stampW+bx+bs]
			for k := range row {
				row[k] = v
			}
		}
	}
}

// publishStampedFFmpeg starts ffmpeg publishing the clock at 30 fps to url
// (a hub's /{stream}/publish) with the README's live settings (VP8 in
// realtime mode, a keyframe a second) and muxer's WebM muxer options, and
// returns once the stream is live, with its type. It stops with the test.
func publishStampedFFmpeg(t *testing.T, url string, muxer []string) string {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-v", "error",
		"-f", "rawvideo", "-pix_fmt", "gray", "-s", "640x360", "-framerate", "30", "-i", "pipe:0",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "1M", "-f", "webm"}
	args = append(args, muxer...)
	cmd := exec.Command(testutil.Tool(t, "ffmpeg"), append(args, "-method", "PUT", url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer in.Close()
		img := make([]byte, stampW*stampH)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for n := 0; ; n++ {
			drawStamp(img, n, time.Now().UnixMilli())
			if _, err := in.Write(img); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		cmd.Process.Kill()
		cmd.Wait()
	})
	live := strings.TrimSuffix(url, "/publish") + "/live.webm"
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Head(live)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return resp.Header.Get("Content-Type")
			}
		}
		require.True(t, time.Now().Before(deadline), "ffmpeg's stream is not live after 15 s (%v): %s", err, stderr.String())
		time.Sleep(200 * time.Millisecond)
	}
}
