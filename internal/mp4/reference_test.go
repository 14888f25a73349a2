package mp4

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests' own reference, written apart from the splitter: a box lister
// that reads a whole file through an io.Reader, and what ffprobe said about
// each file (testdata/ffmpeg/*.expected.json, from make.sh).

// topBox is one top-level box of a file.
type topBox struct {
	typ       string
	off, size int64
}

// listBoxes lists the top-level boxes of a whole file.
func listBoxes(t testing.TB, data []byte) []topBox {
	r := bytes.NewReader(data)
	var out []topBox
	for {
		off := int64(len(data) - r.Len())
		var hdr struct {
			Size uint32
			Type [4]byte
		}
		if err := binary.Read(r, binary.BigEndian, &hdr); err == io.EOF {
			return out
		} else {
			require.NoError(t, err)
		}
		size := int64(hdr.Size)
		switch size {
		case 0:
			size = int64(len(data)) - off
		case 1:
			var large uint64
			require.NoError(t, binary.Read(r, binary.BigEndian, &large))
			size = int64(large)
		}
		out = append(out, topBox{string(hdr.Type[:]), off, size})
		_, err := r.Seek(off+size, io.SeekStart)
		require.NoError(t, err)
	}
}

// refPiece is where the reference says an init or a fragment starts.
type refPiece struct {
	Off      int64
	Init     bool
	Keyframe bool
}

// referencePieces: an init starts at an ftyp or moov that follows media (or
// at 0); a fragment at the first of the styp/sidx/ssix/prft/emsg boxes right
// before a moof (after a moov), or at the moof. A fragment is a keyframe
// when ffprobe's first video packet after its moof has the K flag (always
// without video).
func referencePieces(t testing.TB, data []byte, probe probed) []refPiece {
	boxes := listBoxes(t, data)
	var out []refPiece
	inInit, haveMoov := false, false
	prelude := -1 // index of the first box of a fragment's prelude
	for i, b := range boxes {
		switch b.typ {
		case "ftyp", "moov":
			if !inInit || haveMoov {
				out = append(out, refPiece{Off: b.off, Init: true})
				inInit, haveMoov = true, false
			}
			haveMoov = haveMoov || b.typ == "moov"
			prelude = -1
		case "styp", "sidx", "ssix", "prft", "emsg":
			if haveMoov && prelude < 0 {
				prelude = i
			}
		case "moof":
			start := b.off
			if prelude >= 0 {
				start = boxes[prelude].off
			}
			out = append(out, refPiece{Off: start, Keyframe: probe.keyAfter(b.off)})
			inInit, prelude = false, -1
		default:
			prelude = -1
		}
	}
	if len(out) == 0 || out[0].Off != 0 {
		out = append([]refPiece{{Off: 0, Init: true}}, out...)
	}
	return out
}

// probed is ffprobe's -show_streams -show_packets output.
type probed struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecType string `json:"codec_type"`
		CodecTag  string `json:"codec_tag_string"`
		Level     int    `json:"level"`
	} `json:"streams"`
	Packets []struct {
		Stream int    `json:"stream_index"`
		Pos    int64  `json:"pos,string"`
		Flags  string `json:"flags"`
	} `json:"packets"`
}

// readProbe reads name + ".json".
func readProbe(t testing.TB, name string) probed {
	b, err := os.ReadFile(name + ".json")
	require.NoError(t, err)
	var p probed
	require.NoError(t, json.Unmarshal(b, &p))
	require.NotEmpty(t, p.Packets)
	return p
}

// keyAfter says whether the first video packet stored after off is a
// keyframe; true without a video stream.
func (p probed) keyAfter(off int64) bool {
	video := -1
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			video = s.Index
			break
		}
	}
	if video < 0 {
		return true
	}
	best, key := int64(-1), false
	for _, pk := range p.Packets {
		if pk.Stream == video && pk.Pos > off && (best < 0 || pk.Pos < best) {
			best, key = pk.Pos, strings.Contains(pk.Flags, "K")
		}
	}
	return key
}

func ffmpegFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "ffmpeg", "*.mp4"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}
