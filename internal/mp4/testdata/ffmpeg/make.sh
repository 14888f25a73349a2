#!/bin/sh
# Regenerates the ffmpeg-written fragmented MP4 test files in this directory,
# then their *.expected.json: what ffprobe (not the code under test) says about
# each file's streams and packets (stream, byte position, K flag). The tests
# find each fragment's moof with their own box lister and take its keyframe
# flag from the first video packet ffprobe puts after it.
# Written with Debian's ffmpeg (libx264, libvpx, libopus): apt-get install ffmpeg
#
# Common settings: lavfi test sources, 2 s, 160x120 at 15 fps, a keyframe every
# 15 frames (-g 15 -keyint_min 15, every second), single-threaded and
# +bitexact so reruns give the same bytes.
#
#   h264_aac.mp4        H.264 + AAC, frag_keyframe+empty_moov+default_base_moof:
#                       a fragment starts at each keyframe.
#   h264_every_frame.mp4 H.264 only, frag_every_frame: most fragments start
#                       with a non-sync sample.
#   h264_fragdur.mp4    H.264 + AAC, -frag_duration 300 ms: fragments cut
#                       inside a GOP too.
#   aac_only.mp4        AAC only, -frag_duration 500 ms: every fragment is a keyframe.
#   vp9_opus.mp4        VP9 + Opus in MP4 (vpcC, dOps).
#   h264_dash.mp4       H.264 + AAC with +dash+global_sidx: sidx boxes.
#   h264_styp.mp4       H.264 from the dash muxer: its init and its media
#                       segments cat'ed, each segment styp + sidx + moof + mdat.
#   h264_cmaf.mp4       H.264 with +cmaf and -write_prft wallclock: prft
#                       before each moof.
#   two_inits.mp4       two outputs cat'ed: a second ftyp+moov mid-stream (the
#                       second from testsrc: RGB, so High 4:4:4, avc1.f4000a).
#   av1_opus.mp4        AV1 (av1C) + Opus.
#   hevc.mp4            HEVC (hvcC, hvc1 tag).
set -eu
cd "$(dirname "$0")"

src="-hide_banner -loglevel error -y -f lavfi -i testsrc2=size=160x120:rate=15"
sine="-f lavfi -i sine=frequency=440:sample_rate=48000"
x264="-c:v libx264 -threads 1 -g 15 -keyint_min 15 -sc_threshold 0 -b:v 100k -fflags +bitexact -flags:v +bitexact"
aac="-c:a aac -b:a 32k -flags:a +bitexact"
frag="-f mp4 -movflags frag_keyframe+empty_moov+default_base_moof"

ffmpeg $src $sine -t 2 $x264 $aac $frag h264_aac.mp4
ffmpeg $src -t 2 $x264 -f mp4 -movflags frag_every_frame+empty_moov+default_base_moof h264_every_frame.mp4
ffmpeg $src $sine -t 2 $x264 $aac $frag -frag_duration 300000 h264_fragdur.mp4
ffmpeg -hide_banner -loglevel error -y $sine -t 2 $aac $frag -frag_duration 500000 aac_only.mp4
ffmpeg $src $sine -t 2 -c:v libvpx-vp9 -threads 1 -row-mt 0 -g 15 -keyint_min 15 -b:v 100k -fflags +bitexact -flags:v +bitexact \
	-c:a libopus -b:a 32k -flags:a +bitexact $frag vp9_opus.mp4
ffmpeg $src $sine -t 2 $x264 $aac -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof+dash+global_sidx h264_dash.mp4
ffmpeg $src -t 2 $x264 -write_prft wallclock -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof+cmaf h264_cmaf.mp4
rm -rf dash.tmp && mkdir dash.tmp
ffmpeg $src -t 2 $x264 -f dash -seg_duration 1 -use_template 1 -use_timeline 0 \
	-init_seg_name init.m4s -media_seg_name 'chunk-$Number%03d$.m4s' dash.tmp/out.mpd
cat dash.tmp/init.m4s dash.tmp/chunk-*.m4s > h264_styp.mp4
rm -r dash.tmp
ffmpeg $src -t 1 $x264 $frag part1.tmp
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=15 -t 1 $x264 $frag part2.tmp
cat part1.tmp part2.tmp > two_inits.mp4
rm part1.tmp part2.tmp
# libaom here leaves av1C empty; SVT-AV1 fills it (and talks on stderr).
SVT_LOG=1 ffmpeg $src $sine -t 2 -c:v libsvtav1 -preset 12 -g 15 -b:v 100k -fflags +bitexact -flags:v +bitexact \
	-c:a libopus -b:a 32k -flags:a +bitexact $frag av1_opus.mp4
ffmpeg $src -t 2 -c:v libx265 -tag:v hvc1 -x265-params log-level=error:pools=1:frame-threads=1 -g 15 -b:v 100k \
	-fflags +bitexact -flags:v +bitexact $frag hevc.mp4

for f in *.mp4; do
	ffprobe -v error -of json=c=1 \
		-show_entries stream=index,codec_type,codec_name,codec_tag_string,profile,level:packet=stream_index,pos,flags \
		"$f" > "$f.expected.json"
done
