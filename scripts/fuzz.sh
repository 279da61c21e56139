#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (README there lists them).
# Usage: scripts/fuzz.sh [target|all|t1[:secs],t2[:secs],...] [seconds per target]
#        (all, 60; a list runs its targets in order, each for its own secs)
#        scripts/fuzz.sh --totals   (executions per target so far: measured,
#                                    and estimated apart)
#   LORA_BUILD   build directory (default build/dev; configured with
#                sanitizers when missing); the clang build is <it>/fuzz-clang
#   LORA_FUZZ_JOBS  parallel fuzzing processes per target (default 1)
#   LORA_FUZZ_NOBUILD=1  run the binaries as built (no cmake --build first;
#                the ledger's commit is then HEAD's, which they may predate)
# New inputs go to <build>/tests/fuzz/work/<target>, crashes to
# <build>/tests/fuzz/work/<target>-crash-*; a crash to keep becomes
# tests/fuzz/regress/<target>/<name>, replayed by CTest fuzz_<target>_replay.
# Prints the executions of each target and appends them to the ledger
# tests/fuzz/ledger.tsv (target, execs, seconds, UTC date, commit, note;
# LORA_FUZZ_LEDGER names another file, "-" keeps none); --totals sums the
# measured runs per target against the goal of 10^7 and shows the
# before-ledger estimates apart. Stores that binaries built before the
# in-memory store (fuzz_store.h) left in /dev/shm/lora-fuzz-<pid>-* (or
# /tmp) when they crashed are removed before and after each target once
# <pid> is gone. Exits non-zero when one crashed.
set -euo pipefail
shopt -s nullglob
root=$(cd "$(dirname "$0")/.." && pwd)
ledger=${LORA_FUZZ_LEDGER:-$root/tests/fuzz/ledger.tsv}
goal=10000000
targets=(pb_check http json cypher native raft peer codec apply packstream user_parse http_tx csv seek)
if [ "${1:-}" = --totals ]; then
	[ -f "$ledger" ] || { echo "no ledger at $ledger" >&2; exit 2; }
	# measured: the runs this script logged; estimated: the before-ledger
	# lines, kept apart and left out of goal%
	printf '%-11s %12s %9s %5s %6s %12s\n' target measured seconds runs \
		goal% estimated
	for t in "${targets[@]}"; do
		awk -F'\t' -v t="$t" -v g="$goal" '
			$1 == t && $4 == "before-ledger" { est += $2; next }
			$1 == t { e += $2; s += $3; n++ }
			END { printf "%-11s %12d %9d %5d %5.1f%% %12d\n", t, e, s, n,
				100 * e / g, est }' "$ledger"
	done
	exit 0
fi
build=$(realpath -m "${LORA_BUILD:-$root/build/dev}")
want=${1:-all}
secs=${2:-60}
jobs=${LORA_FUZZ_JOBS:-1}
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- . ':(exclude)tests/fuzz/ledger.tsv' 2>/dev/null ||
	commit=$commit+dirty
# want: all, a target, or a comma-separated list of target[:seconds]
declare -A tsecs=()
if [ "$want" != all ]; then
	picked=()
	IFS=, read -ra items <<<"$want"
	for it in "${items[@]}"; do
		t=${it%%:*}
		case " ${targets[*]} " in
		*" $t "*) picked+=("$t") ;;
		*) echo "unknown target $t (one of: ${targets[*]})" >&2; exit 2 ;;
		esac
		[ "$it" != "$t" ] && tsecs[$t]=${it#*:}
	done
	targets=("${picked[@]}")
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DLORA_SANITIZE=ON >/dev/null
fi
if [ "${LORA_FUZZ_NOBUILD:-0}" != 1 ]; then
	nice -n 10 cmake --build "$build" -j2 --target fuzz_seeds fuzz_clang >/dev/null 2>&1 ||
		{ echo "build failed: cmake --build $build --target fuzz_clang" >&2; exit 1; }
fi
work=$build/tests/fuzz/work
seeds=$build/tests/fuzz/seeds
mkdir -p "$work" "$seeds"
"$build/tests/fuzz/fuzz_seeds" "$seeds/pb_check" >/dev/null
# fuzz_store.h's store now lives in RocksDB's in-memory Env and leaves
# nothing on disk; binaries built before that named theirs
# lora-fuzz-<pid>-XXXXXX in /dev/shm and removed it at exit, which a crash
# or sanitizer abort skips. Removes those whose process is gone.
sweep_stores() {
	local d p
	for d in /dev/shm/lora-fuzz-* /tmp/lora-fuzz-*; do
		p=${d##*/lora-fuzz-}
		p=${p%%-*}
		[[ $p =~ ^[0-9]+$ ]] || continue # not ours: no pid in the name
		[ -d "/proc/$p" ] || rm -rf -- "$d"
	done
}
# the suite's leak suppressions (tests/lsan.supp says what each is for)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp}
failed=0
for t in "${targets[@]}"; do
	sweep_stores
	bin=$build/fuzz-clang/tests/fuzz/fuzz_$t
	inputs=("$root/tests/fuzz/corpus/$t")
	[ "$t" = pb_check ] && inputs=("$seeds/pb_check")
	[ -d "$root/tests/fuzz/regress/$t" ] && inputs+=("$root/tests/fuzz/regress/$t")
	mkdir -p "$work/$t"
	log=$work/$t.log
	rc=0
	start=$(date +%s)
	tsec=${tsecs[$t]:-$secs}
	par=()
	[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
	dict=$root/tests/fuzz/$t.dict
	[ "$t" = native ] && dict=$root/tests/fuzz/cypher.dict
	[ -f "$dict" ] && par+=(-dict="$dict")
	(cd "$work" && nice -n 10 "$bin" -max_total_time="$tsec" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$t-" \
		"${par[@]}" "$work/$t" "${inputs[@]}") >"$log" 2>&1 || rc=$?
	# With -jobs each job writes fuzz-<n>.log, and libFuzzer copies that
	# log into the main one when the job exits: count the jobs' own logs
	# only, or every execution is counted twice.
	if [ "$jobs" -gt 1 ]; then
		execs=$(cat "$work"/fuzz-*.log 2>/dev/null |
			awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')
	else
		execs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$log")
	fi
	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "fuzz_$t: CRASH after $execs execs (log $log)"
		grep -m1 -A3 'ERROR\|==ERROR\|runtime error\|deadly signal' "$log" || true
	else
		echo "fuzz_$t: $execs execs in ${tsec}s, no crash"
	fi
	note=ok
	[ "$rc" -ne 0 ] && note=crash
	[ "$jobs" -gt 1 ] && note="$note jobs=$jobs"
	[ "$ledger" != - ] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$execs" \
		"$(( $(date +%s) - start ))" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" \
		"$note" >>"$ledger"
	rm -f "$work"/fuzz-*.log
	sweep_stores
done
exit "$failed"
