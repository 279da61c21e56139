#!/usr/bin/env bash
# Explicit transactions over HTTP (POST /tx ..., docs/transactions.md) on
# three real nodes (127.0.200.1-3): begin, run, commit and rollback on the
# leader; reads in the transaction see its writes, nobody else does before
# the commit; a failed statement rolls it back whole; a transaction begun
# on a follower runs on the leader (every request passed on); another
# user's id is refused; an idle transaction expires and frees the writer;
# a read transaction on a follower reads one view and takes no writer; a
# second write transaction waits for the first and then sees its commit;
# the memory budget and the row limits; a commit of unknown outcome is not "rolledBack";
# a transaction's statement and a plain write through a follower that run
# 14 s on the leader get the leader's answer, and a write that waited for
# the writer past its 1 s limit is refused unexecuted.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.200 "$1"

# a transaction statement holding the comment slow-testing takes 14 s
export LORA_SLOW_TESTING=14000
it_start_all 3 "$(it_peers 3)"
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1)) # a follower

# tx_post NODE PATH BODY [USER:PW]: like it_post, with the Location header
# kept in $IT_DIR/hdr; DELETE with tx_delete.
tx_post() {
	local out auth=()
	[ -n "${4:-}" ] && auth=(-q -u "$4")
	out=$(curl "${auth[@]}" -s -m "${TX_MAXTIME:-30}" -D "$IT_DIR/hdr" -w '\n%{http_code}' \
		-X POST "http://$IT_NET.$1:4747$2" -d "$3")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}
tx_delete() {
	local out
	out=$(curl -s -m 30 -w '\n%{http_code}' -X DELETE "http://$IT_NET.$1:4747$2")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}
st() { [ "$IT_STATUS" = "$1" ]; }
st_has() { [ "$IT_STATUS" = "$1" ] && grep -q "$2" <<<"$IT_BODY"; }
count_on() { # NODE LABEL -> count of nodes with it, read linearizably
	it_query "$1" '{"query":"MATCH (n:'"$2"') RETURN count(n) AS c","format":"rowArrays","consistency":"linearizable"}'
	grep -o '"rows":\[\[[0-9]*\]\]' <<<"$IT_BODY" | grep -o '[0-9]\+'
}
stmt() { echo "{\"statements\":[{\"statement\":\"$1\"}]}"; }

# -- begin, run, read your writes, invisible to others, commit
tx_post "$L" /tx "$(stmt 'CREATE (:A {v: 1})')"
it_check "begin with a statement: 201" st 201
ID=$(it_field id)
it_check "the id is 32 hex digits" grep -qE '^[0-9a-f]{32}$' <<<"$ID"
it_check "Location names the transaction" grep -qi "^Location: /tx/$ID" "$IT_DIR/hdr"
it_check "the answer names the commit path, the timeout and the expiry" \
	grep -q "\"commit\":\"/tx/$ID/commit\".*\"timeoutMs\":10000,\"expiresMs\":[0-9]\{13\}" <<<"$IT_BODY"
tx_post "$L" "/tx/$ID" "$(stmt 'MATCH (a:A) RETURN count(a) AS c')"
it_check "the transaction reads its own write" st_has 200 '"c":1'
it_check "nobody else sees it before the commit" test "$(count_on "$F" A)" = 0
tx_post "$L" "/tx/$ID/commit" "$(stmt 'CREATE (:A {v: 2})')"
it_check "commit (with a last statement): 200 and a bookmark" st_has 200 '"bookmark":"[1-9]'
it_check "both writes are there after the commit" test "$(count_on "$F" A)" = 2
tx_post "$L" "/tx/$ID" "$(stmt 'RETURN 1')"
it_check "a committed transaction is gone: 404" st_has 404 LORA_NOT_FOUND

# -- rollback
tx_post "$L" /tx "$(stmt 'CREATE (:B)')"
ID=$(it_field id)
tx_delete "$L" "/tx/$ID"
it_check "DELETE rolls back: 200" st_has 200 '"rolledBack":true'
it_check "nothing of it was written" test "$(count_on "$L" B)" = 0

# -- a failed statement rolls back all of it
tx_post "$L" /tx "$(stmt 'CREATE (:C)')"
ID=$(it_field id)
tx_post "$L" "/tx/$ID" "$(stmt 'RETURN 1 / 0')"
it_check "a failing statement: its error, rolledBack" st_has 400 '"rolledBack":true'
it_check "... and the earlier write is gone" test "$(count_on "$L" C)" = 0
tx_post "$L" "/tx/$ID/commit" '{}'
it_check "... its id too" st 404

