#!/usr/bin/env bash
# Side by side: segrelay against a gorilla/websocket chunk relay (tools/baseline,
# the structure of gorilla's chat example), on the same machine, one after the
# other for each row, so both see the same load. The rows of issue 11:
#
#   5 KB messages, N = 1000 and 2000: segrelay segments mode with 5 KB
#     segments (-segment 16ms: 62.5 a second, one binary message each)
#     against the baseline relaying 5120-byte messages (61 a second);
#   64 KB messages, N = 5000: segrelay's 62.5 KB segments (200 ms) against
#     the baseline relaying each 200 ms WebM file as one message.
#
#   tools/perf/sidebyside.sh                                  # all three rows
#   ROWS="5k-1000" tools/perf/sidebyside.sh                   # one
#   BEFORE=/tmp/relayload-old tools/perf/sidebyside.sh        # and segrelay built from another commit
#
# Every run is bounded (relayload -timeout, -dial-phase); loopback only. One
# JSON line per run goes to docs/perf/results/$OUT (label: segrelay, gorilla,
# before), then the table is printed. About 1 minute per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-"5k-1000 5k-2000 64k-5000"}
DURATION=${DURATION:-20s}
OUT=${OUT:-sidebyside-$(git rev-parse --short HEAD)-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
BIN=${BIN:-}
BEFORE=${BEFORE:-}
if [ -z "$BIN" ]; then
	BIN=$(mktemp -d)/relayload
	go build -o "$BIN" ./cmd/relayload
fi
mkdir -p docs/perf/results
run() { # label, binary, args...
	local label=$1 bin=$2
	shift 2
	echo "sidebyside: $label $* (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	"$bin" "$@" -duration "$DURATION" -timeout 240s -json -label "$label" >>"docs/perf/results/$OUT" ||
		echo "sidebyside: $label $* failed ($?)" >&2
	sleep 3
}
for row in $ROWS; do
	case $row in
	5k-*)
		n=${row#5k-}
		seg=(-mode segments -segment 16ms -chunk 0 -n "$n")
		base=(-mode chunkrelay -server gorilla -chunk 5120 -n "$n")
		;;
	64k-*)
		n=${row#64k-}
		seg=(-mode segments -segment 200ms -chunk 0 -n "$n")
		base=(-mode chunkrelay -server gorilla -chunk 65536 -n "$n")
		;;
	*)
		echo "sidebyside: unknown row $row" >&2
		exit 2
		;;
	esac
	run segrelay "$BIN" "${seg[@]}"
	run gorilla "$BIN" "${base[@]}"
	if [ -n "$BEFORE" ]; then
		run before "$BEFORE" "${seg[@]}"
	fi
done
go run ./tools/perf/table "docs/perf/results/$OUT"
