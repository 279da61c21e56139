#!/usr/bin/env bash
# The statement time limit comes from the node's config (127.2.60.x):
# - statement_time_ms (--statement-time-ms) replaces the engine's 60 s:
#   a read past 1,000 ms ends with 408 LORA_TIMEOUT naming the limit;
# - a LOAD CSV ... CALL { ... } IN TRANSACTIONS load is held to it as a
#   whole: its chunks committed before the limit stay, and the answer
#   says how many, wherever the engine noticed the limit (the load is
#   slowed by the test hook LORA_SLOW_TESTING where built with it, and is
#   2M rows long where not);
# - the node keeps serving; a value out of range stops the node at start
#   with the range in its message;
# - a statement of an explicit transaction ends with the transaction's
#   life, whatever statement_time_ms allows (a node at 600 s, its
#   transactions living 1.5 s by the test hook LORA_TX_LIFE_MS_TESTING:
#   checked where the log says the hook is honoured);
# - a request lowers the limit for itself: HTTP "timeMs" and the header
#   X-Lora-Time-Ms (never raising it; 0 and anything but digits are
#   400), and the tx_timeout of an auto-commit Bolt RUN through the Neo4j
#   JavaScript driver (tests/client/bolt/tx_timeout.js: 700 ms on a 600 s
#   node ends a read that would run on, 20 s on a 1,000 ms node does not
#   raise it; skipped, saying so, where the driver is not installed);
# - a client that leaves while its read is inside one operator (a count
#   with no row out yet) stops it, on the 600 s node: a Bolt driver
#   closed during an auto-commit RUN and during a read transaction, an
#   HTTP connection reset, one closed with a FIN, a native client killed
#   (tests/client/bolt/client_gone.js; the node's
#   lora_statements_client_gone_total goes up), while a client that only
#   half-closed gets its answer and a Bolt write whose client closed
#   still commits;
# - three nodes (4-6), the leader at 600 s and a follower restarted at
#   1,500 ms: a load sent to the follower, over HTTP and natively, stops
#   at the follower's limit with 408 LORA_TIMEOUT saying what committed
#   (the follower sends its limit along), never LORA_UNKNOWN_OUTCOME after
#   the follower's wait while the leader loads on; the committed rows
#   stay on the leader. A client's lower header passes through; a load
#   that waited behind another past its limit is refused unexecuted; a
#   write transaction's statement through the follower stops at its
#   limit too; an HTTP and a native client that leave during a statement
#   of their read transaction on the leader stop it;
# - three more nodes (7-9) with peer_forward on, the leader at 600 s and
#   a follower restarted at 1,500 ms: a load sent to the follower's HTTP
#   port goes over the peer channel (its HTTP proxy sends nothing) and
#   stops at the follower's limit the same way; the committed rows stay
#   on the leader.
# Usage: statement_time.sh LORAD LORA (the shell, for the native protocol)
. "$(dirname "$0")/lib.sh"
it_setup 127.2.60 "$1"
LORA=$2
IMP="$IT_DIR/import"
mkdir -p "$IMP"
{
	echo "id"
	seq 1 2000000
} >"$IMP/ids.csv"
ID=1
LORA_SLOW_TESTING=100 it_start "$ID" "$ID@$IT_NET.$ID:4749" --statement-time-ms 1000 --import-dir "$IMP" || it_done
it_need_leader "$ID"

t0=$(date +%s%N)
it_query "$ID" '{"query":"UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c"}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "long read: $IT_STATUS after $ms ms: $IT_BODY"
it_check "a read past statement_time_ms (1000) is 408 LORA_TIMEOUT" \
	bash -c '[ "$1" = 408 ] && grep -q "LORA_TIMEOUT" <<<"$2" && grep -q "1000 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_check "and it ended well before the default 60 s" [ "$ms" -lt 15000 ]

it_query "$ID" '{"query":"/* slow-testing */ LOAD CSV WITH HEADERS FROM '"'"'file:///ids.csv'"'"' AS r CALL { WITH r CREATE (:T {id: toInteger(r.id)}) } IN TRANSACTIONS OF 1000 ROWS"}'
it_log "long load: $IT_STATUS: $IT_BODY"
it_check "a load past the limit is 408 and says what committed" \
	bash -c '[ "$1" = 408 ] && grep -q "transactions committed before" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
