#!/usr/bin/env bash
# tests/bench/bench_scale.sh - one generated graph, four ways to hold it:
# LoraDB-C as a three-node cluster through HTTP, LoraDB-C's query engine
# in-process (bench_query), @loradb/lora-node 0.15.0 and kuzu 0.11.3 (both
# from npm, installed into tests/bench/scale/node_modules). Run on demand;
# not part of the test suite.
#
#   tests/bench/bench_scale.sh [--people N] [--edges E] [--seed S]
#       [--time-limit SECONDS] [--loader http|import] [--systems LIST]
#       [--people-batch N] [--edge-batch N] [--query-timeout S] [--mem-cap-mib N]
#
# 1. generates people.csv / knows.csv / meta.json (tests/bench/scale/gen.js;
#    default 100,000 people with a 128-d vector, 1,000,000 KNOWS edges);
# 2. for each system: loads the graph and times the load (LoraDB-C and
#    lora-node: batched UNWIND ... CREATE; kuzu: COPY FROM), stopping new
#    batches after --time-limit seconds (default 300) and reporting what was
#    loaded; then runs the query set warm, checks every answer against one
#    computed from the CSV files (tests/bench/scale/common.js), and takes the
#    median latency; RSS of every process after the load and the queries;
#    a query form still running after --query-timeout seconds (default 60)
#    or growing a process past --mem-cap-mib (default 4096) is given up
#    (none of the engines can cancel a query: an in-process system is
#    restarted in a fresh process to go on with the next form);
# 3. prints one table (tests/bench/scale/table.js) and exits 1 if a system
#    answered a query wrongly in every form it was tried in.
#
# LoraDB-C runs on 127.0.64.1-3 (HTTP 4747, native 4748, peers 4749), data
# in a temp dir; the cluster is stopped before the other systems run, so
# they do not share the two cores with it. Every process this script
# starts is killed by pid and the temp dir removed on exit, Ctrl-C or
# failure (a watcher does it even if this shell is killed outright).
#
# --loader import: the bulk importer (lora-import, docs/operations.md)
# builds the state instead, found as build/release/*/lora-import (without
# it the LoraDB-C HTTP column says "not available"). --systems: comma-separated
# subset of lora-http,inprocess,lora-node,kuzu (default: all).
#
# Environment: BENCH_BUILD (release tree, default build/release, made by
# scripts/build.sh), LORA_SEED (default seed), BENCH_KEEP=1 (keep the temp
# dir and print its path).
set -uo pipefail
# The whole script is one brace group, read in full before it runs, so
# editing this file while a run goes on does not derail that run.
{
root=$(cd "$(dirname "$0")/../.." && pwd)
scale=$root/tests/bench/scale
build=${BENCH_BUILD:-$root/build/release}
. "$root/deploy/lib.sh"

people=100000 edges=1000000 seed=${LORA_SEED:-42} limit=300 loader=http
pbatch=500 ebatch="" systems=lora-http,inprocess,lora-node,kuzu
qtimeout=60 memcap=4096
usage() {
	echo "usage: $0 [--people N] [--edges E] [--seed S] [--time-limit SECONDS]" >&2
	echo "       [--loader http|import] [--systems lora-http,inprocess,lora-node,kuzu]" >&2
	echo "       [--people-batch N] [--edge-batch N] [--query-timeout S] [--mem-cap-mib N]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--people) people=$2 ;;
	--edges) edges=$2 ;;
	--seed) seed=$2 ;;
	--time-limit) limit=$2 ;;
	--loader) loader=$2 ;;
	--systems) systems=$2 ;;
	--people-batch) pbatch=$2 ;;
	--edge-batch) ebatch=$2 ;;
	--query-timeout) qtimeout=$2 ;;
	--mem-cap-mib) memcap=$2 ;;
	*) usage ;;
	esac
	[ $# -ge 2 ] || usage
	shift 2
done
case "$loader" in http | import) ;; *) usage ;; esac
for v in "$people" "$edges" "$seed" "$limit" "$pbatch" "$qtimeout" "$memcap" "${ebatch:-1}"; do
	[[ $v =~ ^[0-9]+$ ]] || usage
done
[ "$people" -ge 2 ] && [ "$pbatch" -ge 1 ] && [ "${ebatch:-1}" -ge 1 ] || usage
# LoraDB-C's edge statement gets no index seek for pr[0] today: each pair
# scans every person and the rows are materialised, about 300 bytes per
# pair and person (a 1,000-pair batch on 10,000 people peaked at 3 GiB on
# the leader). Its default batch: 10 million pair-persons, 10 to 1,000
# pairs; lora-node's: 1,000 pairs. --edge-batch sets both.
ebatch_node=${ebatch:-1000}
if [ -z "$ebatch" ]; then
	ebatch=$((10000000 / people))
	[ "$ebatch" -gt 1000 ] && ebatch=1000
	[ "$ebatch" -lt 10 ] && ebatch=10
fi
want() { case ",$systems," in *",$1,"*) return 0 ;; esac; return 1; }

