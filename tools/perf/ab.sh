#!/usr/bin/env bash
# A/B: two relayload binaries (e.g. a commit and a change to it) run
# alternately at the same N, so both see the same machine load. Results are
# appended to docs/perf/results/$OUT with -label A / B.
#
#   A=/tmp/relayload-base B=/tmp/relayload-prop MODE=segments NS="3500 5000" tools/perf/ab.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${A:?binary A}" "${B:?binary B}"
MODE=${MODE:-segments}
NS=${NS:-"1000 3500"}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-20s}
OUT=${OUT:-ab-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
LA=${LA:-A} LB=${LB:-B}
mkdir -p docs/perf/results
for r in $(seq "$ROUNDS"); do
	for n in $NS; do
		for side in A B; do
			bin=$A label=$LA
			[ "$side" = B ] && bin=$B label=$LB
			echo "ab: round $r, $label, mode=$MODE n=$n (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
			# shellcheck disable=SC2086
			"$bin" -mode "$MODE" -n "$n" -duration "$DURATION" -timeout 150s -json -label "$label" ${EXTRA:-} \
				>>"docs/perf/results/$OUT" 2>/dev/null || echo "ab: $label n=$n failed ($?)" >&2
			sleep 3
		done
	done
done
go run ./tools/perf/table "docs/perf/results/$OUT"