committed=$(grep -o '[0-9]* input rows in' <<<"$IT_BODY" | grep -o '^[0-9]*')
it_query "$ID" '{"query":"MATCH (t:T) RETURN count(t) AS c","format":"rowArrays"}'
it_check "its committed chunks stay (${committed:-?} rows)" \
	bash -c '[ "$1" = 200 ] && [ -n "$3" ] && [ "$3" -gt 0 ] && grep -q "\"rows\":\[\[$3\]\]" <<<"$2"' _ "$IT_STATUS" "$IT_BODY" "$committed"
it_query "$ID" '{"query":"RETURN 1 AS one"}'
it_check "the node keeps serving" [ "$IT_STATUS" = 200 ]

timeout 30 "$IT_LORAD" --id 9 --data-dir "$IT_DIR/bad" --http "$IT_NET.9:4747" \
	--client "$IT_NET.9:4748" --peer "$IT_NET.9:4749" --peers "9@$IT_NET.9:4749" \
	--statement-time-ms 50 >"$IT_DIR/bad.log" 2>&1
rc=$?
it_check "statement_time_ms 50 stops the node at start (rc $rc)" \
	bash -c '[ "$1" != 0 ] && [ "$1" != 124 ] && grep -q "statement_time_ms: 100..86400000" "$2"' _ "$rc" "$IT_DIR/bad.log"

# a transaction's statement ends with the transaction's life
TX=3
LORA_TX_LIFE_MS_TESTING=1500 it_start "$TX" "$TX@$IT_NET.$TX:4749" --statement-time-ms 600000 || it_done
it_need_leader "$TX"
if grep -q "LORA_TX_LIFE_MS_TESTING=1500 is set and honoured" "$IT_DIR/n$TX.log"; then
	it_post "$TX" /tx '{"statements":[{"statement":"CREATE (:W)"}]}'
	tx=$(grep -o '"commit":"/tx/[^/]*' <<<"$IT_BODY" | sed 's|.*/tx/||')
	t0=$(date +%s%N)
	it_post "$TX" "/tx/$tx" '{"statements":[{"statement":"UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c"}]}'
	ms=$((($(date +%s%N) - t0) / 1000000))
	it_log "long statement in transaction $tx: $IT_STATUS after $ms ms: $IT_BODY"
	it_check "a transaction's long statement stops with its 1.5 s life, not 600 s" \
		bash -c '[ "$1" != 200 ] && [ "$1" != 000 ] && grep -q "LORA_TIMEOUT" <<<"$2" && [ "$3" -lt 15000 ]' _ "$IT_STATUS" "$IT_BODY" "$ms"
else
	it_log "not built with the test hooks: the transaction life check is skipped"
fi

# a request's own lower limit
LONG='UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c'
t0=$(date +%s%N)
it_query "$ID" '{"query":"'"$LONG"'","timeMs":300}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "timeMs 300: $IT_STATUS after $ms ms: $IT_BODY"
it_check "timeMs 300 lowers the limit: 408 naming 300 ms" \
	bash -c '[ "$1" = 408 ] && grep -q "LORA_TIMEOUT" <<<"$2" && grep -q " 300 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_query "$ID" '{"query":"'"$LONG"'","timeMs":"5000"}'
it_check "timeMs 5000 does not raise the node's 1000 ms" \
	bash -c '[ "$1" = 408 ] && grep -q " 1000 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_query "$ID" '{"query":"RETURN 1 AS one","timeMs":0}'
it_check "timeMs 0 is 400 LORA_INVALID" \
	bash -c '[ "$1" = 400 ] && grep -q "timeMs.*positive" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
hdr() { # hdr VALUE BODY: POST /query to node ID with X-Lora-Time-Ms: VALUE
	local out
	out=$(curl -s -m 20 -w '\n%{http_code}' -H "X-Lora-Time-Ms: $1" -X POST "$IT_SCHEME://$IT_NET.$ID:4747/query" -d "$2")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}
hdr 200 '{"query":"'"$LONG"'"}'
it_check "X-Lora-Time-Ms: 200 lowers the limit: 408 naming 200 ms" \
	bash -c '[ "$1" = 408 ] && grep -q " 200 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
hdr 5000 '{"query":"'"$LONG"'"}'
it_check "X-Lora-Time-Ms: 5000 does not raise the node's 1000 ms" \
	bash -c '[ "$1" = 408 ] && grep -q " 1000 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
