#!/usr/bin/env bash
# bench_vector.sh - the HNSW vector index at scale, on demand (not in CTest):
# three real lorad processes on 127.0.66.1-3 (run it in its own network
# namespace), 100,000 128-d vectors through the HTTP API. Reports (see
# scale/vector.js) incremental inserts/s into an index, replicated; the
# build of an index over the existing vectors, replicated; median top-10
# latency through the graph and with the exact scan in the same run; mean
# recall@10 of the graph against the exact answer; whether all three nodes
# gave the same answers.
#
# usage: tests/bench/bench_vector.sh [--n N] [--queries Q] [--data clustered|random]
#        [--batch B (1000 vectors per statement)] [--inflight K (1 statement at a time)] [--rel 1]
#        [--vectors base64|list (how the vectors travel: FLOAT32 vector
#        parameters in base64, the default, or JSON lists; docs/node.md "Values")]
# --rel 1: the vectors on relationships, a relationship vector index and
# db.index.vector.queryRelationships.
# --kuzu 1: then the same vectors and queries in Kùzu 0.11.3's HNSW index
# (scale/vector_kuzu.js; kuzu is installed from npm into
# tests/bench/scale/node_modules, which git ignores, when missing): its
# build time, median top-10 in process and recall@10 against the exact
# answer, printed after LoraDB's.
# Environment: BENCH_BUILD (release tree, default build/release), LORA_SEED
# (default 42), BENCH_KEEP=1 (keep the temp dir), BENCH_NO_INDEX=1 (only
# the load, without an index: the insert rate the index is compared with).
set -uo pipefail
{
root=$(cd "$(dirname "$0")/../.." && pwd)
scale=$root/tests/bench/scale
build=${BENCH_BUILD:-$root/build/release}
. "$root/deploy/lib.sh"
n=100000 queries=200 data=clustered rel=0 seed=${LORA_SEED:-42} batch=1000 inflight=1 vectors=base64 kuzu=0
while [ $# -gt 0 ]; do
	case "$1" in
	--n) n=$2 ;;
	--queries) queries=$2 ;;
	--data) data=$2 ;;
	--batch) batch=$2 ;;
	--inflight) inflight=$2 ;;
	--rel) rel=$2 ;;
	--vectors) vectors=$2 ;;
	--kuzu) kuzu=$2 ;;
	*) echo "usage: $0 [--n N] [--queries Q] [--data clustered|random] [--batch B] [--inflight K] [--rel 1] [--vectors list|base64] [--kuzu 1]" >&2; exit 2 ;;
	esac
	shift 2
done
work=$(mktemp -d /tmp/lora-vector.XXXXXX)
LC_LORAD=${LORAD:-$build/node/lorad}
LC_PREFIX=127.0.66 LC_DIR=$work/lora LC_N=3
cleanup() {
	lc_kill_all
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
[ -x "$LC_LORAD" ] || { echo "no $LC_LORAD (build the release tree)" >&2; exit 1; }
lc_write_configs "log_level = warn"
for i in 1 2 3; do lc_start "$i"; done
for i in 1 2 3; do lc_wait_health "$i" 60 || exit 1; done
leader=$(lc_wait_leader 30) || { echo "no leader" >&2; exit 1; }
lc_log "bench_vector: $n x 128-d ($data), seed $seed, leader node $leader;" \
	"load average: $(cut -d' ' -f1-3 /proc/loadavg)"
node "$scale/vector.js" --leader "$(lc_http "$leader")" \
	--hosts "$(lc_http 1),$(lc_http 2),$(lc_http 3)" --n "$n" --queries "$queries" \
	--data "$data" --seed "$seed" --batch "$batch" --inflight "$inflight" --rel "$rel" --vectors "$vectors" \
	--pids "$(lc_pid 1),$(lc_pid 2),$(lc_pid 3)" --out "$work/vector.json" ${BENCH_NO_INDEX:+--no-index 1}
rc=$?
tck=$(getconf CLK_TCK)
for i in 1 2 3; do
	# CPU seconds of the whole run (user + system): on a shared machine
	# the figure to compare between builds, with wall times that wait
	cpu=$(awk -v t="$tck" '{ printf "%.1f", ($14 + $15) / t }' /proc/"$(lc_pid "$i")"/stat)
	lc_log "node $i: VmHWM $(grep VmHWM /proc/"$(lc_pid "$i")"/status | tr -s ' '), CPU ${cpu} s"
done
[ "$rc" = 0 ] || exit "$rc"
cat "$work/vector.json"
echo
if [ "$kuzu" = 1 ] && [ "$rel" != 1 ]; then
	lc_kill_all # the machine to Kùzu alone, as LoraDB had it
	[ -d "$scale/node_modules/kuzu" ] ||
		npm install --prefix "$scale" --no-save --no-package-lock --no-audit --no-fund \
			--loglevel=error kuzu@0.11.3 >&2 || { echo "npm install kuzu failed" >&2; exit 1; }
	node "$scale/vector_kuzu.js" --db "$work/kuzu" --out "$work/kuzu.json" --n "$n" \
		--queries "$queries" --data "$data" --seed "$seed" || exit 1
	cat "$work/kuzu.json"
	echo
fi
exit 0
}
