#!/usr/bin/env bash
# tests/bench/bench_faults.sh - availability under faults on the leader,
# LoraDB vs etcd in one run on this machine (on demand, not in the suite;
# issue 15). Needs root (iptables, setpriv) and runs itself in a network
# namespace of its own, so its rules never touch the machine's loopback.
#
# For each system, a three-node cluster on loopback (LoraDB 127.0.142.1-3
# with its defaults, election 300 ms and heartbeat 50 ms; etcd 127.0.143.1-3
# with its defaults, election 1000 ms and heartbeat 100 ms); for each fault
# kind (kill -9, SIGSTOP, isolation) FAULTS_N rounds (default 5) of:
# BENCH_CLIENTS clients (default 10) spread over the three nodes doing
# single-statement writes over HTTP (bench_http, the same program for both,
# LoraDB writes carry a requestId) plus one client per node doing
# linearizable reads, then the fault on the current leader for HOLD_S
# seconds (default 3), then its end (restart, SIGCONT, heal). Per round:
#   gap_ms      the longest time with no acknowledged write from 1 s
#               before the fault to the end of the round
#   catchup_ms  after SIGCONT or the heal, until the node that was cut off
#               is at the commit index the leader had at that moment
#               (LoraDB: /cluster/status commitIndex; etcd: raftIndex of
#               /v3/maintenance/status); kill -9: not measured (process
#               start-up)
# and p50 / p99 (nearest rank) of both per kind and system. bench_http
# runs with --warm 0: its writes start at once, so the fault 2 s after its
# start lands in steady writing and the gap's start (1 s before the fault)
# never falls in a warm-up (which with load can take over a second).
# Isolation: LoraDB nodes dial from their own address, so iptables rules
# on the leader's address cut it off; etcd dials from 127.0.0.1, so each
# etcd member runs under a uid of its own and its outgoing packets are
# dropped by owner, its incoming ones by address.
#
# Environment: BENCH_BUILD (release build dir, default build/release),
# LORAD, BENCH_HTTP, FAULTS_N, HOLD_S, BENCH_CLIENTS, BENCH_SKIP_ETCD=1,
# BENCH_SKIP_LORA=1, FAULT_KINDS (default "kill stop isolate"), BENCH_KEEP=1
# (keep the logs in the work directory).
set -uo pipefail
if [ "$(id -u)" != 0 ]; then echo "needs root (iptables, setpriv)"; exit 2; fi
if [ -z "${BENCH_FAULTS_NS:-}" ]; then
	exec unshare -n env BENCH_FAULTS_NS=1 bash -c \
		'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/lib.sh"
build=${BENCH_BUILD:-$root/build/release}
LC_LORAD=${LORAD:-$build/node/lorad}
HTTPB=${BENCH_HTTP:-$build/tests/bench/bench_http}
N=${FAULTS_N:-5}
HOLD=${HOLD_S:-3}
CLIENTS=${BENCH_CLIENTS:-10}
KINDS=${FAULT_KINDS:-kill stop isolate}
PROBE=127.0.0.9
LC_PREFIX=127.0.142 LC_N=3
work=$(mktemp -d /tmp/lora-faults.XXXXXX)
chmod 755 "$work"
LC_DIR=$work/lora
etcd_pids=(0 0 0)
summary=()

cleanup() {
	LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_kill_all 2>/dev/null
	for p in "${etcd_pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM
for b in "$HTTPB" "$LC_LORAD"; do
	[ -x "$b" ] || { echo "missing $b (build a release tree)"; exit 2; }
done
command -v iptables >/dev/null || { echo "needs iptables"; exit 2; }

# ---- statistics -----------------------------------------------------------
# gap_ms FILE FROM_MS TO_MS: longest span without an acknowledgement in
# [FROM, TO] (the bounds count as acknowledgements).
gap_ms() {
	awk -v f="$2" -v t="$3" '$1 >= f && $1 <= t { print $1 }' "$1" | sort -n |
		awk -v f="$2" -v t="$3" 'BEGIN { p = f; g = 0 }
			{ if ($1 - p > g) g = $1 - p; p = $1 }
			END { if (t - p > g) g = t - p; print g }'
}
# pct P VALUES...: nearest-rank percentile
pct() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 }
		END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# ---- LoraDB -----------------------------------------------------------------
