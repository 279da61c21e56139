#!/usr/bin/env bash
# With peer_forward on, a follower passes HTTP writes to the leader over
# the peer channel (node/peerfwd.c), not over a connection to the leader's HTTP or native
# port: with both of the leader's client ports refusing every connection
# but the test's own (iptables, in a network namespace of its own; needs
# root, else skipped), writes sent to a follower still commit and answer
# as the leader answers them:
#   - a write gets 200 with the leader's bookmark, and the result rows in
#     the format asked for;
#   - a write sent twice with one requestId is applied once;
#   - a write the leader refuses (a runtime error) gets the leader's
#     status and error code; a reader's write gets 403;
#   - a write with a requestId whose answer the leader drops (test hook
#     LORA_TEST_PFWD_DROP_ANSWER=2: its second answer, so that the
#     follower's watcher already sleeps with nothing to wait for) ends with
#     LORA_UNKNOWN_OUTCOME at the end of the forward wait (12 s + its
#     timeMs 1000 + the nodes' statement_time_ms 3000 + 5 s), not never; sent
#     again with the same requestId it answers 200 and is applied once;
#   - a committed write whose rows are too large for one peer frame
#     (72 MiB) answers 200 with its bookmark and "rowsOmitted": true,
#     not an error a client would retry;
#   - the three nodes' digests agree.
# 127.1.30.x (127.1.31.x with TLS on every port: IT_TLS=1).
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
	[ -z "${IT_FAULTS_NS:-}" ]; then
	# iptables rules must never touch the machine's own loopback
	exec unshare -n env IT_FAULTS_NS=1 bash -c \
		'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
it_setup 127.1.30 "$1"
if [ "$(id -u)" != 0 ] || ! command -v iptables >/dev/null; then
	it_log "SKIP: needs root and iptables (apt-get install iptables)"
	exit 77
fi
P=$(it_peers 3)
export LORA_TEST_PFWD_DROP_ANSWER=2 # each node drops its second answer
# statement_time_ms 3000: a follower's wait for a lost answer is 21 s
# (below), where the default 60 s would make it 78 s
it_start_all 3 "$P" --peer-forward true --statement-time-ms 3000 || it_done
unset LORA_TEST_PFWD_DROP_ANSWER
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))
LIP=$IT_NET.$L
PROBE=127.0.0.9 # the test's own look at the leader

# probe_query BODY: POST /query to the leader from PROBE.
probe_query() {
	local out
	out=$(curl -s -m 20 --interface "$PROBE" -w '\n%{http_code}' \
		-X POST "$IT_SCHEME://$LIP:4747/query" -d "$1")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}
cut_ports() { # cut_ports -I|-D: the leader's HTTP and native ports
	iptables "$1" INPUT -d "$LIP" ! -s "$PROBE" -p tcp \
		-m multiport --dports 4747,4748 -j REJECT --reject-with tcp-reset
}
count_is() { # count_is LABEL N (asked of the leader, from PROBE)
	probe_query "{\"query\":\"MATCH (a:$1) RETURN count(a) AS c\",\"format\":\"rowArrays\"}"
	grep -q "\"rows\":\[\[$2\]\]" <<<"$IT_BODY"
}

probe_query "{\"query\":\"CREATE USER rita SET PASSWORD 'rita-pw' CHANGE NOT REQUIRED\"}"
probe_query '{"query":"GRANT ROLE reader TO rita"}'
it_check "a reader created on the leader" it_status_is 200
# F passes a write on over the peer channel only once it knows the leader
# and has applied the cluster's peer secret (before, it takes the HTTP
# way, which the rule below refuses): wait for both
it_caught_up "$F" "$L" "$(it_field bookmark)"
cut_ports -I || {
	it_fail "iptables"
	it_done
}
it_log "node $L's ports 4747 and 4748 refuse everyone but $PROBE"

it_query "$F" '{"query":"CREATE (n:Fwd {k: 1}) RETURN n.k AS k","format":"rowArrays"}'
it_log "answer: $IT_STATUS $IT_BODY"
it_check "a write sent to follower $F commits (200)" it_status_is 200
it_check "its answer has the leader's rows" it_body_has '"rows":\[\[1\]\]'
BM=$(it_field bookmark)
it_check "and a bookmark ($BM)" test -n "$BM"

