// Package ebml is the module's one table of WebM/Matroska element IDs and its
// one EBML writer. The splitter (internal/webm) reads streams with the table;
// the test stream builder (internal/webm/webmtest) and cmd/relayload write
// them with both.
package ebml

import "fmt"

// Element IDs, written with their length marker, as they appear in a stream.
const (
	// EBML header and its children.
	IDEBML               = 0x1A45DFA3
	IDEBMLVersion        = 0x4286
	IDEBMLReadVersion    = 0x42F7
	IDEBMLMaxIDLength    = 0x42F2
	IDEBMLMaxSizeLength  = 0x42F3
	IDDocType            = 0x4282
	IDDocTypeVersion     = 0x4287
	IDDocTypeReadVersion = 0x4285

	// Global elements, allowed in any master.
	IDVoid  = 0xEC
	IDCRC32 = 0xBF

	// The Segment and its level-1 children.
	IDSegment     = 0x18538067
	IDSeekHead    = 0x114D9B74
	IDInfo        = 0x1549A966
	IDTracks      = 0x1654AE6B
	IDCues        = 0x1C53BB6B
	IDTags        = 0x1254C367
	IDChapters    = 0x1043A770
	IDAttachments = 0x1941A469
	IDCluster     = 0x1F43B675

	// SeekHead.
	IDSeek         = 0x4DBB
	IDSeekID       = 0x53AB
	IDSeekPosition = 0x53AC

	// Info.
	IDTimecodeScale = 0x2AD7B1
	IDMuxingApp     = 0x4D80
	IDWritingApp    = 0x5741
	IDDuration      = 0x4489

	// Tracks.
	IDTrackEntry         = 0xAE
	IDTrackNumber        = 0xD7
	IDTrackUID           = 0x73C5
	IDTrackType          = 0x83
	IDCodecID            = 0x86
	IDCodecPrivate       = 0x63A2
	IDMaxBlockAdditionID = 0x55EE
	IDVideo              = 0xE0
	IDPixelWidth         = 0xB0
	IDPixelHeight        = 0xBA
	IDAlphaMode          = 0x53C0
	IDAudio              = 0xE1
	IDSamplingFrequency  = 0xB5
	IDChannels           = 0x9F

	// Cluster.
	IDTimecode        = 0xE7
	IDPosition        = 0xA7
	IDPrevSize        = 0xAB
	IDSimpleBlock     = 0xA3
	IDBlockGroup      = 0xA0
	IDBlock           = 0xA1
	IDBlockAdditions  = 0x75A1
	IDBlockMore       = 0xA6
	IDBlockAddID      = 0xEE
	IDBlockAdditional = 0xA5
	IDReferenceBlock  = 0xFB

	// Cues.
	IDCuePoint           = 0xBB
	IDCueTime            = 0xB3
	IDCueTrackPositions  = 0xB7
	IDCueTrack           = 0xF7
	IDCueClusterPosition = 0xF1
)

// Matroska TrackType values.
const (
	TrackTypeVideo = 1
	TrackTypeAudio = 2
)

// Name names an element for error messages.
func Name(id uint32) string {
	switch id {
	case IDEBML:
		return "EBML header"
	case IDSegment:
		return "Segment"
	case IDSeekHead:
		return "SeekHead"
	case IDInfo:
		return "Info"
	case IDTracks:
		return "Tracks"
	case IDTrackEntry:
		return "TrackEntry"
	case IDTrackNumber:
		return "TrackNumber"
	case IDDocType:
		return "DocType"
	case IDCues:
		return "Cues"
	case IDTags:
		return "Tags"
	case IDChapters:
		return "Chapters"
	case IDAttachments:
		return "Attachments"
	case IDCluster:
		return "Cluster"
	case IDTimecode:
		return "Timecode"
	case IDSimpleBlock:
		return "SimpleBlock"
	case IDBlockGroup:
		return "BlockGroup"
	case IDBlock:
		return "Block"
	case IDReferenceBlock:
		return "ReferenceBlock"
	case IDVoid:
		return "Void"
	case IDCRC32:
		return "CRC-32"
	}
	return fmt.Sprintf("element 0x%X", id)
}
