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
#   checked where the log says the hook is honoured).
# Usage: statement_time.sh LORAD
. "$(dirname "$0")/lib.sh"
it_setup 127.2.60 "$1"
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
it_done
