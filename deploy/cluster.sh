#!/usr/bin/env bash
# deploy/cluster.sh - the local three-node cluster (deploy/local/node*.conf):
# nodes on 127.0.0.1-3, HTTP 4747, native protocol 4748, peers 4749, data,
# logs and pid files under data/ in the checkout. TLS is on for every port:
# start makes a development CA and node certificates in data/tls
# (deploy/gen-certs.sh) and authentication is on (data/admin.password).
#
#   deploy/cluster.sh start     build lorad if missing, start the nodes in the
#                               background, wait for their health and a leader
#   deploy/cluster.sh stop      SIGTERM every node (graceful: the leader hands
#                               over first), SIGKILL after 15 s
#   deploy/cluster.sh status    each node's process, role and indexes
#   deploy/cluster.sh restart
#   deploy/cluster.sh import STATE_DIR [--force] [--data-dirs D1,D2,D3]
#                               install a state directory made by lora-import
#                               into every node's data directory (the
#                               cluster must be stopped); --force replaces
#                               existing data; --data-dirs installs into
#                               other directories than the manifests' data/
#                               (e.g. for nodes started by hand or a test)
#
# Environment: LORAD (lorad binary, default build/release/node/lorad),
# LORA (the shell, default build/release/client/lora).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
. "$root/deploy/lib.sh"

LC_LORAD=${LORAD:-$root/build/release/node/lorad}
LORA_SHELL=${LORA:-$root/build/release/client/lora}
LC_DIR=data # pid and log files: data/nodeN.pid, data/nodeN.log
LC_PREFIX=127.0.0
LC_N=3

# The manifests in deploy/local are the configs (not generated).
lc_conf() { echo "$root/deploy/local/node$1.conf"; }

ensure_built() {
	if [ -x "$LC_LORAD" ] && [ -x "$LORA_SHELL" ]; then return 0; fi
	lc_log "building (lorad or lora missing)"
	if [ -d "$root/build/release" ]; then
		cmake --build "$root/build/release" -j"$(nproc)" || return 1
	else
		"$root/scripts/build.sh" || return 1
	fi
	[ -x "$LC_LORAD" ] || { lc_log "no lorad at $LC_LORAD after the build"; return 1; }
}

check_addresses() {
	# 127.0.0.2 and .3 answer on Linux without configuration; say so
	# plainly where they do not (e.g. macOS needs an lo0 alias).
	local i
	for i in 2 3; do
		if ! ping -c1 -W1 "127.0.0.$i" >/dev/null 2>&1 &&
			command -v ping >/dev/null 2>&1; then
			lc_log "warning: 127.0.0.$i does not answer; add it to the loopback interface"
		fi
	done
}

start() {
	ensure_built || exit 1
	mkdir -p data
	chmod 700 data
	lc_auth_init data/admin.password
	lc_tls_init data/tls || { lc_log "cannot make certificates in data/tls"; exit 1; }
	local i ok=1
	for i in 1 2 3; do
		if lc_alive "$i"; then
			lc_log "node $i already running (pid $(lc_pid "$i"))"
			continue
		fi
		lc_start "$i"
		lc_log "node $i started (pid $(lc_pid "$i")), log data/node$i.log"
	done
	for i in 1 2 3; do lc_wait_health "$i" 30 || ok=0; done
	[ $ok = 1 ] || { lc_log "a node did not come up"; exit 1; }
	local leader
	if leader=$(lc_wait_leader 30); then
		lc_log "cluster up: leader is node $leader ($(lc_http "$leader"))"
	else
		lc_log "nodes are up but no leader was elected in 30 s"
		exit 1
	fi
}

stop() {
	local i
	for i in 1 2 3; do
		if lc_alive "$i"; then
			lc_log "stopping node $i (pid $(lc_pid "$i"))"
		fi
	done
	lc_stop_all 15
	lc_log "stopped"
}

status() {
	local i any=0
	[ -s data/admin.password ] && lc_auth_init data/admin.password
	[ -s data/tls/ca.pem ] && lc_tls_init data/tls
	printf '%-5s %-8s %-16s %-7s %-10s %s\n' node pid http health applied digest
	for i in 1 2 3; do
		local pid="-" health="down" applied="-" digest="-" d
		if lc_alive "$i"; then
			pid=$(lc_pid "$i")
			any=1
			if lc_curl -sf -m 1 "$LC_SCHEME://$(lc_http "$i")/health" >/dev/null 2>&1; then
				health=ok
				d=$(lc_get "$(lc_http "$i")/admin/digest")
				applied=$(echo "$d" | lc_json_field appliedIndex)
				digest=$(echo "$d" | lc_json_field digest | cut -c1-16)
			fi
		fi
		printf '%-5s %-8s %-16s %-7s %-10s %s\n' "$i" "$pid" "$(lc_http "$i")" \
			"$health" "${applied:--}" "${digest:--}"
	done
	[ $any = 1 ] || { echo "cluster is not running"; return 3; }
	echo
	if [ -x "$LORA_SHELL" ]; then
		"$LORA_SHELL" -q --timeout 2000 -a "$(lc_clients)" -c ":status"
	else
		lc_curl -s -m 2 "$LC_SCHEME://$(lc_http 1)/cluster/status"
		echo
	fi
}

