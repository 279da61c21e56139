#!/usr/bin/env bash
# Availability under faults on the leader (issue 15), three real nodes with
# the default timing (election 300 ms, heartbeat 50 ms):
#   1. SIGSTOP of the leader (127.0.140.x) while 10 writes with request ids
#      go through the followers: every one is acknowledged within 1 s of
#      the pause, and after SIGCONT each was applied exactly once (count,
#      digests equal, the same ids sent again change nothing).
#   2. the leader cut off by iptables (127.0.141.x, needs root and
#      iptables; runs in a network namespace of its own): a follower's
#      forwarded writes and linearizable reads complete on the new leader
#      within 1 s; after the heal the cut-off node reaches the leader's
#      commit index within 1 s.
# Part 2 is skipped with its reason when not root or iptables is missing.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
	[ -z "${IT_FAULTS_NS:-}" ]; then
	# iptables rules must never touch the machine's own loopback
	exec unshare -n env IT_FAULTS_NS=1 bash -c \
		'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
it_setup 127.0.140 "$1"
IT_ELECTION_MS=300
P=$(it_peers 3)

# it_send VIA NAME BODY: POSTs /query in the background; its status and
# time go to $IT_DIR/NAME.out as "status seconds".
it_send() {
	curl -s -m 10 -o "$IT_DIR/$2.body" -w '%{http_code} %{time_total}\n' \
		-X POST "http://$IT_NET.$1:4747/query" -d "$3" >"$IT_DIR/$2.out" &
	SENT+=($!)
}
# wait_sent: waits for the it_send requests (never for the nodes).
wait_sent() {
	wait "${SENT[@]}"
	SENT=()
}
SENT=()
# all_within NAMES LIMIT_S: every answer was 200 within LIMIT_S seconds.
all_within() {
	local lim=$1 f s t
	shift
	for f in "$@"; do
		it_log "$f: $(cat "$IT_DIR/$f.out")"
	done
	for f in "$@"; do
		read -r s t <"$IT_DIR/$f.out" || return 1
		[ "$s" = 200 ] || { it_log "$f: status $s ($(cat "$IT_DIR/$f.body"))"; return 1; }
		awk -v t="$t" -v l="$lim" 'BEGIN { exit !(t <= l) }' ||
			{ it_log "$f: $t s"; return 1; }
	done
}
count_is() { # count_is VIA LABEL N
	it_query "$1" "{\"query\":\"MATCH (a:$2) RETURN count(a) AS c\",\"format\":\"rowArrays\",\"consistency\":\"linearizable\"}"
	grep -q "\"rows\":\[\[$3\]\]" <<<"$IT_BODY"
}
commit_of() { # commit_of ID -> its own commitIndex
	curl -s -m 2 --interface 127.0.0.9 "http://$IT_NET.$1:4747/cluster/status" |
		grep -o "\"id\":$1,[^}]*" | grep -o '"commitIndex":[0-9]*' | cut -d: -f2
}
reached() { local c; c=$(commit_of "$1"); [ -n "$c" ] && [ "$c" -ge "$2" ]; }

# ---- 1. SIGSTOP -------------------------------------------------------
it_start_all 3 "$P" --heartbeat-ms 50 || it_done
it_need_leader 1
L=$IT_LEADER
F1=$((L % 3 + 1)) F2=$(((L + 1) % 3 + 1))
it_query $F1 '{"query":"CREATE (:Warm)"}'
it_check "a write through a follower before the pause" [ "$IT_STATUS" = 200 ]
LPID=$(cat "$IT_DIR/n$L.pid")
kill -STOP "$LPID"
it_log "SIGSTOP leader $L"
names=()
for k in $(seq 1 10); do
	via=$F1; [ $((k % 2)) = 0 ] && via=$F2
	it_send $via "stop$k" "{\"query\":\"CREATE (:Paused {k: $k})\",\"requestId\":\"paused-$k\"}"
	names+=("stop$k")
done
wait_sent
it_check "all 10 writes through followers acknowledged within 1 s of the pause" all_within 1.0 "${names[@]}"
kill -CONT "$LPID"
it_log "SIGCONT leader $L"
it_check "each applied once: 10 :Paused nodes" it_wait 10 count_is $F1 Paused 10
for k in $(seq 1 10); do
	it_query $F2 "{\"query\":\"CREATE (:Paused {k: $k})\",\"requestId\":\"paused-$k\"}"
done
it_check "the same request ids again change nothing" count_is $F2 Paused 10
BM=$(it_field bookmark)
it_check "the three nodes hold the same state (digest at $BM)" it_digests_equal "$BM"
for i in 1 2 3; do it_kill9 $i; done

# ---- 2. isolation and heal --------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v iptables >/dev/null; then
	it_log "SKIP isolation: needs root and iptables (apt-get install iptables)"
	it_done
fi
IT_NET=127.0.141
rm -rf "$IT_DIR/n1" "$IT_DIR/n2" "$IT_DIR/n3"
P=$(it_peers 3)
it_start_all 3 "$P" --heartbeat-ms 50 || it_done
it_need_leader 1
L=$IT_LEADER
F1=$((L % 3 + 1))
it_query $F1 '{"query":"CREATE (:Warm)"}'
LIP=$IT_NET.$L
PROBE=127.0.0.9 # the test's own look at the cut-off node
isolate() { # isolate -I|-D: every packet to or from LIP but the test's probes
	iptables "$1" INPUT -d "$LIP" ! -s "$PROBE" -j DROP &&
		iptables "$1" INPUT -s "$LIP" ! -d "$PROBE" -j DROP
}
isolate -I || { it_fail "iptables"; it_done; }
it_log "leader $L cut off by iptables"
names=()
for k in $(seq 1 5); do
	it_send $F1 "iso$k" "{\"query\":\"CREATE (:Cut {k: $k})\",\"requestId\":\"cut-$k\"}"
	it_send $F1 "lin$k" '{"query":"MATCH (w:Warm) RETURN count(w) AS c","consistency":"linearizable"}'
	names+=("iso$k" "lin$k")
done
wait_sent
it_check "a follower's writes and linearizable reads complete within 1 s" all_within 1.0 "${names[@]}"
NL=$(it_leader $F1)
it_check "a new leader ($NL)" it_other "$NL" "$L"
for k in $(seq 6 40); do
	it_query $F1 "{\"query\":\"CREATE (:Cut {k: $k})\",\"requestId\":\"cut-$k\"}"
done
C=$(commit_of "$NL")
isolate -D
it_log "healed; leader $NL commit index $C"
t0=$(date +%s%N)
it_check "the cut-off node reaches commit index $C within 1 s" it_wait 1 reached "$L" "$C"
it_log "reached after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
it_check "it serves the writes made while it was cut off" it_wait 5 count_is "$L" Cut 40
it_done
