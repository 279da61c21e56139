#!/usr/bin/env bash
# tests/bench/bench_cluster.sh - cluster write benchmark, LoraDB vs etcd, in
# one run on this machine (run on demand; not part of the test suite).
#
# For each system: a three-node cluster on loopback (LoraDB on 127.0.7.1-3,
# etcd on 127.0.8.1-3, data in a temp dir), single-statement writes over HTTP
# (LoraDB: POST /query CREATE; etcd: POST /v3/kv/put through its gRPC
# gateway) from 1, 16 and 64 concurrent clients spread over the three nodes,
# each for BENCH_SECONDS; then, under 16 clients, SIGKILL of the leader and
# the time from the kill to the first acknowledged write. The load generator
# is the same program for both (bench_http). etcd runs with its default
# settings and is installed with apt-get (etcd-server) when missing.
#
# Environment: BENCH_BUILD (release build dir, default build/release, made by scripts/build.sh),
# LORAD, BENCH_HTTP (binaries), BENCH_SECONDS (default 10),
# BENCH_CLIENTS (default "1 16 64"), BENCH_SKIP_ETCD=1, BENCH_SKIP_LORA=1,
# BENCH_SKIP_FAILOVER=1 (LoraDB: no leader kill after the points),
# BENCH_AUTH (on, the default, or off: LoraDB's authentication, to compare;
# with it on every request carries Basic auth, docs/security.md),
# BENCH_TLS (off, the default, or on: LoraDB with TLS on every port, a CA
# from deploy/gen-certs.sh, bench_http over https with --ca). TLS + auth
# against neither: BENCH_TLS=on BENCH_AUTH=on vs BENCH_TLS=off BENCH_AUTH=off.
# BENCH_PEER_FORWARD=true: followers pass writes over the peer channel
# (peer_forward, docs/node.md). Each LoraDB point also prints every node's
# CPU (user + system, /proc/<pid>/stat) per acknowledged write over the
# point, n<i>L for the leader and n<i>F for followers; with
# BENCH_THREAD_CPU=1 also per thread name of each node.
#
# The measured window of a point (writes/s, latency, every CPU figure)
# starts once each client is connected (TLS handshake done) and has had
# one write acknowledged (bench_http --warm 1): connection set-up, the
# nodes' first credential check and the followers' first connections to
# the leader are not in it. Figures before 2026-12-05 14:00 UTC (docs/
# benchmarks.md up to "TLS, sixth measurement") counted all of that in a
# 10 s window; BENCH_WARM=0 measures that way again. The nodes' CPU
# baselines are sampled between the warm-up and the window: bench_http
# says "warm" on one FIFO and starts its window once this script, having
# sampled, writes "go" on another. A client whose warm-up write fails for
# 30 s is left out of the window: window_clients= in a point's line says
# how many ran in it, and the script warns when that is fewer than asked.
# The failover run keeps the old timing (bench_http --warm 0): its kill
# is timed from bench_http's start.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/lib.sh"
build=${BENCH_BUILD:-$root/build/release}
LC_LORAD=${LORAD:-$build/node/lorad}
HTTPB=${BENCH_HTTP:-$build/tests/bench/bench_http}
SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-1 16 64}
work=$(mktemp -d /tmp/lora-bench.XXXXXX)
etcd_pids=()
results=()
lora_tls=() # bench_http's TLS option for LoraDB (BENCH_TLS=on)

