#!/usr/bin/env bash
# bench_loadcsv_ab.sh - bench_loadcsv.sh for two builds in alternated
# rounds (on demand, not a test), so that both meet the same minutes of a
# shared machine: one warm-up round of the first build (not counted: a
# machine's first loads after boot ran 15-20 % slower, docs/benchmarks.md
# "Online load, session 28"), then ROUNDS rounds of A then B. Prints each
# round's KNOWS rows/s, cluster µs of CPU per KNOWS row and all rows/s,
# then the medians. Run it in its own network namespace:
#
#   unshare -n sh -c 'ip link set lo up && \
#     tests/bench/bench_loadcsv_ab.sh build/base build/release 3'
#
# A and B are release build trees (each with node/lorad). BENCH_DATA
# (default /tmp/lora-bench-loadcsv-data) keeps the CSV files between
# rounds; every other BENCH_* setting of bench_loadcsv.sh is passed on.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 2 ] || {
	echo "usage: $0 BUILD_A BUILD_B [ROUNDS (3)]" >&2
	exit 2
}
a=$1 b=$2 rounds=${3:-3}
for t in "$a" "$b"; do
	[ -x "$t/node/lorad" ] || { echo "missing $t/node/lorad" >&2; exit 2; }
done
export BENCH_DATA=${BENCH_DATA:-/tmp/lora-bench-loadcsv-data}
out=$(mktemp /tmp/lora-bench-ab.XXXXXX)
trap 'rm -f "$out"' EXIT

# run NAME BUILD: one bench_loadcsv.sh; "NAME knows_rows_s us_per_row
# all_rows_s" on stdout, its rates on stderr (all of its lines when it
# fails)
run() {
	local log
	log=$(BENCH_BUILD=$2 "$root/tests/bench/bench_loadcsv.sh" 2>&1)
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "$log" | sed "s/^/[$1] /" >&2
		echo "$1: bench_loadcsv.sh failed ($rc)" >&2
		return 1
	fi
	grep -E '^(people|knows|total):' <<<"$log" | sed "s/^/[$1] /" >&2
	local k t
	k=$(grep '^knows:  [0-9]' <<<"$log")
	t=$(grep '^total:' <<<"$log")
	echo "$1 $(sed -E 's/.* ([0-9]+) rows\/s, ([0-9.]+) us CPU\/row.*/\1 \2/' <<<"$k") $(sed -E 's/.* ([0-9]+) rows\/s.*/\1/' <<<"$t")"
}

echo "warm-up: $a (not counted)"
run warm-up "$a" >/dev/null || exit 1
for r in $(seq 1 "$rounds"); do
	run A "$a" >>"$out" || exit 1
	run B "$b" >>"$out" || exit 1
	echo "round $r of $rounds done"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "build  KNOWS rows/s  cluster us/KNOWS row  all rows/s   ($a = A, $b = B)"
awk '{ printf "%-6s %12s  %20s  %10s\n", $1, $2, $3, $4 }' "$out"
for s in A B; do
	printf "%-6s %12s  %20s  %10s  (medians)\n" "$s" \
		"$(awk -v s=$s '$1 == s { print $2 }' "$out" | median)" \
		"$(awk -v s=$s '$1 == s { print $3 }' "$out" | median)" \
		"$(awk -v s=$s '$1 == s { print $4 }' "$out" | median)"
done
