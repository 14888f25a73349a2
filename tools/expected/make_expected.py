#!/usr/bin/env python3
"""Compute <name>.expected.json / <dir>/expected.json from mkvinfo's output.

The structure comes from mkvinfo (mkvtoolnix), an independent EBML/Matroska
parser, not from segrelay's code:

    mkvinfo -v -v -z FILE      (every element, with its byte position and size)

ffprobe cross-checks the video keyframes (count and timestamps) and codecs.

Usage:
    make_expected.py recording DIR      # DIR/00000.webm, 00001.webm, ... (+ meta.json)
    make_expected.py file FILE.webm     # writes FILE.webm.expected.json

Run through tools/expected/make_expected.sh. Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

CODEC_NAMES = {"V_VP8": "vp8", "V_VP9": "vp9", "V_AV1": "av1", "A_OPUS": "opus", "A_VORBIS": "vorbis"}

# "| + Simple block: key, track number 2, ... at 218 size 2943 data size 2940"
# The text may itself contain " at " (e.g. binary dumps), so the greedy (.*)
# takes the last " at N".
LINE_RE = re.compile(r"^(?P<lead>[| ]*)\+ (?P<text>.*) at (?P<pos>\d+)(?: size (?P<size>\d+|is unknown).*)?$")
TS_RE = re.compile(r"(\d+):(\d\d):(\d\d)\.(\d{9})")


def ts_ns(text):
    m = TS_RE.search(text)
    if not m:
        raise ValueError("no timestamp in %r" % text)
    h, mi, s, frac = m.groups()
    return ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000_000 + int(frac)


def mkvinfo_elements(path):
    """Return [(depth, text, pos, size_or_None)] for every element mkvinfo prints."""
    # C.UTF-8, not C: under LC_ALL=C mkvinfo silently drops output after a non-ASCII
    # character (the "…" it prints after binary data), losing whole elements.
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    out = subprocess.run(["mkvinfo", "-v", "-v", "-z", path], check=True,
                         capture_output=True, text=True, env=env).stdout
    elems = []
    for line in out.splitlines():
        m = LINE_RE.match(line)
        if not m:
            # Lines without a position are not elements (e.g. continuation text).
            continue
        text = m.group("text")
        if text.startswith("Frame"):
            continue  # a frame inside a (Simple)Block, not an EBML element
        depth = len(m.group("lead"))
        size = m.group("size")
        elems.append((depth, text, int(m.group("pos")), None if size in (None, "is unknown") else int(size)))
    return elems


def check_tiling(elems, total):
    """Guard against lost mkvinfo lines: siblings must be contiguous, the
    children of a known-size element must fill it exactly, and the top level
    must end at the end of the file (when sizes are known)."""
    problems = []
    stack = []  # [depth, pos, size, end_of_last_child]

    def pop():
        depth, pos, size, child_end = stack.pop()
        end = None if size is None else pos + size
        if end is not None and child_end is not None and child_end != end:
            problems.append("element at %d (size %d): children end at %d" % (pos, size, child_end))
        if stack:
            stack[-1][3] = end  # None if unknown size
        return end

    last_top_end = 0
    for depth, text, pos, size in elems:
        prev_end = -1
        while stack and stack[-1][0] >= depth:
            d = stack[-1][0]
            prev_end = pop()
            if d == 0:
                last_top_end = prev_end
        if prev_end is not None and prev_end != -1 and prev_end != pos and not (stack and stack[-1][3] is None):
            problems.append("element %r at %d does not follow the previous one (ends at %d)" % (text, pos, prev_end))
        if not stack and depth != 0:
            problems.append("element %r at %d has no parent" % (text, pos))
        stack.append([depth, pos, size, None])
    while stack:
        d = stack[-1][0]
        end = pop()
        if d == 0:
            last_top_end = end
    if last_top_end is not None and last_top_end != total:
        problems.append("top level ends at %d, file has %d bytes" % (last_top_end, total))
    return problems


def analyse(path):
    elems = mkvinfo_elements(path)
    scale = 1_000_000
    tracks = []
    cur_track = None
    clusters = []
    cluster = None
    group = None  # open BlockGroup: {"depth", "track", "ref"}
    segment_unknown = None
    simple_blocks = block_groups = 0
    video_blocks = []  # (cluster index, key, ns) in file order

    def close_group():
        nonlocal group
        if group is not None and group["track"] is not None:
            add_block(group["track"], not group["ref"], group["ns"])
        group = None

    def add_block(track, key, ns):
        if cluster is None:
            raise ValueError("block outside a Cluster")
        if cluster["firstTrack"] is None:
            cluster["firstTrack"] = track
        if track in video_tracks():
            video_blocks.append((len(clusters) - 1, key, ns))
            cluster["videoBlocks"] += 1
            if cluster["_firstVideoKey"] is None:
                cluster["_firstVideoKey"] = key

    def video_tracks():
        return {t["number"] for t in tracks if t["type"] == "video"}

    for depth, text, pos, size in elems:
        if group is not None and depth <= group["depth"]:
            close_group()
        if depth == 0 and text.startswith("Segment"):
            segment_unknown = size is None
        elif depth == 1:
            if text == "Cluster":
                cluster = {"offset": pos, "timecode": None, "keyframe": None,
                           "sizeUnknown": size is None, "firstTrack": None, "videoBlocks": 0,
                           "_firstVideoKey": None}
                clusters.append(cluster)
            else:
                cluster = None
        elif text.startswith("Timestamp scale:"):
            scale = int(text.split(":", 1)[1])
        elif depth == 2 and text == "Track":
            cur_track = {"number": None, "type": None, "codec": None}
            tracks.append(cur_track)
        elif depth == 3 and cur_track is not None and text.startswith("Track number:"):
            cur_track["number"] = int(text.split(":", 1)[1].split()[0])
        elif depth == 3 and cur_track is not None and text.startswith("Track type:"):
            cur_track["type"] = text.split(":", 1)[1].strip()
        elif depth == 3 and cur_track is not None and text.startswith("Codec ID:"):
            cur_track["codec"] = text.split(":", 1)[1].strip()
        elif cluster is not None and depth == 2 and text.startswith("Cluster timestamp:"):
            cluster["timecode"] = ts_ns(text) // scale
        elif cluster is not None and depth == 2 and text.startswith("Simple block:"):
            simple_blocks += 1
            flags, rest = text[len("Simple block:"):].split("track number", 1)
            track = int(rest.split(",")[0])
            add_block(track, "key" in flags, ts_ns(text))
        elif cluster is not None and depth == 2 and text == "Block group":
            block_groups += 1
            group = {"depth": depth, "track": None, "ref": False, "ns": None}
        elif group is not None and depth == group["depth"] + 1 and text.startswith("Block:"):
            group["track"] = int(text.split("track number", 1)[1].split(",")[0])
            group["ns"] = ts_ns(text)
        elif group is not None and depth == group["depth"] + 1 and text.startswith("Reference block"):
            group["ref"] = True
    close_group()

    has_video = bool(video_tracks())
    for c in clusters:
        # keyframe: the Cluster's first VIDEO block is a keyframe; audio-only streams: true.
        # A Cluster with no video block in a stream that has video: false.
        c["keyframe"] = bool(c.pop("_firstVideoKey")) if has_video else True

    codecs = [CODEC_NAMES.get(t["codec"], t["codec"]) for t in tracks if t["type"] == "video"] + \
             [CODEC_NAMES.get(t["codec"], t["codec"]) for t in tracks if t["type"] == "audio"]
    key_ms = [ns // 1_000_000 for (_, key, ns) in video_blocks if key]
    first_video_of_cluster = set()
    seen = set()
    for i, (ci, key, ns) in enumerate(video_blocks):
        if ci not in seen:
            seen.add(ci)
            first_video_of_cluster.add(i)
    keys_not_first = sum(1 for i, (_, key, _) in enumerate(video_blocks) if key and i not in first_video_of_cluster)

    result = {
        "file": None,
        "totalBytes": os.path.getsize(path),
        "mime": ("video" if has_video else "audio") + "/webm;codecs=" + ",".join(codecs),
        "initBytes": clusters[0]["offset"] if clusters else None,
        "tracks": [{"number": t["number"], "type": t["type"], "codec": t["codec"]} for t in tracks],
        "clusters": clusters,
        "segmentSizeUnknown": segment_unknown,
        "simpleBlocks": simple_blocks,
        "blockGroups": block_groups,
        "videoFrames": len(video_blocks),
        "videoKeyframesMs": key_ms,
        "videoKeyframesNotFirstVideoBlockOfCluster": keys_not_first,
    }
    return result, elems


def ffprobe_check(path, result):
    """Cross-check video keyframes and codecs with ffprobe (an independent demuxer)."""
    problems = []
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=index,codec_type,codec_name",
                          "-of", "json", path], check=True, capture_output=True, text=True).stdout
    streams = json.loads(out)["streams"]
    want = [s["codec_name"] for s in streams if s["codec_type"] == "video"] + \
           [s["codec_name"] for s in streams if s["codec_type"] == "audio"]
    kind = "video" if any(s["codec_type"] == "video" for s in streams) else "audio"
    if kind + "/webm;codecs=" + ",".join(want) != result["mime"]:
        problems.append("ffprobe codecs %s vs mkvinfo mime %s" % (want, result["mime"]))
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts,flags", "-of", "csv=p=0", path],
                         check=True, capture_output=True, text=True).stdout
    keys, frames = [], 0
    for line in out.split():
        pts, flags = line.split(",")[:2]
        frames += 1
        if "K" in flags:
            keys.append(int(pts))  # WebM stream time base is 1 ms with TimecodeScale 1000000
    if frames != result["videoFrames"]:
        problems.append("ffprobe video packets %d vs mkvinfo %d" % (frames, result["videoFrames"]))
    if sorted(keys) != sorted(result["videoKeyframesMs"]):
        problems.append("ffprobe keyframes %s vs mkvinfo %s" % (keys, result["videoKeyframesMs"]))
    return problems


def blob_boundaries(elems, sizes):
    """For each blob after the first: where it starts relative to the element
    (at any level) that starts at or before it. 0 = exactly at an element start."""
    starts = sorted({(pos, text.split(":")[0]) for (_, text, pos, _) in elems}, key=lambda x: (x[0], x[1]))
    positions = [p for p, _ in starts]
    import bisect
    out = []
    off = 0
    for size in sizes[:-1]:
        off += size
        i = bisect.bisect_right(positions, off) - 1
        # Several elements may start at the same position (e.g. never, in practice); take the first listed.
        pos, name = starts[i]
        out.append({"offset": off, "bytesIntoElement": off - pos, "element": name, "elementOffset": pos})
    return out


def dump(obj):
    """JSON with one line per top-level key and one line per array item of objects."""
    lines = ["{"]
    items = list(obj.items())
    for n, (k, v) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append(" %s: [" % json.dumps(k))
            for j, e in enumerate(v):
                lines.append("  %s%s" % (json.dumps(e), "," if j < len(v) - 1 else ""))
            lines.append(" ]%s" % comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(k), json.dumps(v), comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("recording", "file"):
        sys.exit(__doc__)
    kind, target = sys.argv[1], sys.argv[2].rstrip("/")
    problems = []
    if kind == "file":
        result, _elems = analyse(target)
        result["file"] = os.path.basename(target)
        problems += ffprobe_check(target, result)
        problems += check_tiling(_elems, result["totalBytes"])
        dest = target + ".expected.json"
    else:
        blobs = sorted(f for f in os.listdir(target) if re.fullmatch(r"\d{5}\.webm", f))
        if not blobs or blobs != ["%05d.webm" % i for i in range(len(blobs))]:
            sys.exit("%s: blob files missing or not numbered 00000.webm, 00001.webm, ..." % target)
        sizes = [os.path.getsize(os.path.join(target, f)) for f in blobs]
        with tempfile.NamedTemporaryFile(suffix=".webm") as tmp:
            for f in blobs:
                with open(os.path.join(target, f), "rb") as fh:
                    tmp.write(fh.read())
            tmp.flush()
            result, elems = analyse(tmp.name)
            problems += ffprobe_check(tmp.name, result)
            problems += check_tiling(elems, result["totalBytes"])
        result["file"] = os.path.basename(target) + "/{00000.." + blobs[-1][:5] + "}.webm concatenated"
        result["blobs"] = sizes
        result["blobBoundaries"] = blob_boundaries(elems, sizes)
        meta_path = os.path.join(target, "meta.json")
        if os.path.exists(meta_path):
            with open(meta_path) as fh:
                meta = json.load(fh)
            if [b["size"] for b in meta.get("blobs", [])] != sizes:
                problems.append("meta.json blob sizes differ from the files")
            if meta.get("recMime") != result["mime"]:
                problems.append("recorder.mimeType %r vs mkvinfo %r" % (meta.get("recMime"), result["mime"]))
        dest = os.path.join(target, "expected.json")
    if sum(result.get("blobs", [result["totalBytes"]])) != result["totalBytes"]:
        problems.append("blob sizes do not add up to totalBytes")
    if any(c["timecode"] is None for c in result["clusters"]):
        problems.append("a Cluster without a timestamp")
    with open(dest, "w") as fh:
        fh.write(dump(result))
    for p in problems:
        print("%s: CHECK FAILED: %s" % (target, p), file=sys.stderr)
    print("%s: %d bytes, init %s, %d clusters (%d keyframe), %s -> %s" % (
        target, result["totalBytes"], result["initBytes"], len(result["clusters"]),
        sum(c["keyframe"] for c in result["clusters"]), result["mime"], dest))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