# -- CALL { } IN TRANSACTIONS commits its own chunks: refused inside a
# transaction, as a client error whatever ran before it (it was a 500
# after a write)
INTX='UNWIND range(1, 3) AS i CALL { WITH i CREATE (:Ix {i: i}) } IN TRANSACTIONS OF 1 ROWS'
tx_post "$L" /tx '{}'
ID=$(it_field id)
tx_post "$L" "/tx/$ID" "$(stmt "$INTX")"
it_check "IN TRANSACTIONS as a transaction's first statement: 400, auto-commit only" \
	st_has 400 'only as an auto-commit statement'
tx_post "$L" /tx "$(stmt 'CREATE (:Ix0)')"
ID=$(it_field id)
tx_post "$L" "/tx/$ID" "$(stmt "$INTX")"
intx_refused() { st_has 400 'only as an auto-commit statement' && grep -q '"rolledBack":true' <<<"$IT_BODY"; }
it_check "IN TRANSACTIONS after a write in the transaction: 400, rolledBack" intx_refused
it_check "... nothing of either was written" test "$(count_on "$L" Ix0)$(count_on "$L" Ix)" = 00

# -- begun on a follower: every request passed to the leader
tx_post "$F" /tx "$(stmt 'CREATE (:D {n: 1})')"
it_check "begin on a follower: 201" st 201
ID=$(it_field id)
tx_post "$F" "/tx/$ID" "$(stmt 'MATCH (d:D) RETURN count(d) AS c')"
it_check "a statement through the follower reads the write" st_has 200 '"c":1'
tx_post "$F" "/tx/$ID/commit" '{}'
it_check "commit through the follower" st 200
it_check "committed on the leader" test "$(count_on "$L" D)" = 1
tx_post "$F" /tx "$(stmt 'CREATE (:D {n: 2})')"
ID=$(it_field id)
tx_delete "$F" "/tx/$ID"
it_check "DELETE through the follower rolls back" st_has 200 '"rolledBack":true'
it_check "... nothing written" test "$(count_on "$L" D)" = 1
# a statement through the follower that runs past 12 s (14 s: the test
# hook LORA_SLOW_TESTING, set for the cluster above): the follower
# answered 503 "retry" after 12 s while the leader ran on and kept the
# write, so a retry wrote it twice
tx_post "$F" /tx "$(stmt 'CREATE (:Slow)')"
ID=$(it_field id)
TX_MAXTIME=60 tx_post "$F" "/tx/$ID" "$(stmt '/* slow-testing */ RETURN 7 AS c')"
it_log "long statement: $IT_STATUS $IT_BODY"
it_check "a long statement through the follower: its answer, not 503" st_has 200 '"c":7'
tx_post "$F" "/tx/$ID/commit" '{}'
it_check "... then the commit" st 200
it_check "... written once" test "$(count_on "$L" Slow)" = 1
# a plain write through the follower that runs past 12 s (the same hook):
# the follower waited 12 s for any write but a load, and answered
# LORA_UNKNOWN_OUTCOME while the leader ran on and committed it
# Meanwhile a write with a 1 s limit, sent to the leader while the
# writer is held, reaches it past its limit: refused, not executed (it
# reached no time check of the engine, and ran and committed, which a
# follower that passed it on no longer waited for)
t0=$(date +%s%N)
(TX_MAXTIME=60 tx_post "$F" /query '{"query":"/* slow-testing */ CREATE (:SlowPlain) RETURN 7 AS c","format":"rowArrays"}'
	printf '%s\n%s\n' "$IT_STATUS" "$IT_BODY" >"$IT_DIR/slowplain") &
slow_pid=$!
sleep 5 # the slow write holds the writer by then (14 s)
TX_MAXTIME=60 tx_post "$L" /query '{"query":"CREATE (:Late)","timeMs":1000}'
it_log "a 1 s write queued behind it: $IT_STATUS $IT_BODY"
late_status=$IT_STATUS late_body=$IT_BODY
wait "$slow_pid"
IT_STATUS=$(head -1 "$IT_DIR/slowplain")
IT_BODY=$(tail -n +2 "$IT_DIR/slowplain")
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "long plain write through the follower: $IT_STATUS after $ms ms: $IT_BODY"
it_check "a plain write through the follower running 14 s: its answer, not LORA_UNKNOWN_OUTCOME" \
	st_has 200 '"rows":\[\[7\]\]'
if grep -q "LORA_SLOW_TESTING=14000 is set and honoured" "$IT_DIR/n$L.log"; then
	it_check "... it ran that long ($ms ms)" test "$ms" -ge 14000
	it_check "a write that waited past its 1 s limit behind it: 408, not executed" \
		bash -c '[ "$1" = 408 ] && grep -q "not executed" <<<"$2"' _ "$late_status" "$late_body"
	it_check "... and nothing of it written" test "$(count_on "$L" Late)" = 0
else
	it_log "not built with the test hooks: the write was not slowed"