lora_commit() { # lora_commit ID -> that node's own commit index
	lc_curl -s -m 1 --interface $PROBE "http://127.0.142.$1:4747/cluster/status" |
		grep -o "\"id\":$1,[^}]*" | grep -o '"commitIndex":[0-9]*' | cut -d: -f2
}
lora_leader() { LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_leader; }
lora_pid() { LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_pid "$1"; }
lora_start() {
	LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_start "$1"
	disown "$(lora_pid "$1")" # no job notice when a fault kills it
}
lora_reader() { # lora_reader ID END_MS: linearizable reads until END
	while [ "$(lc_now_ms)" -lt "$2" ]; do
		lc_curl -s -m 2 -o /dev/null -X POST "http://127.0.142.$1:4747/query" \
			-d '{"query":"MATCH (n) RETURN count(n) AS c","consistency":"linearizable"}'
	done
}

# ---- etcd -------------------------------------------------------------------
etcd_status() { curl -s -m 1 --interface $PROBE -X POST -d '{}' "http://127.0.143.$1:2379/v3/maintenance/status"; }
etcd_commit() { etcd_status "$1" | lc_json_field raftIndex | tr -d '"'; }
etcd_leader() {
	local i s
	for i in 1 2 3; do
		s=$(etcd_status $i)
		[ -n "$(echo "$s" | lc_json_field member_id)" ] &&
			[ "$(echo "$s" | lc_json_field member_id)" = "$(echo "$s" | lc_json_field leader)" ] &&
			{ echo $i; return; }
	done
}
etcd_start() {
	local i=$1 u=$((20000 + $1))
	local cluster="e1=http://127.0.143.1:2380,e2=http://127.0.143.2:2380,e3=http://127.0.143.3:2380"
	mkdir -p "$work/etcd$i" && chown "$u:$u" "$work/etcd$i" && chmod 700 "$work/etcd$i"
	setpriv --reuid=$u --regid=$u --clear-groups etcd --name "e$i" --data-dir "$work/etcd$i" \
		--listen-client-urls "http://127.0.143.$i:2379" \
		--advertise-client-urls "http://127.0.143.$i:2379" \
		--listen-peer-urls "http://127.0.143.$i:2380" \
		--initial-advertise-peer-urls "http://127.0.143.$i:2380" \
		--initial-cluster "$cluster" --initial-cluster-state "${2:-new}" \
		--initial-cluster-token lora-faults >>"$work/etcd$i.log" 2>&1 &
	etcd_pids[$((i - 1))]=$!
}
etcd_pid() { echo "${etcd_pids[$(($1 - 1))]}"; }
etcd_reader() {
	while [ "$(lc_now_ms)" -lt "$2" ]; do
		curl -s -m 2 -o /dev/null -X POST "http://127.0.143.$1:2379/v3/kv/range" \
			-d '{"key":"Zm8="}'
	done
}

# ---- faults -----------------------------------------------------------------
# isolate SYS NODE -I|-D
isolate() {
	local ip
	if [ "$1" = lora ]; then
		ip=127.0.142.$2
		iptables "$3" INPUT -d "$ip" ! -s $PROBE -j DROP &&
			iptables "$3" INPUT -s "$ip" ! -d $PROBE -j DROP
	else
		ip=127.0.143.$2
		iptables "$3" INPUT -d "$ip" ! -s $PROBE -j DROP &&
			iptables "$3" OUTPUT -m owner --uid-owner $((20000 + $2)) -j DROP
	fi
}

