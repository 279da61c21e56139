#!/usr/bin/env bash
# The statement time limit comes from the node's config (127.2.60.x):
# - statement_time_ms (--statement-time-ms) replaces the engine's 60 s:
#   a read past 1,000 ms ends with 408 LORA_TIMEOUT naming the limit;
# - a LOAD CSV ... CALL { ... } IN TRANSACTIONS load is held to it as a
#   whole: its chunks committed before the limit stay, and the answer
#   says how many;
# - the node keeps serving; a value out of range stops the node at start
#   with the range in its message.
# Usage: statement_time.sh LORAD
. "$(dirname "$0")/lib.sh"
it_setup 127.2.60 "$1"
IMP="$IT_DIR/import"
mkdir -p "$IMP"
{
	echo "id"
	seq 1 400000
} >"$IMP/ids.csv"
ID=1
it_start "$ID" "$ID@$IT_NET.$ID:4749" --statement-time-ms 1000 --import-dir "$IMP" || it_done
[ -n "$(it_leader "$ID")" ] && it_ok "single node leads" || { it_fail "no leader"; it_done; }

t0=$(date +%s%N)
it_query "$ID" '{"query":"UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c"}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "long read: $IT_STATUS after $ms ms: $IT_BODY"
it_check "a read past statement_time_ms (1000) is 408 LORA_TIMEOUT" \
	bash -c '[ "$1" = 408 ] && grep -q "LORA_TIMEOUT" <<<"$2" && grep -q "1000 ms" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_check "and it ended well before the default 60 s" [ "$ms" -lt 30000 ]

it_query "$ID" '{"query":"LOAD CSV WITH HEADERS FROM '"'"'file:///ids.csv'"'"' AS r CALL { WITH r CREATE (:T {id: toInteger(r.id), pad: r.id + r.id + r.id}) } IN TRANSACTIONS OF 1000 ROWS"}'
it_log "long load: $IT_STATUS: $IT_BODY"
it_check "a load past the limit is 408 and says what committed" \
	bash -c '[ "$1" = 408 ] && grep -q "transactions committed before the failing one" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
committed=$(grep -o '[0-9]* input rows in' <<<"$IT_BODY" | grep -o '^[0-9]*')
it_query "$ID" '{"query":"MATCH (t:T) RETURN count(t) AS c","format":"rowArrays"}'
it_check "its committed chunks stay ($committed rows)" \
	bash -c '[ "$1" = 200 ] && [ -n "$3" ] && [ "$3" -gt 0 ] && grep -q "\"rows\":\[\[$3\]\]" <<<"$2"' _ "$IT_STATUS" "$IT_BODY" "$committed"
it_query "$ID" '{"query":"RETURN 1 AS one"}'
it_check "the node keeps serving" [ "$IT_STATUS" = 200 ]

timeout 30 "$IT_LORAD" --id 9 --data-dir "$IT_DIR/bad" --http "$IT_NET.9:4747" \
	--client "$IT_NET.9:4748" --peer "$IT_NET.9:4749" --peers "9@$IT_NET.9:4749" \
	--statement-time-ms 50 >"$IT_DIR/bad.log" 2>&1
rc=$?
it_check "statement_time_ms 50 stops the node at start (rc $rc)" \
	bash -c '[ "$1" != 0 ] && [ "$1" != 124 ] && grep -q "statement_time_ms: 100..86400000" "$2"' _ "$rc" "$IT_DIR/bad.log"
it_done
