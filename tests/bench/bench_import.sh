#!/usr/bin/env bash
# bench_import.sh - bulk import benchmark (on demand, not a test): generates
# the social graph with tests/bench/gen_graph.c (100,000 people with a
# 128-dimension vector, 1,000,000 KNOWS; see that file for the CSV layout),
# then times lora-import, installing its output into three data
# directories (deploy/cluster.sh import) and starting a three-node cluster
# on 127.0.63.1-3 until every node answers a query. Prints the figures.
#
#   tests/bench/bench_import.sh            (after scripts/build.sh)
#
# Environment: BENCH_BUILD (release tree, default build/release),
# BENCH_PEOPLE (100000), BENCH_EDGES (1000000), BENCH_SEED (42),
# BENCH_PREFIX (127.0.63), BENCH_INDEX (1: also build the range index on
# :Person(id), as Kuzu's primary key; 0: none), BENCH_DATA (where the CSV
# files are kept between runs; default a temp dir removed at exit),
# BENCH_KEEP=1 (keep the cluster's directory).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD:-$root/build/release}
IMPORT=$build/node/lora-import
LC_LORAD=$build/node/lorad
people=${BENCH_PEOPLE:-100000}
edges=${BENCH_EDGES:-1000000}
seed=${BENCH_SEED:-42}
LC_PREFIX=${BENCH_PREFIX:-127.0.63}
LC_N=3
. "$root/deploy/lib.sh"
for b in "$IMPORT" "$LC_LORAD"; do
	[ -x "$b" ] || { echo "missing $b: run scripts/build.sh (or set BENCH_BUILD)" >&2; exit 2; }
done

LC_DIR=$(mktemp -d /tmp/lora-bench-import.XXXXXX)
data=${BENCH_DATA:-$LC_DIR/csv}
cleanup() {
	lc_kill_all
	[ "${BENCH_KEEP:-0}" = 1 ] && { echo "kept $LC_DIR"; return; }
	rm -rf "$LC_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the CSV files (not timed)
mkdir -p "$data"
if [ ! -f "$data/people.csv" ] || [ ! -f "$data/.gen-$people-$edges-$seed" ]; then
	cc -O2 -o "$LC_DIR/gen_graph" "$root/tests/bench/gen_graph.c" || exit 2
	"$LC_DIR/gen_graph" --people "$people" --edges "$edges" --seed "$seed" \
		--out "$data" || exit 2
	rm -f "$data"/.gen-*
	touch "$data/.gen-$people-$edges-$seed"
fi
csv_mb=$(du -cm "$data/people.csv" "$data/knows.csv" | tail -n 1 | cut -f1)
# Read once, so every run starts from the page cache as Kuzu's would.
cat "$data/people.csv" "$data/knows.csv" >/dev/null

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }

# ---- import
index=()
[ "${BENCH_INDEX:-1}" = 1 ] && index=(--index 'Person(id)')
t0=$(lc_now_ms)
out=$("$IMPORT" --quiet --into "$LC_DIR/state" --id-type integer \
	--nodes=Person "$data/people.csv" --relationships=KNOWS "$data/knows.csv" \
	"${index[@]}") || { echo "lora-import failed" >&2; exit 1; }
t1=$(lc_now_ms)
echo "$out"

# ---- install into three data directories
lc_write_configs "election_ms = 300" "heartbeat_ms = 50" "log_level = warn"
"$root/deploy/cluster.sh" import "$LC_DIR/state" \
	--data-dirs "$(lc_datadir 1),$(lc_datadir 2),$(lc_datadir 3)" >/dev/null ||
	{ echo "cluster.sh import failed" >&2; exit 1; }
t2=$(lc_now_ms)

# ---- start until every node answers
for i in 1 2 3; do lc_start "$i"; done
q='{"query":"MATCH (p:Person {id: 42}) RETURN p.name AS name"}'
answered=() first=""
while [ ${#answered[@]} -lt 3 ]; do
	for i in 1 2 3; do
		[ -n "${answered[$i]:-}" ] && continue
		if lc_post "$i" /query "$q" 2 2>/dev/null | grep -q '"name":"Person 42"'; then
			answered[$i]=$(lc_now_ms)
			[ -z "$first" ] && first=${answered[$i]}
		elif ! lc_alive "$i"; then
			echo "node $i exited:" >&2
			tail -n 20 "$(lc_logfile "$i")" >&2
			exit 1
		fi
	done
	[ $(( $(lc_now_ms) - t2 )) -gt 60000 ] && { echo "no answers in 60 s" >&2; exit 1; }
done
t3=$(lc_now_ms)
leader=$(lc_wait_leader 30) || { echo "no leader" >&2; exit 1; }
t4=$(lc_now_ms)

# ---- the cluster agrees and takes writes
applied=$(lc_wait_converged 30) || exit 1
d1=$(lc_digest 1 "$applied")
same=yes
for i in 2 3; do [ "$(lc_digest "$i" "$applied")" = "$d1" ] || same=no; done
w=$(lc_post "$leader" /query '{"query":"CREATE (p:Person {id: -1}) RETURN id(p) AS id"}')

echo
echo "graph: $people people (128-d vectors), $edges KNOWS, ${csv_mb} MB of CSV, seed $seed"
echo "lora-import:                $(secs "$t0" "$t1") s"
echo "install into 3 data dirs:   $(secs "$t1" "$t2") s (hard links)"
echo "start to first answer:      $(secs "$t2" "$first") s"
echo "start to all three answer:  $(secs "$t2" "$t3") s (leader at $(secs "$t2" "$t4") s)"
echo "import until a query answers: $(secs "$t0" "$first") s"
echo "import until all three answer: $(secs "$t0" "$t3") s"
echo "digests equal at index $applied: $same; a write after it: $w"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
