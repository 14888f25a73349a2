package webm

import (
	"bytes"

	"github.com/segrelay/relay/internal/ebml"
)

// The few small masters the splitter reads whole: the EBML header, Tracks
// and a BlockGroup.

// children calls fn for each child of a master element's body, which starts
// at stream offset off, with the child's data and its offset. It is used for
// the few small masters read whole.
func (s *Splitter) children(body []byte, off int64, fn func(id uint32, data []byte, off int64) error) error {
	for len(body) > 0 {
		id, idLen, bad := readID(body)
		if bad == "" && idLen == 0 {
			bad = "truncated element ID"
		}
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		size, sizeLen, unknown, bad := readSize(body[idLen:])
		if bad == "" && sizeLen == 0 {
			bad = "truncated element size"
		}
		if bad != "" {
			return s.fail(off, "%s", bad)
		}
		if unknown {
			return s.fail(off, "unknown size is not allowed for %s", ebml.Name(id))
		}
		hdr := idLen + sizeLen
		if size > uint64(len(body)-hdr) {
			return s.fail(off, "%s of %d bytes overruns its parent by %d bytes", ebml.Name(id), uint64(hdr)+size, size-uint64(len(body)-hdr))
		}
		end := hdr + int(size)
		if err := fn(id, body[hdr:end], off+int64(hdr)); err != nil {
			return err
		}
		body = body[end:]
		off += int64(end)
	}
	return nil
}

// readEBMLHeader returns the DocType, which must be webm or matroska.
func (s *Splitter) readEBMLHeader(body []byte, off int64) (string, error) {
	docType := "matroska" // its default in Matroska
	err := s.children(body, off, func(id uint32, data []byte, _ int64) error {
		if id == ebml.IDDocType {
			docType = string(bytes.TrimRight(data, "\x00"))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if docType != "webm" && docType != "matroska" {
		return "", s.fail(off, "unsupported DocType %q", docType)
	}
	return docType, nil
}

// readTracks returns the TrackEntries of a Tracks body, in order.
func (s *Splitter) readTracks(body []byte, off int64) ([]track, error) {
	var tracks []track
	err := s.children(body, off, func(id uint32, data []byte, off int64) error {
		if id != ebml.IDTrackEntry {
			return nil
		}
		var t track
		err := s.children(data, off, func(id uint32, data []byte, off int64) error {
			switch id {
			case ebml.IDTrackNumber:
				t.number = readUint(data)
			case ebml.IDTrackType:
				t.kind = readUint(data)
			case ebml.IDCodecID:
				t.codec = string(bytes.TrimRight(data, "\x00"))
			}
			return nil
		})
		tracks = append(tracks, t)
		return err
	})
	return tracks, err
}

// readBlockGroup returns the track of a BlockGroup's Block and whether it has
// a ReferenceBlock (then it is not a keyframe).
func (s *Splitter) readBlockGroup(body []byte, off int64) (track uint64, hasBlock, hasRef bool, err error) {
	err = s.children(body, off, func(id uint32, data []byte, off int64) error {
		switch id {
		case ebml.IDBlock:
			t, n, bad := readVint(data)
			if bad || n == 0 {
				return s.fail(off, "invalid track number in Block")
			}
			track, hasBlock = t, true
		case ebml.IDReferenceBlock:
			hasRef = true
		}
		return nil
	})
	return track, hasBlock, hasRef, err
}