fi
it_check "... written once" test "$(count_on "$L" SlowPlain)" = 1

# -- another user's id
it_query "$L" "{\"query\":\"CREATE USER wes SET PASSWORD 'wes-pw-1' CHANGE NOT REQUIRED\"}"
it_query "$L" '{"query":"GRANT ROLE writer TO wes"}'
it_query "$L" "{\"query\":\"CREATE USER rita SET PASSWORD 'rita-pw-1' CHANGE NOT REQUIRED\"}"
it_query "$L" '{"query":"GRANT ROLE reader TO rita"}'
tx_post "$L" /tx "$(stmt 'CREATE (:E)')" wes:wes-pw-1
it_check "a writer begins" st 201
ID=$(it_field id)
tx_post "$L" "/tx/$ID/commit" '{}'
it_check "the admin may not commit wes's transaction: 403" st_has 403 LORA_FORBIDDEN
tx_post "$F" "/tx/$ID/commit" '{}'
it_check "... nor through a follower: 403" st 403
tx_post "$L" "/tx/$ID/commit" '{}' wes:wes-pw-1
it_check "wes commits it" st 200
tx_post "$L" /tx "$(stmt 'CREATE (:E)')" rita:rita-pw-1
it_check "a reader may not begin a write transaction: 403" st_has 403 LORA_FORBIDDEN
tx_post "$F" /tx '{"mode":"read","statements":[{"statement":"MATCH (e:E) RETURN count(e) AS c"}]}' rita:rita-pw-1
it_check "a reader begins a read transaction" st_has 201 '"c":1'

# -- a second write transaction waits for the first, then sees its commit
tx_post "$L" /tx "$(stmt 'MATCH (a:A {v: 1}) SET a.v = 10')"
ID1=$(it_field id)
second() {
	tx_post "$L" /tx "$(stmt 'MATCH (a:A) RETURN sum(a.v) AS s')"
	echo "$IT_STATUS $IT_BODY" >"$IT_DIR/second.out"
}
second &
SECOND=$!
tx_post "$L" "/tx/$ID1/commit" '{}'
wait "$SECOND"
it_check "then begins and reads the first one's commit" grep -q '^201 .*"s":12' "$IT_DIR/second.out"
ID2=$(grep -o '"id":"[0-9a-f]*"' "$IT_DIR/second.out" | cut -d'"' -f4)
tx_delete "$L" "/tx/$ID2"

# -- a read transaction on a follower reads one view and takes no writer
tx_post "$F" /tx '{"mode":"read","statements":[{"statement":"MATCH (a:A) RETURN count(a) AS c"}]}'
it_check "read transaction begun on a follower (here)" st_has 201 '"mode":"read"'
RID=$(it_field id)
it_query "$L" '{"query":"CREATE (:A {v: 100})"}'
it_check "a write meanwhile is not held up" st 200
BM=$(it_field bookmark)
it_wait 10 bash -c "curl -s 'http://$IT_NET.$F:4747/admin/digest?index=$BM' | grep -q digest"
tx_post "$F" "/tx/$RID" "$(stmt 'MATCH (a:A) RETURN count(a) AS c')"
it_check "the read transaction still reads its view" st_has 200 '"c":2'
tx_post "$F" "/tx/$RID" "$(stmt 'CREATE (:Nope)')"
it_check "a write in a read transaction is refused" st_has 400 LORA_READ_ONLY
it_check "a plain read sees the new write" test "$(count_on "$F" A)" = 3

# -- expiry: an idle transaction rolls back and frees the writer
tx_post "$L" /tx '{"timeoutMs":1000,"statements":[{"statement":"CREATE (:G)"}]}'
it_check "begin with timeoutMs 1000" st_has 201 '"timeoutMs":1000'
ID=$(it_field id)
# (a plain write waits for the writer: answered once the transaction
# expired, within the 10 s a write may wait; the id is gone then)
it_query "$L" '{"query":"CREATE (:H)"}'
it_check "the writer is free again after the idle second" st 200
tx_post "$L" "/tx/$ID" "$(stmt 'RETURN 1')"
it_check "the expired transaction's id: 404 or 408" bash -c "[ $IT_STATUS = 404 ] || [ $IT_STATUS = 408 ]"
it_check "the expired transaction wrote nothing" test "$(count_on "$L" G)" = 0

# -- the writer held past the begin wait: 503 LORA_UNAVAILABLE, retryable
tx_post "$L" /tx '{"timeoutMs":30000,"statements":[{"statement":"CREATE (:Held)"}]}'
HELD=$(it_field id)
tx_post "$L" /tx "$(stmt 'CREATE (:Waiting)')"
it_check "a begin that waited 10 s for the writer: 503 LORA_UNAVAILABLE" st_has 503 LORA_UNAVAILABLE
tx_delete "$L" "/tx/$HELD"
it_check "nothing of either was written" test "$(count_on "$L" Held)$(count_on "$L" Waiting)" = 00