cleanup() {
	LC_PREFIX=127.0.7 LC_DIR=$work/lora lc_kill_all
	for p in "${etcd_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

bins=("$HTTPB")
[ "${BENCH_SKIP_LORA:-0}" = 1 ] || bins+=("$LC_LORAD")
for b in "${bins[@]}"; do
	[ -x "$b" ] || { echo "missing $b (build a release tree: cmake -DCMAKE_BUILD_TYPE=Release)"; exit 2; }
done

# failover SYSTEM ENDPOINTS LEADER_PID_CMD: 16 clients, SIGKILL the leader
# (pid printed by LEADER_PID_CMD) after 3 s; the clock starts right after
# the signal. --warm 0: the writes start at once, not after a warm-up
# (which with TLS under load can take over a second) that the 3 s would
# have to cover.
failover() {
	local sys=$1 eps=$2 pidcmd=$3 t_kill out pid
	local tls=()
	[ "$sys" = lora ] && tls=("${lora_tls[@]}")
	"$HTTPB" --mode "$sys" --endpoints "$eps" --clients 16 --duration-ms 9000 "${tls[@]}" \
		--warm 0 --acked "$work/$sys-acked.txt" --prefix "fo" >"$work/$sys-fo.out" &
	local bp=$!
	sleep 3
	pid=$(eval "$pidcmd")
	kill -KILL "$pid"
	t_kill=$(lc_now_ms)
	wait "$bp"
	out=$(lc_first_ack_after "$work/$sys-acked.txt" 1 2 "$t_kill")
	lc_log "$sys: first acknowledged write ${out} ms after the leader kill ($(cat "$work/$sys-fo.out"))"
	results+=("$sys failover_first_write_ms=$out")
}

cpu_ticks() { # cpu_ticks PID: user + system CPU of a process, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# thread_ticks PID: "name<TAB>ticks" per thread name of a process (user +
# system CPU, threads of one name summed; one sed over every thread's
# stat, a thread gone meanwhile skipped)
thread_ticks() {
	sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1\t\2/' /proc/"$1"/task/*/stat 2>/dev/null |
		awk -F'\t' '{split($2, a, " "); t[$1] += a[11] + a[12]}
		END {for (k in t) print k "\t" t[k]}'
}

# thread_cpu BEFORE AFTER WRITES: "name=us" per thread name, CPU per write
thread_cpu() {
	awk -F'\t' -v hz="$(getconf CLK_TCK)" -v w="$3" '
		NR == FNR {t0[$1] = $2; next}
		{d = $2 - t0[$1]; if (d > 0) printf " %s=%.1f", $1, d * 1e6 / hz / w}' "$1" "$2"
}

# node_cpu PIDS TICKS0 LEADER WRITES: " n<i><L|F>_cpu_us_per_write=..." for
# each LoraDB node (L: the leader at the start of the point)
node_cpu() {
	local -n pids_=$1 t0_=$2
	local i d role hz out=""
	hz=$(getconf CLK_TCK)
	[ "${4:-0}" -gt 0 ] || return 0
	for i in 0 1 2; do
		d=$(($(cpu_ticks "${pids_[i]}") - t0_[i]))
		role=F
		[ "$((i + 1))" = "$3" ] && role=L
		out+=" n$((i + 1))${role}_cpu_us_per_write=$((d * 1000000 / hz / $4))"
	done
	printf '%s' "$out"
}

# point_baselines PIDS TICKS0: the nodes' CPU now, per process (into
# TICKS0) and per thread ($work/th0.<i>)
point_baselines() {
	local -n p_=$1 t_=$2
	local i
	t_=()
	for i in 0 1 2; do t_+=("$(cpu_ticks "${p_[i]}")"); done
	for i in 0 1 2; do thread_ticks "${p_[i]}" >"$work/th0.$i"; done
}

run_points() { # run_points SYSTEM ENDPOINTS
	local c line tls=() pids=() t0=() leader="" i bp warm w0 wd w wc st
	[ "$1" = lora ] && tls=("${lora_tls[@]}")
	local np=0
	for c in $CLIENTS; do
		w0=0 pids=() np=$((np + 1))
		if [ "$1" = lora ]; then
			leader=$(lc_leader)
			for i in 1 2 3; do pids+=("$(lc_pid "$i")"); done
			for i in 0 1 2; do w0=$((w0 + $(cpu_ticks "${pids[i]}"))); done
		fi
		# the CPU counts from the window's start: bench_http writes
		# "warm" to one FIFO after its warm-up and starts the window
		# once it reads "go" from the other, written here after the
		# baselines (both opened read-write: no open or write blocks)
		rm -f "$work/ready" "$work/go" && mkfifo "$work/ready" "$work/go" &&
			exec 3<>"$work/ready" 4<>"$work/go"
		"$HTTPB" --mode "$1" --endpoints "$2" --clients "$c" "${tls[@]}" \
			--duration-ms $((SECS * 1000)) --prefix "c$c-p$np" --warm "${BENCH_WARM:-1}" \
			--ready "$work/ready" --go "$work/go" >"$work/point.out" 3<&- 4<&- &
		bp=$!
		# (until bench_http is warm, or gone: its warm-up ends in 30 s)
		until read -r -t 1 -u 3 warm; do kill -0 "$bp" 2>/dev/null || break; done
		if [ "$1" = lora ]; then
			point_baselines pids t0
			wd=$((t0[0] + t0[1] + t0[2] - w0))
		fi
		echo go >&4
		wait "$bp"
		st=$?
		exec 3<&- 4<&-
		line=$(cat "$work/point.out")
		if [ "$st" != 0 ] || [ -z "$line" ]; then
			lc_log "$1 $c clients: bench_http failed (status $st)"
			results+=("$1 clients=$c failed")
			continue
		fi
		w=$(echo "$line" | sed -n 's/.* writes=\([0-9]*\).*/\1/p')
		wc=$(echo "$line" | sed -n 's/.* window_clients=\([0-9]*\).*/\1/p')
		[ "${wc:-$c}" = "$c" ] ||
			lc_log "$1: only ${wc} of $c clients in the window (the others' warm-up write failed for 30 s)"
		[ "$1" = lora ] && line+=$(node_cpu pids t0 "$leader" "$w")
		# the nodes' CPU before the window (warm-up: connections,
		# handshakes, first credential checks), all three summed
		[ "$1" = lora ] && line+=" warm_nodes_cpu_ms=$((wd * 1000 / $(getconf CLK_TCK)))"
		if [ "$1" = lora ] && [ "${BENCH_THREAD_CPU:-0}" = 1 ] && [ "${w:-0}" -gt 0 ]; then
			for i in 0 1 2; do
				thread_ticks "${pids[i]}" >"$work/th1.$i"
				lc_log "node $((i + 1)) threads, CPU us per write:$(thread_cpu "$work/th0.$i" "$work/th1.$i" "$w")"
			done
		fi
		lc_log "$line"
		results+=("$line")
	done
}

bench_lora() {
	LC_PREFIX=127.0.7 LC_DIR=$work/lora LC_N=3
	if [ "${BENCH_TLS:-off}" = on ]; then
		lc_tls_init "$work/lora/tls" || return 1
		lora_tls=(--ca "$LC_CACERT")
	fi
	lc_log "LoraDB TLS: ${BENCH_TLS:-off}"
	lc_write_configs "election_ms = 300" "heartbeat_ms = 50" "log_level = warn" \
		"auth = ${BENCH_AUTH:-on}" "peer_forward = ${BENCH_PEER_FORWARD:-false}"
	BENCH_AUTHORIZATION="Basic $(printf '%s' "$LC_AUTH" | base64 -w0)"
	export BENCH_AUTHORIZATION
	lc_log "LoraDB authentication: ${BENCH_AUTH:-on}"
	for i in 1 2 3; do lc_start "$i"; done
	for i in 1 2 3; do lc_wait_health "$i" 60 || return 1; done
	local leader
	leader=$(lc_wait_leader 30) || return 1
	lc_log "LoraDB cluster up on 127.0.7.1-3, leader node $leader"
	local eps=127.0.7.1:4747,127.0.7.2:4747,127.0.7.3:4747
	run_points lora "$eps"
	[ "${BENCH_SKIP_FAILOVER:-0}" = 1 ] || failover lora "$eps" 'lc_pid $(lc_leader)'
	lc_kill_all
	return 0
}

ensure_etcd() {
	command -v etcd >/dev/null && return 0
	lc_log "installing etcd-server with apt-get"
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q etcd-server >/dev/null ||
		{ $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q etcd-server >/dev/null; }
	command -v etcd >/dev/null
}

etcd_leader_ep() { # the endpoint of the etcd leader, "" if none
	local i s me l
	for i in 1 2 3; do
		s=$(curl -s -m 1 -X POST -d '{}' "http://127.0.8.$i:2379/v3/maintenance/status")
		me=$(echo "$s" | lc_json_field member_id)
		l=$(echo "$s" | lc_json_field leader)
		[ -n "$me" ] && [ "$me" = "$l" ] && { echo "$i"; return; }
	done
}

etcd_leader_pid() {
	local i
	i=$(etcd_leader_ep)
	[ -n "$i" ] && echo "${etcd_pids[$((i - 1))]}"
}

bench_etcd() {
	ensure_etcd || { lc_log "etcd not available; skipped"; return 1; }
	local cluster="e1=http://127.0.8.1:2380,e2=http://127.0.8.2:2380,e3=http://127.0.8.3:2380" i
	for i in 1 2 3; do
		etcd --name "e$i" --data-dir "$work/etcd$i" \
			--listen-client-urls "http://127.0.8.$i:2379" \
			--advertise-client-urls "http://127.0.8.$i:2379" \
			--listen-peer-urls "http://127.0.8.$i:2380" \
			--initial-advertise-peer-urls "http://127.0.8.$i:2380" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token lora-bench >"$work/etcd$i.log" 2>&1 &
		etcd_pids+=($!)
		disown $!
	done
	local n=0
	while [ -z "$(etcd_leader_ep)" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
	[ -n "$(etcd_leader_ep)" ] || { lc_log "etcd elected no leader"; return 1; }
	lc_log "etcd $(etcd --version | head -n 1) cluster up on 127.0.8.1-3, leader member $(etcd_leader_ep)"
	local eps=127.0.8.1:2379,127.0.8.2:2379,127.0.8.3:2379
	run_points etcd "$eps"
	failover etcd "$eps" etcd_leader_pid
	for p in "${etcd_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	return 0 # (the killed leader's kill above fails)
}

lc_log "cluster benchmark: $SECS s per point, clients: $CLIENTS; $(nproc) cores"
[ "${BENCH_SKIP_LORA:-0}" = 1 ] || bench_lora || lc_log "LoraDB benchmark failed"
[ "${BENCH_SKIP_ETCD:-0}" = 1 ] || bench_etcd || lc_log "etcd benchmark failed"
echo
echo "== results =="
printf '%s\n' "${results[@]}"