# The lost write must find the follower's watcher asleep with nothing to
# wait for: it looks at the first write again an election timeout after
# that write was sent (its silence check), then has no deadline. The
# condition is that much time passed (2 x IT_ELECTION_MS for a loaded
# machine): a watcher still awake makes this pass, never fail, wrongly.
T0=$(date +%s%3N)
waited_ms() { [ $(($(date +%s%3N) - T0)) -ge "$1" ]; }
it_check "two election timeouts after the first write" \
	it_wait 10 waited_ms $((2 * ${IT_ELECTION_MS:-1000}))
# The follower waits 12 s plus the write's time limit (1 s) plus its own
# statement_time_ms (3 s) plus 5 s (node_forward_wait_ms): 21 s.
Q='{"query":"CREATE (:Lost)","requestId":"peer-fwd-lost","timeMs":1000}'
t0=$(date +%s%3N)
out=$(curl -s -m 40 -w '\n%{http_code}' -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" -d "$Q")
IT_STATUS=${out##*$'\n'}
IT_BODY=${out%$'\n'*}
ms=$(($(date +%s%3N) - t0))
it_log "answer with the leader's answer dropped, after $ms ms: $IT_STATUS $IT_BODY"
it_check "a lost answer ends the wait: LORA_UNKNOWN_OUTCOME" \
	it_body_has '"code":"LORA_UNKNOWN_OUTCOME"'
it_check "... after the follower's wait of 21 s, not much later ($ms ms)" \
	test "$ms" -ge 20000 -a "$ms" -lt 35000
it_query "$F" "$Q"
it_check "sent again with its requestId: 200" it_status_is 200
it_check "and applied once" it_wait 10 count_is Lost 1

for k in 1 2; do
	it_query "$F" '{"query":"CREATE (:Once)","requestId":"peer-fwd-once"}'
	it_check "the write with a requestId, copy $k: 200" it_status_is 200
done
it_check "a requestId sent twice is applied once" it_wait 10 count_is Once 1

Q='{"query":"CREATE (:Bad {v: 1 / 0})"}'
probe_query "$Q"
LS=$IT_STATUS
LC=$(it_field code)
it_query "$F" "$Q"
it_check "a write the leader refuses: the leader's status ($LS)" it_status_is "$LS"
it_check "and its code ($LC)" it_body_has "\"code\":\"$LC\""
it_check "nothing written by it" count_is Bad 0

out=$(curl -q -s -m 20 -u rita:rita-pw "${IT_CURL_TLS[@]}" -w '\n%{http_code}' \
	-X POST "$IT_SCHEME://$IT_NET.$F:4747/query" -d '{"query":"CREATE (:Rita)"}')
IT_STATUS=${out##*$'\n'}
it_check "a reader's write through the follower: 403" it_status_is 403
it_check "nothing written by the reader" count_is Rita 0

# 900 KB of parameter returned 90 times: an 81 MB answer
big_body() {
	printf '{"query":"CREATE (:Big) WITH 1 AS x UNWIND range(1, 90) AS i RETURN $s AS s","params":{"s":"'
	head -c 900000 /dev/zero | tr '\0' x
	printf '"},"format":"rowArrays"}'
}
big_body >"$IT_DIR/big.json"
out=$(curl -s -m 60 -w '\n%{http_code}' -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" \
	--data-binary @"$IT_DIR/big.json")
IT_STATUS=${out##*$'\n'}
IT_BODY=${out%$'\n'*}
it_log "too large an answer: $IT_STATUS ${IT_BODY:0:300}"
it_check "a committed write with 81 MB of rows: 200" it_status_is 200
it_check "saying its rows were left out" it_body_has '"rowsOmitted":true'
it_check "with a bookmark" it_body_has '"bookmark":"[1-9]'
it_check "written once" count_is Big 1

for k in $(seq 2 20); do
	it_query "$F" "{\"query\":\"CREATE (:Fwd {k: $k})\"}"
done
it_check "20 writes through the follower, all applied" it_wait 10 count_is Fwd 20
BM=$(it_field bookmark)
cut_ports -D
it_check "the three nodes hold the same state (digest at $BM)" it_digests_equal "$BM"
it_done
