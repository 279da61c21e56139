#!/usr/bin/env bash
# A follower's connection to the leader's native port (node/forward.c:
# native writes sent to a follower, with native_cursor) is
# exempt from the authentication deadline and the caps on unauthenticated
# connections (node/native.c) from the moment it is dialed, by the hello
# (the cluster-secret proof alone) it sends first, and only that
# connection is. Three real lorad processes on 127.2.10.1-3 (each dials
# from its own address), auth_timeout_ms 1000, pending_per_source 4,
# native_pending_max 6; native_flood holds unauthenticated connections from
# 127.2.10.50-51 and from a follower's own address:
#   - node L restarts, so both followers' connections to it are dialed
#     again and then stay idle (no write goes to L while it follows); L is
#     made leader again;
#   - a flood from 127.2.10.50 exhausts its per-source cap, a connection
#     from .51 is held to the deadline (L logs both), yet writes through
#     both followers all commit meanwhile;
#   - L never closes a connection from a follower's address, though their
#     idle connections are older than the deadline (without the hello
#     they are closed and dialed again every auth_timeout_ms);
#   - a connection without the proof from a follower's own address is
#     held to the deadline: the exemption is the connection's, not the
#     address's;
#   - the three nodes' digests agree.
# With IT_TLS=1 (integration_forward_hello_tls, 127.2.30.1-3) the same
# runs with TLS on every port: the followers' tls+tcp dialers are bound to
# their own host as well (the connections from $IT_NET.M checked below),
# and native_flood / native_cursor dial with TLS (LORA_CA).
. "$(dirname "$0")/lib.sh"
it_setup 127.2.10 "$1"
FLOOD=$2
NC=$3
P=$(it_peers 3)
FLAGS="--auth-timeout-ms 1000 --pending-per-source 4 --native-pending-max 6"
FLOOD_IP=$IT_NET.50

it_start_all 3 "$P" $FLAGS || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))
G=$((F % 3 + 1))

# count_is LABEL N: node L (a leader or not) has N nodes labelled LABEL
count_is() {
	it_query "$L" "{\"query\":\"MATCH (a:$1) RETURN count(a) AS c\",\"format\":\"rowArrays\"}"
	grep -q "\"rows\":\[\[$2\]\]" <<<"$IT_BODY"
}
# writes_through NODE LABEL N: N writes sent to NODE's native port (which
# a follower passes to the leader's native port: node/forward.c), every
# one answered without an error
writes_through() {
	local k out
	for k in $(seq 1 "$3"); do
		out=$("$NC" "$IT_NET.$1:4748" "CREATE (:$2 {k: $k})" 10 </dev/null 2>&1)
		grep -q 'error=-$' <<<"$out" || {
			it_log "write $k through node $1: $out"
			return 1
		}
	done
}
leads() { [ "$(it_leader "$1")" = "$1" ]; }
# logged_on_l TEXT: node L's log has a line with TEXT since its restart
logged_on_l() { tail -n +"$LSTART" "$IT_DIR/n$L.log" | grep -q -- "$1"; }
closed_from() { echo "native: closed a connection from $1: $2"; }
DEADLINE="not authenticated within auth_timeout_ms"

# follow_l: both followers know node L leads (their writes go there)
follow_l() { [ "$(it_leader "$F")" = "$L" ] && [ "$(it_leader "$G")" = "$L" ]; }
it_check "both followers know node $L leads" it_wait 30 follow_l
it_check "writes through follower $F (its connection to $L dialed)" writes_through "$F" Before 3
it_check "writes through follower $G" writes_through "$G" Before 3

# -- L restarts: the followers' sockets to it dial again, then stay idle
it_kill9 "$L"
LSTART=$(($(wc -l <"$IT_DIR/n$L.log") + 1))
it_start "$L" "$P" $FLAGS || it_done
# (node L may win the election after its restart by itself: no transfer)
moved() { leads "$L" || { it_post_leader "$F" /cluster/transfer "{\"to\":$L}" && leads "$L"; }; }
it_check "node $L restarted and made leader again" it_wait 60 moved
it_check "both followers know node $L leads again" it_wait 30 follow_l

# conns_from M: the local ports of node M's established connections to
# L's native port (ss; this test runs in a network namespace or on a
# machine where nothing else dials from $IT_NET.M)
conns_from() {
	ss -Htn state established "src $IT_NET.$1 and dst $IT_NET.$L:4748" |
		awk '{print $3}' | sort | tr '\n' ' '
}
both_dialed() { [ -n "$(conns_from "$F")" ] && [ -n "$(conns_from "$G")" ]; }
it_check "both followers' connections to node $L are up again" it_wait 30 both_dialed
CONNS_F=$(conns_from "$F")
CONNS_G=$(conns_from "$G")
it_log "follower connections to node $L: $F from $CONNS_F, $G from $CONNS_G"

# -- a flood from another address, against the leader's caps (L logs one
# line per source per 10 s: its first names the cap)
flood() { # flood NAME SOURCE_IP CONNS
	"$FLOOD" "$IT_NET.$L:4748" "$2" "$3" 120 >"$IT_DIR/$1.out" &
	echo $! >"$IT_DIR/n$1.pid" # killed by it_cleanup at the latest
}
unflood() { kill "$(cat "$IT_DIR/n$1.pid")" && rm -f "$IT_DIR/n$1.pid"; }
flood flood1 "$FLOOD_IP" 16
it_check "the flood from $FLOOD_IP exhausts its per-source cap" \
	it_wait 30 logged_on_l "$(closed_from "$FLOOD_IP" "new, and pending_per_source (4)")"
flood flood2 "$IT_NET.51" 1
it_check "a connection without the proof is held to the deadline" \
	it_wait 30 logged_on_l "$(closed_from "$IT_NET.51" "$DEADLINE")"
unflood flood2
it_check "during the flood, 10 writes through follower $F commit" writes_through "$F" During 10
it_check "and 10 through follower $G" writes_through "$G" During 10
it_check "all 6 writes from before the restart are on the leader" count_is Before 6
it_check "and the 20 of the flood's time" count_is During 20
# (the .51 connection, dialed after the followers' were up, was closed
# at its deadline: theirs are older than the deadline too)
never_closed_from() { ! logged_on_l "native: closed a connection from $1:"; }
for m in "$F" "$G"; do
	it_check "no connection of follower $m ($IT_NET.$m) was closed by the leader" \
		never_closed_from "$IT_NET.$m"
done
it_check "follower $F still has the same connections" it_same "$CONNS_F" "$(conns_from "$F")"
it_check "follower $G still has the same connections" it_same "$CONNS_G" "$(conns_from "$G")"


# -- a connection without the proof from a member's own address
flood flood3 "$IT_NET.$F" 1
it_check "a proofless connection from follower $F's address is held to the deadline" \
	it_wait 30 logged_on_l "$(closed_from "$IT_NET.$F" "$DEADLINE")"
it_check "meanwhile writes through follower $F still commit" writes_through "$F" After 5
unflood flood3
unflood flood1

it_query "$L" '{"query":"CREATE (:Last)"}' # a bookmark after every write
BM=$(it_field bookmark)
it_check "the three nodes hold the same state (digest at $BM)" it_wait 30 it_digests_equal "$BM"
it_done
