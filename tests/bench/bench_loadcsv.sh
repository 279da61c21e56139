#!/usr/bin/env bash
# bench_loadcsv.sh - online load benchmark (on demand, not a test): a
# three-node cluster on 127.0.65.1-3 loads the benchmark social graph
# (tests/bench/gen_graph.c: people with name, age, city and a 128-d vector;
# KNOWS edges by id) with LOAD CSV ... CALL { ... } IN TRANSACTIONS sent to
# the leader over HTTP, replicated, and prints rows/s for each file:
#
#   CREATE INDEX FOR (p:Person) ON (p.id)
#   LOAD CSV WITH HEADERS FROM 'file:///people.csv' AS r
#     CALL { WITH r CREATE (:Person {id: toInteger(r.`id:ID`), name: r.name,
#            age: toInteger(r.`age:int`), city: r.city,
#            emb: vector(r.`emb:vector(128)`, 128, 'FLOAT32')}) }
#     IN TRANSACTIONS OF <chunk> ROWS
#   LOAD CSV WITH HEADERS FROM 'file:///knows.csv' AS r
#     CALL { WITH r MATCH (a:Person {id: toInteger(r.`:START_ID`)}),
#            (b:Person {id: toInteger(r.`:END_ID`)}) CREATE (a)-[:KNOWS]->(b) }
#     IN TRANSACTIONS OF <chunk> ROWS
#
# then checks the counts on every node at the answer's bookmark and that
# the three digests are equal. Run it in its own network namespace:
#
#   unshare -n sh -c 'ip link set lo up && tests/bench/bench_loadcsv.sh'
#
# Environment: BENCH_BUILD (release tree, default build/release),
# BENCH_PEOPLE (100000), BENCH_EDGES (1000000, issue 10's graph: the KNOWS
# statement takes 14-22 s of its 60 s; the default was 200000 until
# 2026-12-06), BENCH_SEED (42),
# BENCH_CHUNK (rows per transaction of both statements; default: none
# given, the server's default of 1,000), BENCH_PEOPLE_CHUNK and
# BENCH_KNOWS_CHUNK (the same for one statement, over BENCH_CHUNK), BENCH_PREFIX (127.0.65), BENCH_DATA (where the CSV files are
# kept between runs; default a temp dir), BENCH_PERF=1 (record the
# leader with perf during the loads: perf.data in the temp dir, kept;
# BENCH_PERF=all records the three nodes, `perf report --sort pid,comm`;
# BENCH_PERF_KNOWS=1 records the KNOWS statement only,
# BENCH_PERF_PEOPLE=1 the people statement only),
# BENCH_PERF_OPTS (perf record options, default -g), BENCH_ELECTION_MS
# (300; more keeps leadership still on a loaded machine), BENCH_KEEP=1 (keep
# the temp dir), BENCH_STATEMENT_TIME_MS (the nodes' statement_time_ms,
# for a load longer than the default minute).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD:-$root/build/release}
LC_LORAD=$build/node/lorad
people=${BENCH_PEOPLE:-100000}
edges=${BENCH_EDGES:-1000000}
seed=${BENCH_SEED:-42}
chunk=${BENCH_CHUNK:-}
LC_PREFIX=${BENCH_PREFIX:-127.0.65}
LC_N=3
. "$root/deploy/lib.sh"
[ -x "$LC_LORAD" ] || { echo "missing $LC_LORAD: run scripts/build.sh (or set BENCH_BUILD)" >&2; exit 2; }