for bad in soon 0 -5 +5 12x 1234567890123456789; do
	hdr "$bad" '{"query":"RETURN 1 AS one"}'
	it_check "X-Lora-Time-Ms: $bad is 400" [ "$IT_STATUS" = 400 ]
done

# an auto-commit Bolt RUN's tx_timeout, through the Neo4j driver: node
# $TX (600 s) and node $ID (1000 ms), checks in tx_timeout.js
BOLT=$(cd "$(dirname "$0")/../client/bolt" && pwd)
gone_count() { # gone_count API [NODE]: lora_statements_client_gone_total{api=API} of node NODE ($TX)
	it_get "${2:-$TX}" /metrics
	grep -o "^lora_statements_client_gone_total{api=\"$1\"} [0-9]*" <<<"$IT_BODY" | grep -o '[0-9]*$'
}
gone_above() { [ "$(gone_count "$1" "${3:-$TX}")" -gt "$2" ]; } # API N [NODE]
# a native client (the shell) that leaves while its read is inside one
# operator (a count, no row out yet) stops it on node $TX (600 s)
g_native=$(gone_count native)
timeout 3 "$LORA" -q --format csv -a "$IT_NET.$TX:4748" \
	-c "UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c;" >/dev/null 2>&1
it_check "a native client that left while its count ran stopped it (client_gone was ${g_native:-?})" \
	it_wait 5 gone_above native "${g_native:-0}"
if command -v node >/dev/null && [ -d "$BOLT/node_modules/neo4j-driver" ]; then
	bolt_timeout() {
		NODE_PATH="$BOLT/node_modules" timeout 60 node "$BOLT/tx_timeout.js" \
			"$IT_NET" "$TX" "$ID" 1000
	}
	it_check "Bolt tx_timeout lowers the limit of an auto-commit RUN, never raises it" \
		bolt_timeout
	# clients that leave while their read is inside one operator (no
	# row out yet) stop it, on node $TX (600 s): tests/client/bolt/client_gone.js
	g_bolt=$(gone_count bolt)
	g_http=$(gone_count http)
	NODE_PATH="$BOLT/node_modules" timeout 60 node "$BOLT/client_gone.js" \
		"$IT_NET" "$TX" "$IT_SCHEME" "$IT_AUTHZ" >"$IT_DIR/gone.out" 2>&1
	it_log "$(tr '\n' ' ' <"$IT_DIR/gone.out")"
	it_check "a Bolt client that closed while its count ran stopped it (client_gone was ${g_bolt:-?})" \
		it_wait 5 gone_above bolt "${g_bolt:-0}"
	if [ "$IT_SCHEME" = http ]; then
		it_check "so did an HTTP client that reset its connection (client_gone was ${g_http:-?})" \
			it_wait 5 gone_above http "${g_http:-0}"
		it_check "and one that closed it with a FIN (client_gone was ${g_http:-?})" \
			it_wait 5 gone_above http "$((${g_http:-0} + 1))"
		it_check "a client that half-closed after its request got its answer" \
			grep -q "http half-close: answered 200" "$IT_DIR/gone.out"
	fi
	it_check "and a Bolt client that closed inside a read transaction (client_gone was ${g_bolt:-?})" \
		it_wait 5 gone_above bolt "$((${g_bolt:-0} + 1))"
	gone_writes() {
		it_query "$TX" '{"query":"MATCH (g:GoneW) RETURN count(g) AS c","format":"rowArrays"}'
		grep -q '"rows":\[\[3\]\]' <<<"$IT_BODY"
	}
	it_check "a Bolt write whose client closed still commits (3 :GoneW)" it_wait 30 gone_writes
else
	it_log "neo4j-driver not installed (npm install --prefix tests/client/bolt): the Bolt tx_timeout and client-gone checks are skipped"
fi

# three nodes: a follower with a lower limit than the leader's
P3="4@$IT_NET.4:4749,5@$IT_NET.5:4749,6@$IT_NET.6:4749"
for i in 4 5 6; do
	LORA_SLOW_TESTING=100 it_launch "$i" "$P3" --statement-time-ms 600000 --import-dir "$IMP"
