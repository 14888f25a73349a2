#!/bin/sh
# Recomputes the expected structure of the test WebM streams with mkvinfo
# (mkvtoolnix), an independent parser, cross-checked by ffprobe:
#
#   testdata/recordings/<name>/expected.json   (blobs 00000.webm... concatenated)
#   testdata/ffmpeg/<file>.webm.expected.json
#
# Usage: tools/expected/make_expected.sh           # everything
#        tools/expected/make_expected.sh PATH...   # recording directories and/or .webm files
# Needs: apt-get install mkvtoolnix ffmpeg python3
# Fails (exit 1) if a cross-check fails; the JSON is still written for inspection.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
data="$(cd "$here/../../testdata" && pwd)"
command -v mkvinfo >/dev/null || { echo "mkvinfo not found (apt-get install mkvtoolnix)" >&2; exit 2; }
command -v ffprobe >/dev/null || { echo "ffprobe not found (apt-get install ffmpeg)" >&2; exit 2; }
mkvinfo --version >&2

if [ $# -eq 0 ]; then
	set --
	for d in "$data"/recordings/*/; do [ -f "$d/00000.webm" ] && set -- "$@" "${d%/}"; done
	for f in "$data"/ffmpeg/*.webm; do [ -f "$f" ] && set -- "$@" "$f"; done
fi

rc=0
for p in "$@"; do
	if [ -d "$p" ]; then
		python3 "$here/make_expected.py" recording "$p" || rc=1
	else
		python3 "$here/make_expected.py" file "$p" || rc=1
	fi
done
exit $rc