LC_DIR=$(mktemp -d /tmp/lora-bench-loadcsv.XXXXXX)
data=${BENCH_DATA:-$LC_DIR/csv}
perf_pid=""
cleanup() {
	[ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
	lc_kill_all
	[ "${BENCH_KEEP:-0}" = 1 ] || [ "${BENCH_PERF:-0}" != 0 ] && { echo "kept $LC_DIR"; return; }
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
cat "$data/people.csv" "$data/knows.csv" >/dev/null

# ---- the cluster, its import directory holding the files
lc_write_configs "election_ms = ${BENCH_ELECTION_MS:-300}" "heartbeat_ms = 50" "log_level = warn" \
	"import_dir = $data" ${BENCH_STATEMENT_TIME_MS:+"statement_time_ms = $BENCH_STATEMENT_TIME_MS"}
for i in 1 2 3; do lc_start "$i"; done
for i in 1 2 3; do lc_wait_health "$i" 30 || exit 1; done
leader=$(lc_wait_leader 30) || { echo "no leader" >&2; exit 1; }

q() { # q JSON [TIMEOUT_S]: POST to the leader, body on stdout
	lc_curl -s -m "${2:-600}" -X POST -H 'Content-Type: application/json' \
		--data-binary @- "http://$(lc_http "$leader")/query" <<<"$1"
}
cpu_ms() { # CPU ms (user + system) of every node so far, summed
	local i t=0 f
	for i in 1 2 3; do
		f=$(cut -d' ' -f14,15 /proc/"$(lc_pid "$i")"/stat)
		t=$((t + ${f% *} + ${f#* }))
	done
	echo $((t * 1000 / $(getconf CLK_TCK)))
}
node_ms() { # CPU ms of node $1 so far
	local f
	f=$(cut -d' ' -f14,15 /proc/"$(lc_pid "$1")"/stat)
	echo $(((${f% *} + ${f#* }) * 1000 / $(getconf CLK_TCK)))
}
node_flt() { # minor page faults of node $1 so far
	cut -d' ' -f10 /proc/"$(lc_pid "$1")"/stat
}
tenths() { echo "$(($1 / 10)).$(($1 % 10))"; } # tenths 123 -> 12.3
per_node() { # per_node ROWS A1 A2 A3 B1 B2 B3: us of CPU per row of each node between A and B (leader starred)
	local n=$1 i out=""
	local -a a=("$2" "$3" "$4") b=("$5" "$6" "$7")
	for i in 1 2 3; do
		out="$out node$i$([ "$i" = "$leader" ] && echo '*')=$(tenths $(((b[i - 1] - a[i - 1]) * 10000 / n)))"
	done
	echo "us CPU/row per node:$out"
}
rows_s() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / (ms ? ms : 1) }'; }

out=$(q '{"query":"CREATE INDEX FOR (p:Person) ON (p.id)"}')
grep -q '"error"' <<<"$out" && { echo "index: $out" >&2; exit 1; }

pchunk=${BENCH_PEOPLE_CHUNK:-$chunk}
kchunk=${BENCH_KNOWS_CHUNK:-$chunk}
pof="" kof=""
[ -n "$pchunk" ] && pof=" OF $pchunk ROWS"
[ -n "$kchunk" ] && kof=" OF $kchunk ROWS"
pq="LOAD CSV WITH HEADERS FROM 'file:///people.csv' AS r CALL { WITH r CREATE (:Person {id: toInteger(r.\`id:ID\`), name: r.name, age: toInteger(r.\`age:int\`), city: r.city, emb: vector(r.\`emb:vector(128)\`, 128, 'FLOAT32')}) } IN TRANSACTIONS$pof"
kq="LOAD CSV WITH HEADERS FROM 'file:///knows.csv' AS r CALL { WITH r MATCH (a:Person {id: toInteger(r.\`:START_ID\`)}), (b:Person {id: toInteger(r.\`:END_ID\`)}) CREATE (a)-[:KNOWS]->(b) } IN TRANSACTIONS$kof"

perf_start() {
	[ "${BENCH_PERF:-0}" != 0 ] || return 0
	local pids
	pids=$(lc_pid "$leader")
	[ "$BENCH_PERF" = all ] && pids="$(lc_pid 1),$(lc_pid 2),$(lc_pid 3)"
	perf record ${BENCH_PERF_OPTS:--g} -o "$LC_DIR/perf.data" -p "$pids" >/dev/null 2>&1 &
	perf_pid=$!
}
[ "${BENCH_PERF_KNOWS:-0}" = 1 ] || perf_start
c0=$(cpu_ms)
n0=("$(node_ms 1)" "$(node_ms 2)" "$(node_ms 3)")
t0=$(lc_now_ms)
qs=$((${BENCH_STATEMENT_TIME_MS:-60000} / 1000 + 60)) # curl outlasts the node's limit
out=$(q "{\"query\":\"$pq\"}" "$qs")
t1=$(lc_now_ms)
c1=$(cpu_ms)
n1=("$(node_ms 1)" "$(node_ms 2)" "$(node_ms 3)")
grep -q '"error"' <<<"$out" && { echo "people: $out" >&2; exit 1; }
echo "people: $people rows in $((t1 - t0)) ms: $(rows_s "$people" $((t1 - t0))) rows/s, $(tenths $(((c1 - c0) * 10000 / people))) us CPU/row (3 nodes); $(per_node "$people" "${n0[@]}" "${n1[@]}")"
perf_stop() {
	[ -n "$perf_pid" ] || return 0
	kill -INT "$perf_pid"
	wait "$perf_pid"
	perf_pid=""
}
[ "${BENCH_PERF_PEOPLE:-0}" = 1 ] && perf_stop
[ "${BENCH_PERF_KNOWS:-0}" = 1 ] && perf_start
f1=("$(node_flt 1)" "$(node_flt 2)" "$(node_flt 3)")
out=$(q "{\"query\":\"$kq\"}" "$qs")
t2=$(lc_now_ms)
f2=("$(node_flt 1)" "$(node_flt 2)" "$(node_flt 3)")
c2=$(cpu_ms)
n2=("$(node_ms 1)" "$(node_ms 2)" "$(node_ms 3)")
grep -q '"error"' <<<"$out" && { echo "knows: $out" >&2; exit 1; }
bm=$(lc_json_field bookmark <<<"$out")
perf_stop

# ---- every node has it all
same=yes d1=""
for i in 1 2 3; do
	c=$(lc_curl -s -m 60 -X POST -H 'Content-Type: application/json' \
		--data '{"query":"MATCH (p:Person) WITH count(p) AS p MATCH ()-[k:KNOWS]->() RETURN p, count(k) AS k","format":"rowArrays","consistency":"bookmark","bookmark":"'"$bm"'"}' \
		"http://$(lc_http "$i")/query")
	grep -q "\"rows\":\[\[$people,$edges\]\]" <<<"$c" ||
		{ echo "node $i: counts wrong: $c" >&2; exit 1; }
	d=$(lc_digest "$i" "$bm")
	[ -z "$d1" ] && d1=$d
	[ -n "$d" ] && [ "$d" = "$d1" ] || same=no
done
rss=""
for i in 1 2 3; do rss="$rss $(($(awk '/VmRSS/ { print $2 }' /proc/"$(lc_pid "$i")"/status) / 1024))"; done
# where the memory is (lora_memory_bytes parts, malloc's free bytes), MiB
mem=""
for i in 1 2 3; do
	mem="$mem node$i:$(lc_get "$(lc_http "$i")/metrics" 10 | awk '
		/^lora_memory_bytes\{part="(memtables|block_cache|row_cache|adjacency_cache)"\}/ {
			split($1, a, "\""); printf " %s=%d", a[2], $2 / 1048576 }
		/^lora_malloc_bytes\{state="(in_use|free)"\}/ {
			split($1, a, "\""); printf " malloc_%s=%d", a[2], $2 / 1048576 }')"
done

total=$((people + edges))
echo "graph: $people people (128-d vectors), $edges KNOWS, seed $seed, chunk people ${pchunk:-default} knows ${kchunk:-default}, leader node $leader"
echo "knows:  $edges rows in $((t2 - t1)) ms: $(rows_s "$edges" $((t2 - t1))) rows/s, $(tenths $(((c2 - c1) * 10000 / edges))) us CPU/row (3 nodes); $(per_node "$edges" "${n1[@]}" "${n2[@]}")"
echo "knows:  minor page faults per 1,000 rows: node1=$(((f2[0] - f1[0]) * 1000 / edges)) node2=$(((f2[1] - f1[1]) * 1000 / edges)) node3=$(((f2[2] - f1[2]) * 1000 / edges))"
echo "total:  $total rows in $((t2 - t0)) ms: $(rows_s "$total" $((t2 - t0))) rows/s (replicated, 3 nodes)"
echo "counts right on every node; digests equal at $bm: $same ($d1); RSS MiB:$rss"
echo "memory MiB:$mem"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$same" = yes ]