# round SYS KIND K: one fault round; appends "gap catchup" to $work/SYS-KIND
round() {
	local sys=$1 kind=$2 k=$3 eps t_fault t_end l pid c t_heal caught gap i
	if [ "$sys" = lora ]; then eps=127.0.142.1:4747,127.0.142.2:4747,127.0.142.3:4747
	else eps=127.0.143.1:2379,127.0.143.2:2379,127.0.143.3:2379; fi
	local dur=$(((HOLD + 5) * 1000)) acks=$work/$sys-$kind-$k.acks
	"$HTTPB" --mode "$sys" --endpoints "$eps" --clients "$CLIENTS" \
		--duration-ms $dur --warm 0 --acked "$acks" --prefix "f$kind$k" >"$acks.out" 2>&1 &
	local bp=$! rp=()
	local t_stop=$(($(lc_now_ms) + dur))
	for i in 1 2 3; do "${sys}_reader" $i $t_stop & rp+=($!); done
	sleep 2
	l=$("${sys}_leader")
	[ -n "$l" ] || { lc_log "$sys: no leader before round $k"; wait $bp; kill "${rp[@]}" 2>/dev/null; return 1; }
	pid=$("${sys}_pid" "$l")
	t_fault=$(lc_now_ms)
	case $kind in
	kill) kill -KILL "$pid" ;;
	stop) kill -STOP "$pid" ;;
	isolate) isolate "$sys" "$l" -I ;;
	esac
	sleep "$HOLD"
	case $kind in
	kill) if [ "$sys" = lora ]; then lora_start "$l"; else etcd_start "$l" existing; fi ;;
	stop) kill -CONT "$pid" ;;
	isolate) isolate "$sys" "$l" -D ;;
	esac
	t_heal=$(lc_now_ms)
	caught=-1
	if [ "$kind" != kill ]; then
		local nl target
		for i in 1 2 3; do [ "$i" != "$l" ] && nl=$i; done
		local now_l
		now_l=$("${sys}_leader")
		[ -n "$now_l" ] && [ "$now_l" != "$l" ] && nl=$now_l
		target=$("${sys}_commit" "$nl")
		while [ "$(lc_now_ms)" -lt $((t_heal + 10000)) ]; do
			c=$("${sys}_commit" "$l")
			if [ -n "$c" ] && [ -n "$target" ] && [ "$c" -ge "$target" ]; then
				caught=$(($(lc_now_ms) - t_heal)); break
			fi
			sleep 0.01
		done
	fi
	wait $bp
	wait "${rp[@]}" 2>/dev/null
	t_end=$(lc_now_ms)
	gap=$(gap_ms "$acks" $((t_fault - 1000)) $((t_fault + HOLD * 1000 + 1000)))
	lc_log "$sys $kind round $k: leader $l, longest gap ${gap} ms, catch-up ${caught} ms ($(cat "$acks.out"))"
	echo "$gap $caught" >>"$work/$sys-$kind"
	# let a restarted node come back before the next round
	sleep 2
}

report() { # report SYS KIND
	local f=$work/$1-$2 gaps caughts
	[ -s "$f" ] || return
	mapfile -t gaps < <(awk '{ print $1 }' "$f")
	mapfile -t caughts < <(awk '$2 >= 0 { print $2 }' "$f")
	local line="$1 $2: ${#gaps[@]} faults, longest gap p50 $(pct 50 "${gaps[@]}") ms p99 $(pct 99 "${gaps[@]}") ms"
	[ ${#caughts[@]} -gt 0 ] && line="$line; catch-up p50 $(pct 50 "${caughts[@]}") ms p99 $(pct 99 "${caughts[@]}") ms"
	summary+=("$line")
}

run_system() { # run_system SYS
	local kind k
	for kind in $KINDS; do
		for k in $(seq 1 "$N"); do round "$1" "$kind" "$k"; done
		report "$1" "$kind"
	done
}

lc_log "fault benchmark: $N faults of each kind ($KINDS), held ${HOLD} s, $CLIENTS writers + 3 linearizable readers; $(nproc) cores"
if [ "${BENCH_SKIP_LORA:-0}" != 1 ]; then
	LC_PREFIX=127.0.142 LC_DIR=$work/lora LC_N=3 lc_write_configs "log_level = warn"
	# authentication is on by default: the writers send the admin's Basic
	# credentials (bench_http), the probes and readers use lc_curl
	BENCH_AUTHORIZATION="Basic $(printf '%s' "$LC_AUTH" | base64 -w0)"
	export BENCH_AUTHORIZATION
	for i in 1 2 3; do lora_start $i; done
	for i in 1 2 3; do LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_wait_health $i 60 || exit 1; done
	lc_log "LoraDB up on 127.0.142.1-3, leader $(lc_wait_leader 30)"
	run_system lora
	LC_PREFIX=127.0.142 LC_DIR=$work/lora lc_kill_all
fi
if [ "${BENCH_SKIP_ETCD:-0}" != 1 ] && command -v etcd >/dev/null; then
	for i in 1 2 3; do etcd_start $i; done
	n=0
	while [ -z "$(etcd_leader)" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
	lc_log "etcd $(etcd --version | head -n 1) up on 127.0.143.1-3, leader $(etcd_leader)"
	run_system etcd
fi
lc_log "summary:"
for s in "${summary[@]}"; do lc_log "  $s"; done