done
for i in 4 5 6; do it_wait_up "$i" || it_done; done
it_need_leader 4
L=$IT_LEADER
F=$((L == 4 ? 5 : 4))
it_stop "$F"
LORA_SLOW_TESTING=100 it_start "$F" "$P3" --statement-time-ms 1500 --import-dir "$IMP" || it_done
it_query "$L" '{"query":"CREATE (:Mark)"}'
it_caught_up "$F" "$L" "$(it_field bookmark)"

# clients that leave while a statement of their read transaction counts
# stop it, on the leader $L (600 s, transactions living their full time):
# an HTTP client (curl gives up after 2 s and closes) and a native one
# (the shell, killed after 2 s)
it_post "$L" /tx '{"mode":"read"}'
txid=$(grep -o '"tx":"/tx/[0-9a-f]*' <<<"$IT_BODY" | sed 's|.*/tx/||')
it_check "a read transaction began (${txid:-none})" test -n "$txid"
g_tx=$(gone_count http "$L")
curl -s -m 2 -o /dev/null -X POST "$IT_SCHEME://$IT_NET.$L:4747/tx/$txid" \
	-d '{"statements":[{"statement":"UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c"}]}'
it_check "an HTTP client that left while its read transaction counted stopped it (client_gone was ${g_tx:-?})" \
	it_wait 5 gone_above http "${g_tx:-0}" "$L"
g_native=$(gone_count native "$L")
printf ':begin read\nUNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c;\n' |
	timeout 2 "$LORA" -q --format csv -a "$IT_NET.$L:4748" >/dev/null 2>&1
it_check "a native client that left while its read transaction counted stopped it (client_gone was ${g_native:-?})" \
	it_wait 5 gone_above native "${g_native:-0}" "$L"

# loaded3 LABEL: the LABEL rows on the leader, linearizably
loaded3() {
	it_query "$L" '{"query":"MATCH (t:'"$1"') RETURN count(t) AS c","format":"rowArrays","consistency":"linearizable"}'
	grep -o '"rows":\[\[[0-9]*\]\]' <<<"$IT_BODY" | grep -o '[0-9][0-9]*'
}
load3() { # load3 LABEL: the slowed load's statement
	echo "/* slow-testing */ LOAD CSV WITH HEADERS FROM 'file:///ids.csv' AS r CALL { WITH r CREATE (:$1 {id: toInteger(r.id)}) } IN TRANSACTIONS OF 1000 ROWS"
}
# via_follower HOW LABEL: the slowed load of LABEL sent to follower $F's
# HTTP port stops at the follower's 1500 ms with 408 saying what
# committed, well before the follower's own wait, and exactly those rows
# are on the leader
via_follower() {
	local t0 ms committed
	t0=$(date +%s%N)
	it_query "$F" '{"query":"'"$(load3 "$2")"'"}'
	ms=$((($(date +%s%N) - t0) / 1000000))
	it_log "load through follower $F $1 (1500 ms; leader $L at 600 s): $IT_STATUS after $ms ms: $IT_BODY"
	it_check "$1: 408 LORA_TIMEOUT naming 1500 ms, saying what committed" \
		bash -c '[ "$1" = 408 ] && grep -q "LORA_TIMEOUT" <<<"$2" && grep -q "1500 ms" <<<"$2" && grep -q "transactions committed before" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
	it_check "and before the follower's wait (1.5 s + 12 s) ran out: $ms ms" [ "$ms" -lt 10000 ]
	committed=$(grep -o '[0-9]* input rows in' <<<"$IT_BODY" | grep -o '^[0-9]*')
	it_check "the leader holds exactly the committed rows (${committed:-?})" it_same "$committed" "$(loaded3 "$2")"
}
via_follower "over HTTP" H

t0=$(date +%s%N)
"$LORA" -q --format csv -a "$IT_NET.$F:4748" --route any -c "$(load3 N);" >"$IT_DIR/native.out" 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "native load through follower $F after $ms ms: $(head -c 600 "$IT_DIR/native.out")"
it_check "through the follower's native port: LORA_TIMEOUT saying what committed" \
	bash -c 'grep -q "LORA_TIMEOUT" "$1" && grep -q "transactions committed before" "$1" && ! grep -q "UNKNOWN_OUTCOME" "$1"' _ "$IT_DIR/native.out"
it_check "and before the follower's wait ran out: $ms ms" [ "$ms" -lt 10000 ]
committed=$(grep -o '[0-9]* input rows in' "$IT_DIR/native.out" | grep -o '^[0-9]*')
it_check "the leader holds exactly those rows (${committed:-?})" it_same "$committed" "$(loaded3 N)"