# -- leadership lost while open: rolled back, the commit is refused with a
# retryable code, nothing is half-applied
tx_post "$F" /tx "$(stmt 'CREATE (:Lost {n: 1})')"
ID=$(it_field id)
tx_post "$F" "/tx/$ID" "$(stmt 'CREATE (:Lost {n: 2})')"
it_post "$L" /cluster/transfer "{\"to\":$F}"
leader_is() { it_get "$1" /cluster/status; grep -q "\"leader\":$1[,}]" <<<"$IT_BODY"; }
it_check "leadership moves to node $F" it_wait 20 leader_is "$F"
tx_post "$L" "/tx/$ID/commit" '{}'
it_check "the commit after the leader stepped down: 503 LORA_UNAVAILABLE" st_has 503 LORA_UNAVAILABLE
it_check "nothing of it was written" test "$(count_on "$F" Lost)" = 0
L=$F
F=$((L % 3 + 1))

# -- bad requests and limits
tx_post "$L" /tx '{"mode":"sideways"}'
it_check "a bad mode: 400" st_has 400 LORA_INVALID
tx_post "$L" /tx/0123 '{}'
it_check "a malformed id: 404" st 404
tx_post "$L" /tx '{"memoryBytes":200000,"statements":[{"statement":"UNWIND range(1, 20000) AS i CREATE (:M {s: \"some text to fill the budget\"})"}]}'
it_check "a transaction past its memory budget: 413 LORA_MEMORY_LIMIT" st_has 413 LORA_MEMORY_LIMIT
it_check "... nothing of it written" test "$(count_on "$L" M)" = 0
tx_post "$L" /tx '{"mode":"read","statements":[{"statement":"UNWIND range(1, 100001) AS i RETURN i"}]}'
it_check "more than 100000 rows from one statement: 413 LORA_LIMIT naming the way out" st_has 413 'LORA_LIMIT.*add a LIMIT'
tx_post "$L" /tx '{"mode":"read","statements":[{"statement":"UNWIND range(1, 100000) AS i RETURN i"}]}'
it_check "100000 rows are answered" st_has 201 '"rows":\[{"i":1},'
S10K=$(printf 'x%.0s' $(seq 1 10000)) # 10 kB: 1000 rows of it are 10 MB
tx_post "$L" /tx '{"mode":"read","statements":[{"statement":"UNWIND range(1, 1000) AS i RETURN $s AS s","parameters":{"s":"'"$S10K"'"}}]}'
it_check "more than 8 MiB of rows from one statement: 413 LORA_LIMIT" st_has 413 'LORA_LIMIT.*bytes of rows'
tx_post "$L" /tx '{"mode":"read","statements":[{"statement":"UNWIND range(1, 100) AS i RETURN $s AS s","parameters":{"s":"'"$S10K"'"}}]}'
it_check "1 MB of rows is answered" st_has 201 '"rows":\[{"s":"xxx'

# -- at most 8 begins wait for the writer at once (each holds a worker):
# a ninth is refused at once
tx_post "$L" /tx '{"timeoutMs":30000}'
HELD=$(it_field id)
CURLS=()
for i in $(seq 1 9); do
	curl -s -m 30 -o "$IT_DIR/w$i.out" -X POST "http://$IT_NET.$L:4747/tx" -d '{"timeoutMs":1000}' &
	CURLS+=($!)
done
refused() { cat "$IT_DIR"/w*.out 2>/dev/null | grep -q 'already wait for the writer'; }
it_check "the ninth begin waiting for the writer: 503 at once" it_wait 5 refused
tx_delete "$L" "/tx/$HELD"
wait "${CURLS[@]}"
# -- a commit whose outcome is unknown (both followers paused: no quorum
# answers within NODE_WRITE_TIMEOUT_MS) is never said to be rolled back:
# it may still commit once they are back
tx_post "$L" /tx "$(stmt 'CREATE (:Maybe)')"
it_check "begin before the pause" st 201
ID=$(it_field id)
PAUSED=()
for i in 1 2 3; do [ "$i" != "$L" ] && PAUSED+=("$(cat "$IT_DIR/n$i.pid")"); done
kill -STOP "${PAUSED[@]}"
tx_post "$L" "/tx/$ID/commit" '{}'
kill -CONT "${PAUSED[@]}"
it_check "a commit without a quorum: 503 LORA_UNKNOWN_OUTCOME" st_has 503 LORA_UNKNOWN_OUTCOME
it_check "... with \"rolledBack\": false, never true" grep -q '"rolledBack":false' <<<"$IT_BODY"
it_check "... saying it may have committed" grep -q 'may have committed' <<<"$IT_BODY"
it_done
