#!/usr/bin/env bash
# Load sweep: relayload for each mode and subscriber count, one JSON line per
# run appended to docs/perf/results/$OUT (and a table printed at the end).
#
#   tools/perf/sweep.sh                               # the tables of docs/performance.md
#   MODES="segments chunkrelay" NS="1000 3500" tools/perf/sweep.sh
#   BIN=/tmp/relayload-variant OUT=variant.jsonl tools/perf/sweep.sh
#
# Each run is bounded (relayload -timeout); the whole sweep takes about
# 40 s per run. Run it on a quiet machine: the load average is recorded in
# every result, and anything else on the 2 cores shows in the latencies.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODES=${MODES:-"segments stream legacy chunkrelay"}
NS=${NS:-"10 100 1000 2000 3500 5000"}
DURATION=${DURATION:-20s}
OUT=${OUT:-sweep-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
EXTRA=${EXTRA:-}
BIN=${BIN:-}

if [ -z "$BIN" ]; then
	BIN=$(mktemp -d)/relayload
	go build -o "$BIN" ./cmd/relayload
fi
mkdir -p docs/perf/results
echo "sweep: $BIN, modes [$MODES], N [$NS], $DURATION each, into docs/perf/results/$OUT" >&2
for mode in $MODES; do
	for n in $NS; do
		echo "sweep: mode=$mode n=$n (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
		# shellcheck disable=SC2086
		"$BIN" -mode "$mode" -n "$n" -duration "$DURATION" -timeout 120s -json $EXTRA \
			>>"docs/perf/results/$OUT" || echo "sweep: mode=$mode n=$n failed ($?)" >&2
		sleep 3 # let the sockets of the last run go
	done
done
go run ./tools/perf/table "docs/perf/results/$OUT"
