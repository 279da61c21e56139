#!/usr/bin/env bash
# Clients that break off a TLS connection to the native port, against a
# live three-node cluster with TLS on every port (127.2.12.1-3):
#   - against the leader's native port, three of each: openssl s_client
#     that sends close_notify right after its handshake (before nng's
#     SP header), a ClientHello cut short, plaintext instead of a
#     handshake, and s_client refusing the node's certificate. After each
#     kind the port still answers a new client at once, and a write sent
#     to a follower (which passes it on over its own connection to the
#     leader) commits. Before tls_engine.c's fix the first kind stopped
#     the port for good (nng 1.5.2 ends a listener's accept loop on
#     NNG_ECLOSED): every later client waited until its own timeout.
#   - the watchdog (native.c): node W is restarted with the test hook
#     LORA_TLS_PEER_CLOSED_TESTING=1 (LORA_TEST_HOOKS builds only; CMake
#     skips the test without them), under which a peer's close is
#     NNG_ECLOSED again, and one s_client stops its listener's accept
#     loop. W logs that its listener handed over nothing to its own dials
#     and starts it again; its native port answers again and writes
#     through W commit. Twice: the watchdog goes on watching the new
#     listener (the second time comes NODE_NATIVE_REPLACE_MS after the
#     first at the earliest).
#   - a follower G restarted with the test hook
#     LORA_FWD_DIALER_STOP_TESTING=1, which closes the dialer of its
#     connection to the leader after its first passed-on write (as nng
#     1.5.2 leaves a dialer it stopped): the next write through G commits,
#     because G dials afresh (forward.c), and G logs it.
#   - no node replaced a listener otherwise, none stopped watching, and
#     the three nodes' digests agree.
IT_TLS=1
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || {
	echo "skipped: needs openssl"
	exit 77
}
it_setup 127.2.12 "$1"
NC=$2
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

# answers NODE: a new native client gets an answer from NODE within 5 s
answers() {
	timeout 5 "$NC" "$IT_NET.$1:4748" "RETURN 1 AS x" 10 </dev/null 2>&1 |
		grep -q 'rows=1 .*error=-$'
}
# writes_through NODE LABEL: a write sent to NODE's native port commits
writes_through() {
	timeout 20 "$NC" "$IT_NET.$1:4748" "CREATE (:$2)" 10 </dev/null 2>&1 |
		grep -q 'error=-$'
}
# the hostile clients, each against ADDR (host:port)
notify() { timeout 10 openssl s_client -connect "$1" -CAfile "$LORA_CA" -brief </dev/null >/dev/null 2>&1; }
# (bytes written from a subshell that ignores SIGPIPE: the node may have
# closed the connection already)
send_raw() { (trap '' PIPE && printf "$2" >"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null || :; }
cut_hello() { send_raw "$1" '\026\003\001\000\310\001\000'; }
plaintext() { send_raw "$1" 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'; }
untrusted() { timeout 10 openssl s_client -connect "$1" -verify_return_error -brief </dev/null >/dev/null 2>&1; }

it_check "node $L's native port answers" answers "$L"
for kind in notify cut_hello plaintext untrusted; do
	for i in 1 2 3; do "$kind" "$IT_NET.$L:4748"; done
	it_check "after three clients of kind $kind, node $L's native port answers a new one" answers "$L"
	it_check "and a write through follower $F commits" writes_through "$F" "After_$kind"
done
# replacements_are NODE N: NODE logged N replacements of its listener
STOPPED="native: the listener on tls+tcp://$IT_NET"
STOPPED_WHY="handed over no new connection"
replacements_are() { [ "$(grep -- "$STOPPED" "$IT_DIR/n$1.log" | grep -c -- "$STOPPED_WHY")" = "$2" ]; }
never_unwatched() {
	! grep -q "native: nng keeps no statistics" "$IT_DIR"/n[123].log
}

# -- the watchdog: node W's listener stopped by the test hook, twice
W=$F
it_stop "$W"
export LORA_TLS_PEER_CLOSED_TESTING=1
it_start "$W" "$P" || it_done
unset LORA_TLS_PEER_CLOSED_TESTING
it_check "node $W (restarted with the hook) answers natively" it_wait 20 answers "$W"
it_check "a write through node $W commits" it_wait 20 writes_through "$W" Before
for k in 1 2; do
	notify "$IT_NET.$W:4748"
	it_check "node $W logs that its stopped listener was replaced ($k)" it_wait 40 replacements_are "$W" "$k"
	it_check "node $W's native port answers again ($k)" it_wait 20 answers "$W"
	it_check "a write through node $W commits ($k)" it_wait 20 writes_through "$W" "Healed$k"
done
grep -- "$STOPPED" "$IT_DIR/n$W.log"

# -- a follower's stopped forward dialer: node G restarted with the test
# hook LORA_FWD_DIALER_STOP_TESTING=1 closes the dialer of its connection
# to the leader after its first passed-on write; the next write must dial
# afresh (forward.c, fwd_redial), else it is never handed over
LNOW=$(it_leader "$L")
G=""
for m in 1 2 3; do [ "$m" != "$LNOW" ] && [ "$m" != "$W" ] && G=$m; done
it_check "a follower other than node $W (leader: node $LNOW)" [ -n "$G" ]
it_stop "$G"
GSTART=$(($(wc -l <"$IT_DIR/n$G.log") + 1))
export LORA_FWD_DIALER_STOP_TESTING=1
it_start "$G" "$P" || it_done
unset LORA_FWD_DIALER_STOP_TESTING
it_check "a first write through node $G commits" it_wait 20 writes_through "$G" Fwd1
it_check "a second one commits too (its dialer was closed meanwhile)" writes_through "$G" Fwd2
redialed() {
	tail -n +"$GSTART" "$IT_DIR/n$G.log" |
		grep -q "forward: no connection to node .* dialing it afresh"
}
it_check "node $G logged, since its restart, that it dialed the leader afresh" redialed
for m in 1 2 3; do
	[ "$m" = "$W" ] && continue
	it_check "node $m never replaced its listener" replacements_are "$m" 0
done
it_check "no node stopped watching its listener" never_unwatched

it_query "$L" '{"query":"CREATE (:Last)"}' # a bookmark after every write
BM=$(it_field bookmark)
it_check "the three nodes hold the same state (digest at $BM)" it_wait 30 it_digests_equal "$BM"
it_done