work=$(mktemp -d /tmp/lora-scale.XXXXXX)
LC_LORAD=${LORAD:-$build/node/lorad}
LC_PREFIX=127.0.64 LC_DIR=$work/lora LC_N=3
child=""

cleanup() {
	[ -f "$work/child.pid" ] && child=$(cat "$work/child.pid")
	[ -n "$child" ] && kill -9 "$child" 2>/dev/null && wait "$child" 2>/dev/null
	lc_kill_all
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
# If this shell is killed outright, a watcher still kills what it started.
me=$$
(
	trap '' INT TERM HUP
	while kill -0 "$me" 2>/dev/null; do sleep 1; done
	for f in "$work"/lora/node*.pid "$work"/child.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
) </dev/null >/dev/null 2>&1 &
disown $! # lc_stop_all's bare `wait` must not wait for the watcher

# run CMD...: runs a step in the background (so a signal reaches our trap
# at once and the cleanup can kill it by pid) and waits for it.
run() {
	"$@" &
	child=$!
	echo "$child" >"$work/child.pid"
	wait "$child"
	local rc=$?
	child=""
	rm -f "$work/child.pid"
	return $rc
}

skip() { # skip NAME REASON: a column of "-" with the reason under the table
	lc_log "$1 skipped: $2"
	echo "$2" >"$work/$1.skipped"
}

install_npm() {
	command -v node >/dev/null && command -v npm >/dev/null || {
		skip lora-node "node/npm not found (apt-get install nodejs npm)"
		skip kuzu "node/npm not found"
		return 1
	}
	if [ ! -f "$scale/node_modules/@loradb/lora-node/package.json" ] ||
		[ ! -f "$scale/node_modules/kuzu/package.json" ]; then
		lc_log "npm install (tests/bench/scale/package.json)"
		run npm install --prefix "$scale" --no-package-lock --no-audit --no-fund \
			--loglevel=error || lc_log "npm install failed"
	fi
	# kuzu's install script only copies the prebuilt binary shipped in the
	# npm tarball (prebuilt/kuzujs-linux-x64.node) into place; npm may skip
	# install scripts, so do the copy when it is missing (no download).
	if [ -f "$scale/node_modules/kuzu/install.js" ] &&
		[ ! -f "$scale/node_modules/kuzu/kuzujs.node" ]; then
		run node "$scale/node_modules/kuzu/install.js" >/dev/null ||
			lc_log "kuzu install.js failed"
	fi
	local err
	err=$(cd "$scale" && node -e 'require("@loradb/lora-node")' 2>&1) ||
		skip lora-node "cannot load @loradb/lora-node: ${err##*$'\n'}"
	err=$(cd "$scale" && node -e 'require("kuzu")' 2>&1) ||
		skip kuzu "cannot load kuzu: $(echo "$err" | grep -m1 -i error)"
}

# ---- The bulk-import hook (--loader import) --------------------------------
# lora-import (docs/operations.md, "Bulk import") reads neo4j-admin headers
# (written by scale/to_import_csv.js from the generated files, same rows):
#   lora-import --quiet --into STATE --id-type integer --nodes=Person
#     people.csv --relationships=KNOWS knows.csv --index 'Person(id)'
# and every node gets STATE as its state/ and as checkpoints/<index 1>/
# (`deploy/cluster.sh import STATE --data-dirs ...`; a plain copy in a
# checkout without that command).
# LORA_IMPORT overrides where the binary is found.
import_graph() {
	local imp i d t0
	imp=${LORA_IMPORT:-$(ls "$build"/*/lora-import 2>/dev/null | head -n 1)}
	if [ -z "$imp" ] || [ ! -x "$imp" ]; then
		skip lora-http "--loader import: lora-import not available (no $build/*/lora-import)"
		return 1
	fi
	run node "$scale/to_import_csv.js" --dir "$work/data" --out "$work/import-csv" ||
		{ skip lora-http "writing the import CSV files failed"; return 1; }
	lc_log "importing with $imp"
	mkdir -p "$work/import"
	t0=$(lc_now_ms)
	run "$imp" --quiet --into "$work/import/state" --id-type integer \
		--nodes=Person "$work/import-csv/people.csv" \
		--relationships=KNOWS "$work/import-csv/knows.csv" --index 'Person(id)' ||
		{ skip lora-http "lora-import failed (exit $?)"; return 1; }
	echo $(($(lc_now_ms) - t0)) >"$work/import.ms"
	lc_log "lora-import took $(cat "$work/import.ms") ms"
	if grep -q 'import STATE_DIR' "$root/deploy/cluster.sh"; then
		"$root/deploy/cluster.sh" import "$work/import/state" \
			--data-dirs "$(lc_datadir 1),$(lc_datadir 2),$(lc_datadir 3)" >/dev/null ||
			{ skip lora-http "deploy/cluster.sh import failed"; return 1; }
	else
		for i in 1 2 3; do
			d=$(lc_datadir "$i")
			mkdir -p "$d/checkpoints"
			cp -r "$work/import/state" "$d/state" &&
				cp -r "$work/import/state" "$d/checkpoints/00000000000000000001" ||
				{ skip lora-http "installing the imported state failed"; return 1; }
		done
	fi
}

bench_lora_http() {
	[ -x "$LC_LORAD" ] || { skip lora-http "no $LC_LORAD (run scripts/build.sh)"; return; }
	lc_write_configs "log_level = warn"
	if [ "$loader" = import ]; then import_graph || return; fi
	local i leader pids=""
	for i in 1 2 3; do lc_start "$i"; done
	for i in 1 2 3; do
		lc_wait_health "$i" 60 || { skip lora-http "node $i did not start"; return; }
	done
	leader=$(lc_wait_leader 30) || { skip lora-http "no leader in 30 s"; return; }
	for i in 1 2 3; do pids="$pids${pids:+,}$(lc_pid "$i")"; done
	lc_log "LoraDB-C: 3 nodes on $LC_PREFIX.1-3 (pids $pids), leader node $leader, loader $loader"
	local skipload=()
	[ "$loader" = import ] && skipload=(--skip-load 1)
	[ -f "$work/import.ms" ] && skipload+=(--import-ms "$(cat "$work/import.ms")")
	run node "$scale/lora_http.js" --dir "$work/data" --leader "$(lc_http "$leader")" \
		--hosts "$(lc_http 1),$(lc_http 2),$(lc_http 3)" --pids "$pids" \
		--out "$work/lora-http.json" --time-limit "$limit" \
		--people-batch "$pbatch" --edge-batch "$ebatch" --query-timeout "$qtimeout" \
		--mem-cap-mib "$memcap" "${skipload[@]}" ||
		lc_log "LoraDB-C HTTP run failed"
	if grep -q '"abandoned"' "$work/lora-http.json" 2>/dev/null; then
		lc_kill_all # a node past the memory cap: no graceful stop
	else
		lc_stop_all 15
	fi
}

bench_inprocess() {
	local bq=$build/tests/bench/bench_query
	[ -x "$bq" ] || { skip inprocess "no $bq (run scripts/build.sh)"; return; }
	lc_log "LoraDB-C in-process: $bq $people (its own graph, $((people * 10)) edges)"
	run node "$scale/inprocess.js" --bin "$bq" --people "$people" --edges "$edges" \
		--seed "$seed" --out "$work/inprocess.json" || lc_log "bench_query failed"
}

# bench_node_pkg NAME SCRIPT [args...]: runs a driver; when it gave up on a
# query form (past the run time limit or the memory cap; the engine cannot
# cancel it, so the driver wrote "abandoned" into its result and killed
# itself) it is started again, in a fresh process, to go on after that
# form, at most 6 times.
bench_node_pkg() {
	local name=$1 script=$2 rc n=0 resume=()
	shift 2
	[ -f "$work/$name.skipped" ] && return
	lc_log "$name"
	while :; do
		run node "$scale/$script" --dir "$work/data" --out "$work/$name.json" \
			--query-timeout "$qtimeout" --mem-cap-mib "$memcap" "${resume[@]}" "$@"
		rc=$?
		[ $rc = 0 ] && break
		grep -q '"abandoned"' "$work/$name.json" 2>/dev/null || break
		grep -q '"kind": "load"' "$work/$name.json" && break
		[ $n -lt 6 ] || break
		n=$((n + 1))
		cp "$work/$name.json" "$work/$name.resume.json"
		resume=(--resume "$work/$name.resume.json")
		lc_log "$name: restarting after the form it gave up on"
	done
	[ $rc = 0 ] || lc_log "$name run failed (exit $rc)"
}

lc_log "bench_scale: $people people, $edges edges, seed $seed, time limit ${limit} s," \
	"loader $loader, batches of $pbatch people / $ebatch pairs ($ebatch_node in lora-node)," \
	"systems $systems;" \
	"load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if want lora-node || want kuzu; then install_npm; fi
command -v node >/dev/null || { echo "node is needed (apt-get install nodejs)"; exit 2; }
t0=$(lc_now_ms)
run node "$scale/gen.js" --out "$work/data" --people "$people" --edges "$edges" \
	--seed "$seed" || exit 1
lc_log "generated in $(($(lc_now_ms) - t0)) ms: $(du -sh "$work/data" | cut -f1)"

if want lora-http; then bench_lora_http; else skip lora-http "not in --systems"; fi
if want inprocess; then bench_inprocess; else skip inprocess "not in --systems"; fi
if want lora-node; then
	bench_node_pkg lora-node lora_node.js --time-limit "$limit" \
		--people-batch "$pbatch" --edge-batch "$ebatch_node"
else skip lora-node "not in --systems"; fi
if want kuzu; then
	bench_node_pkg kuzu kuzu.js --db "$work/kuzu.db"
else skip kuzu "not in --systems"; fi

echo
echo "bench_scale: $people people, $edges KNOWS edges, seed $seed, $(date -u '+%Y-%m-%d %H:%M UTC')," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
node "$scale/table.js" --dir "$work"
exit $?
}
