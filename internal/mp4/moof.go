package mp4

import "encoding/binary"

var (
	typeTraf = fourCC("traf")
	typeTfhd = fourCC("tfhd")
	typeTrun = fourCC("trun")
)

// sample_is_non_sync_sample in a sample_flags word (§8.8.3.1).
const nonSyncSample = 0x10000

// videoTrack is the first video track, or nil without one.
func (info *initInfo) videoTrack() *track {
	for i := range info.tracks {
		if info.tracks[i].handler == typeVide {
			return &info.tracks[i]
		}
	}
	return nil
}

// keyframe says whether a moof's body starts its video track at a sync
// sample: the flags of the first sample of the first trun of that track's
// traf, from trun's first_sample_flags, else its per-sample flags, else
// tfhd's default_sample_flags, else trex's (§8.8.7, §8.8.8). Without video
// every fragment is a keyframe; a fragment without a video sample is not.
func (info *initInfo) keyframe(body []byte, off int64) (bool, error) {
	video := info.videoTrack()
	if video == nil {
		return true, nil
	}
	var flags uint32
	found := false
	err := children(body, off, func(h box, b []byte, off int64) error {
		if h.typ != typeTraf || found {
			return nil
		}
		var ours bool
		var haveDefault bool
		var defaultFlags uint32
		return children(b, off, func(h box, b []byte, off int64) error {
			switch {
			case h.typ == typeTfhd:
				// FullBox; track_ID; then the optional fields its flags say.
				if len(b) < 8 {
					return shortBox(h, len(b), 8, off)
				}
				ours = binary.BigEndian.Uint32(b[4:]) == video.id
				tf := binary.BigEndian.Uint32(b) & 0xffffff
				at := 8
				for _, f := range []struct {
					bit  uint32
					size int
				}{{0x1, 8}, {0x2, 4}, {0x8, 4}, {0x10, 4}} {
					if tf&f.bit != 0 {
						at += f.size
					}
				}
				if tf&0x20 != 0 {
					if len(b) < at+4 {
						return shortBox(h, len(b), at+4, off)
					}
					defaultFlags, haveDefault = binary.BigEndian.Uint32(b[at:]), true
				}
			case h.typ == typeTrun && ours && !found:
				// FullBox; sample_count; data_offset (0x1);
				// first_sample_flags (0x4); then per sample: duration
				// (0x100), size (0x200), flags (0x400), composition
				// time offset (0x800).
				if len(b) < 8 {
					return shortBox(h, len(b), 8, off)
				}
				tf := binary.BigEndian.Uint32(b) & 0xffffff
				if binary.BigEndian.Uint32(b[4:]) == 0 {
					return nil
				}
				at := 8
				if tf&0x1 != 0 {
					at += 4
				}
				switch {
				case tf&0x4 != 0:
				case tf&0x400 != 0:
					if tf&0x100 != 0 {
						at += 4
					}
					if tf&0x200 != 0 {
						at += 4
					}
				case haveDefault:
					flags, found = defaultFlags, true
					return nil
				case video.haveTrex:
					flags, found = video.trexFlags, true
					return nil
				default: // no flags anywhere: every sample is a sync sample (§8.8.3.1)
					flags, found = 0, true
					return nil
				}
				if len(b) < at+4 {
					return shortBox(h, len(b), at+4, off)
				}
				flags, found = binary.BigEndian.Uint32(b[at:]), true
			}
			return nil
		})
	})
	if err != nil {
		return false, err
	}
	return found && flags&nonSyncSample == 0, nil
}
