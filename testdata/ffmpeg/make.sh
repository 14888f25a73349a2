#!/bin/sh
# Regenerates the ffmpeg-written WebM test files in this directory, then their
# *.expected.json (computed by mkvinfo via tools/expected/make_expected.sh).
# Written with Debian 12's ffmpeg 5.1.x (libvpx, libopus): apt-get install ffmpeg mkvtoolnix
#
# Common settings: lavfi test sources, 3 s, 320x240 at 20 fps, a keyframe every
# 10 frames exactly (-g 10 -keyint_min 10, i.e. every 500 ms), single-threaded
# and +bitexact so reruns give the same bytes (no version strings; track UIDs 1, 2).
#
#   vp8.webm       VP8 only, ffmpeg's defaults for a seekable file: Segment and
#                  Cluster sizes known, SeekHead + Void, Info with Duration,
#                  Tags, Cues at the end. A Cluster starts at each keyframe.
#   vp9_opus.webm  VP9 + Opus (440 Hz sine), same defaults. ffmpeg writes the
#                  audio block first in each Cluster (the video keyframe comes 2nd).
#   vp8_live.webm  VP8 with -live 1: Segment size unknown, no Cues, no Duration,
#                  no DURATION tag, but SeekHead + Void still there and every
#                  Cluster still has a known size (ffmpeg buffers each Cluster).
#                  -cluster_time_limit 200 also cuts a Cluster after 200 ms, so
#                  every other Cluster (250, 750, ... ms) starts with a
#                  non-keyframe.
set -eu
cd "$(dirname "$0")"

common="-hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=20"
venc="-threads 1 -g 10 -keyint_min 10 -fflags +bitexact -flags:v +bitexact"

ffmpeg $common -t 3 -c:v libvpx $venc -b:v 400k \
	-f webm vp8.webm

ffmpeg $common -f lavfi -i sine=frequency=440:sample_rate=48000 -t 3 \
	-c:v libvpx-vp9 -row-mt 0 $venc -b:v 300k \
	-c:a libopus -b:a 48k -flags:a +bitexact \
	-f webm vp9_opus.webm

ffmpeg $common -t 3 -c:v libvpx $venc -b:v 400k \
	-live 1 -cluster_time_limit 200 \
	-f webm vp8_live.webm

../../tools/expected/make_expected.sh vp8.webm vp9_opus.webm vp8_live.webm