# The data_dir a manifest names (relative to the checkout root).
conf_data_dir() {
	sed -n 's/^[[:space:]]*data_dir[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p' \
		"$(lc_conf "$1")" | head -n 1
}

# link_copy SRC DST: a copy of a RocksDB directory, SST files hard-linked
# (RocksDB never rewrites one; a file shared by several nodes' stores stays
# as long as one of them links it), the other files (MANIFEST, CURRENT,
# OPTIONS, WAL: rewritten in place or replaced) copied. LOG files are left
# out. Falls back to copying when DST is on another file system.
link_copy() {
	local src=$1 dst=$2 f
	local -a ssts=() others=()
	mkdir -p "$dst" || return 1
	for f in "$src"/*; do
		[ -f "$f" ] || continue
		case ${f##*/} in
		LOG | LOG.*) ;;
		*.sst) ssts+=("$f") ;;
		*) others+=("$f") ;;
		esac
	done
	if [ ${#ssts[@]} -gt 0 ]; then
		ln -- "${ssts[@]}" "$dst/" 2>/dev/null ||
			cp -- "${ssts[@]}" "$dst/" || return 1
	fi
	cp -- "${others[@]}" "$dst/" || return 1
	sync -- "$dst"/* "$dst" # fsync the copies and the directory
}

# import STATE_DIR [--force] [--data-dirs D1,D2,...]: every node gets
# <data_dir>/state (what it starts from: lorad takes a state without a Raft
# log as its compaction point) and <data_dir>/checkpoints/<applied index>
# (what the leader sends to a follower that lost its data), both link
# copies of STATE_DIR. STO_IMPORT_APPLIED_INDEX is 1.
import_state() {
	local src="" force=0 dirs="" i d n=0
	while [ $# -gt 0 ]; do
		case $1 in
		--force) force=1 ;;
		--data-dirs) dirs=${2:-}; shift ;;
		--data-dirs=*) dirs=${1#--data-dirs=} ;;
		-*) echo "import: unknown option $1" >&2; return 2 ;;
		*) src=$1 ;;
		esac
		shift
	done
	if [ -z "$src" ] || [ ! -f "$src/CURRENT" ]; then
		echo "usage: $0 import STATE_DIR [--force] [--data-dirs D1,D2,D3]" >&2
		echo "  (STATE_DIR: the --into directory of lora-import)" >&2
		return 2
	fi
	if [ -z "$dirs" ]; then
		for i in 1 2 3; do
			if lc_alive "$i"; then
				lc_log "node $i is running: stop the cluster first"
				return 1
			fi
			d=$(conf_data_dir "$i")
			dirs="$dirs${dirs:+,}${d:-data/node$i}"
		done
	fi
	local -a list
	IFS=, read -r -a list <<<"$dirs"
	for d in "${list[@]}"; do
		if [ $force = 0 ] && { [ -e "$d/state" ] || [ -e "$d/raftlog" ]; }; then
			lc_log "$d already holds data (use --force to replace it)"
			return 1
		fi
	done
	for d in "${list[@]}"; do
		# what lorad keeps in a data directory, nothing else
		rm -rf "$d/state" "$d/raftlog" "$d/checkpoints" "$d/snapshot.meta" \
			"$d/members" "$d/snapshot-staging" "$d/state.old"
		mkdir -p "$d/checkpoints" || return 1
		if ! link_copy "$src" "$d/state" ||
			! link_copy "$src" "$d/checkpoints/00000000000000000001"; then
			lc_log "cannot copy $src into $d"
			return 1
		fi
		n=$((n + 1))
		lc_log "installed $src into $d"
	done
	lc_log "$n data directories ready: start the nodes (deploy/cluster.sh start)"
}

case "${1:-}" in
start) check_addresses; start ;;
stop) stop ;;
restart) stop; start ;;
status) status ;;
import) shift; import_state "$@" ;;
*)
	echo "usage: $0 start|stop|status|restart|import STATE_DIR [--force]" >&2
	exit 2
	;;
esac
