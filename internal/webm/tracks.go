package webm

import (
	"strings"

	"github.com/segrelay/relay/internal/ebml"
)

// track is what the splitter keeps of a TrackEntry.
type track struct {
	number uint64
	kind   uint64 // TrackType; 0 if absent
	codec  string // CodecID
}

func (t track) isVideo() bool {
	return t.kind == ebml.TrackTypeVideo || (t.kind == 0 && strings.HasPrefix(t.codec, "V_"))
}

func (t track) isAudio() bool {
	return t.kind == ebml.TrackTypeAudio || (t.kind == 0 && strings.HasPrefix(t.codec, "A_"))
}

// initSegment is what the splitter reads from an init segment.
type initSegment struct {
	docType string
	tracks  []track
}

// useInit makes the init being gathered the one later Clusters are judged by.
func (s *Splitter) useInit() {
	s.videoTracks = s.videoTracks[:0]
	for _, t := range s.next.tracks {
		if t.isVideo() {
			s.videoTracks = append(s.videoTracks, t.number)
		}
	}
	s.mimeType = mimeOf(s.next)
}

func (s *Splitter) isVideoTrack(n uint64) bool {
	for _, v := range s.videoTracks {
		if v == n {
			return true
		}
	}
	return false
}

// mimeOf describes an init as a MIME type with codecs, video first.
func mimeOf(in initSegment) string {
	var video, audio []string
	for _, t := range in.tracks {
		switch {
		case t.isVideo():
			video = appendCodec(video, t.codec)
		case t.isAudio():
			audio = appendCodec(audio, t.codec)
		}
	}
	var m string
	switch {
	case in.docType == "matroska":
		m = "video/x-matroska"
	case len(video) == 0 && len(audio) > 0:
		m = "audio/webm"
	default:
		m = "video/webm"
	}
	codecs := append(video, audio...)
	if len(codecs) == 0 {
		return m
	}
	return m + ";codecs=" + strings.Join(codecs, ",")
}

func appendCodec(list []string, codecID string) []string {
	c := codecName(codecID)
	for _, have := range list {
		if have == c {
			return list
		}
	}
	return append(list, c)
}

// codecName maps a Matroska CodecID to its name in a MIME codecs parameter.
func codecName(codecID string) string {
	switch codecID {
	case "V_VP8":
		return "vp8"
	case "V_VP9":
		return "vp9"
	case "V_AV1":
		return "av1"
	case "V_MPEG4/ISO/AVC":
		return "avc1"
	case "V_MPEGH/ISO/HEVC":
		return "hev1"
	case "A_OPUS":
		return "opus"
	case "A_VORBIS":
		return "vorbis"
	case "A_AAC":
		return "mp4a.40.2"
	}
	c := codecID
	if len(c) > 2 && c[1] == '_' {
		c = c[2:]
	}
	return strings.ToLower(c)
}