# a client's lower header passes through the follower's proxy
out=$(curl -s -m 30 -w '\n%{http_code}' -H "X-Lora-Time-Ms: 700" -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" -d '{"query":"'"$(load3 X)"'"}')
it_log "load through follower $F with X-Lora-Time-Ms 700: $out"
it_check "a client's X-Lora-Time-Ms: 700 holds through the follower" \
	bash -c 'grep -q "LORA_TIMEOUT" <<<"$1" && grep -q " 700 ms" <<<"$1"' _ "$out"

# the limit counts from the queueing: a load through the follower that
# waits behind the leader's own 6 s load is refused unexecuted when the
# writer reaches it, before the follower's wait ends (review s23-a F1)
curl -s -m 60 -X POST "$IT_SCHEME://$IT_NET.$L:4747/query" -d '{"query":"'"$(load3 A)"'","timeMs":6000}' >"$IT_DIR/a.out" &
apid=$!
it_check "the leader's own load started" it_wait 10 bash -c '[ "$(curl -s -m 5 -X POST "$0/query" -d "{\"query\":\"MATCH (a:A) RETURN count(a) > 0 AS go\",\"format\":\"rowArrays\"}" | grep -c true)" = 1 ]' "$IT_SCHEME://$IT_NET.$L:4747"
t0=$(date +%s%N)
it_query "$F" '{"query":"'"$(load3 Q)"'"}'
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$apid"
it_log "load through follower $F behind the leader's: $IT_STATUS after $ms ms: $IT_BODY; the leader's: $(head -c 300 "$IT_DIR/a.out")"
it_check "queued past its limit: 408, not executed" \
	bash -c '[ "$1" = 408 ] && grep -q "not executed" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_check "none of it is written" it_same 0 "$(loaded3 Q)"

# a write transaction's statements through the follower: held to its
# limit too (the leader's transaction lives 60 s)
it_post "$F" /tx '{"statements":[{"statement":"CREATE (:W)"}]}'
tx=$(grep -o '"commit":"/tx/[^/]*' <<<"$IT_BODY" | sed 's|.*/tx/||')
t0=$(date +%s%N)
it_post "$F" "/tx/$tx" '{"statements":[{"statement":"'"$LONG"'"}]}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "long statement in transaction ${tx:-?} through follower $F: $IT_STATUS after $ms ms: $IT_BODY"
it_check "a transaction's statement through the follower stops at its 1500 ms" \
	bash -c 'grep -q "LORA_TIMEOUT" <<<"$1" && [ "$2" -lt 10000 ]' _ "$IT_BODY" "$ms"

it_query "$F" '{"query":"RETURN 1 AS one"}'
it_check "the follower keeps serving" [ "$IT_STATUS" = 200 ]
for i in 4 5 6; do it_kill9 "$i"; done # done with: the next three get the CPU

# three nodes (7-9) with peer_forward on: a follower passes HTTP writes
# over the peer channel (node/peerfwd.c) and sends its limit there too
P7="7@$IT_NET.7:4749,8@$IT_NET.8:4749,9@$IT_NET.9:4749"
for i in 7 8 9; do
	LORA_SLOW_TESTING=100 it_launch "$i" "$P7" --peer-forward true \
		--statement-time-ms 600000 --import-dir "$IMP"
done
for i in 7 8 9; do it_wait_up "$i" || it_done; done
it_need_leader 7
L=$IT_LEADER # loaded3 asks this leader
F=$((L == 7 ? 8 : 7))
it_stop "$F"
LORA_SLOW_TESTING=100 it_start "$F" "$P7" --peer-forward true \
	--statement-time-ms 1500 --import-dir "$IMP" || it_done
it_query "$L" '{"query":"CREATE (:Mark)"}'
it_caught_up "$F" "$L" "$(it_field bookmark)"
proxied() { # proxied ID: node ID's lora_proxy_requests_total
	curl -s -m 5 "$IT_SCHEME://$IT_NET.$1:4747/metrics" |
		grep '^lora_proxy_requests_total ' | grep -o '[0-9]*$'
}
before=$(proxied "$F")
via_follower "over the peer channel" P
it_check "the load went over the peer channel, not the HTTP proxy (proxied: ${before:-?})" \
	it_same "$before" "$(proxied "$F")"
it_done
