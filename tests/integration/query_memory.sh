#!/usr/bin/env bash
# Statement memory limits and native cursors on one real node (127.0.65.2):
# - query_memory_bytes / statement_memory_bytes come from the flags and
#   show in /metrics; "memoryBytes" (HTTP) and memory_bytes (native) lower
#   a statement's limit and never raise it; over the limit is 413
#   LORA_MEMORY_LIMIT (native: that code), and the node keeps serving;
#   a write over its limit writes nothing; a statement over the shared
#   budget is counted as refused, also beside an open cursor that holds
#   more than half of it (and runs once that cursor is closed);
# - a native cursor is freed when its connection goes away (counted as a
#   client that left) and after cursor_idle_ms without a fetch.
# Usage: query_memory.sh LORAD NATIVE_CURSOR
. "$(dirname "$0")/lib.sh"
it_setup 127.0.65 "$1"
NC=$2
ID=2 # the node's id, and the last byte of its address
H="http://$IT_NET.$ID:4747"
N="$IT_NET.$ID:4748"
FLAGS=(--statement-memory-bytes 8MiB --query-memory-bytes 64MiB --cursor-idle-ms 1000)
it_start "$ID" "$ID@$IT_NET.$ID:4749" "${FLAGS[@]}" || it_done
[ -n "$(it_leader "$ID")" ] && it_ok "single node leads" || { it_fail "no leader"; it_done; }

metric() {
	curl -s -m 5 "$H/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
wait_until() { # SECONDS CMD...
	local end=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
open_is() { [ "$(metric lora_statements_open)" = "$1" ]; }
# open_is N and the native client-gone counter at G
native_gone_at() { open_is "$1" && [ "$(metric 'lora_statements_client_gone_total{api="native"}')" = "$2" ]; }
idle_closed_at() { open_is 0 && [ "$(metric lora_cursors_idle_closed_total)" = "$1" ]; }

it_check "the shared budget (64MiB) shows in /metrics" [ "$(metric lora_query_memory_max_bytes)" = 67108864 ]

# -- native cursors: an open one is a running statement until its client
# closes it, reads it to the end, goes away, or leaves it idle
cursor_start() { # QUERY BATCH [MEMORY]: a client holding a cursor; its
	# output in $IT_DIR/nc.out, its input on fd $NCIN
	rm -f "$IT_DIR/nc.out"
	exec {NCIN}> >(exec "$NC" "$N" "$@" >"$IT_DIR/nc.out")
	wait_until 15 grep -q '^ms=' "$IT_DIR/nc.out"
}
cursor_stop() { exec {NCIN}>&-; }
Q1000='UNWIND range(1, 1000) AS i RETURN i ORDER BY i DESC'

cursor_start "$Q1000" 10
it_check "native: a cursor after 10 of 1000 rows" grep -q '^ms=.* rows=10 has_more=1 cursor=[0-9a-f]\{32\}' "$IT_DIR/nc.out"
it_check "native: its statement is open" open_is 1
used=$(metric lora_query_memory_used_bytes)
echo "fetch 2000" >&"$NCIN"
fetched_all() { grep -q 'rows=990 has_more=0' "$IT_DIR/nc.out" && open_is 0; }
it_check "native: fetched to the end: has_more=0, nothing open" wait_until 15 fetched_all
cursor_stop

gone0=$(metric 'lora_statements_client_gone_total{api="native"}')
cursor_start "$Q1000" 10
cursor_stop # the client exits: its connection goes away, cursor and all
it_check "native: a client that went away: its cursor is freed and counted" \
	wait_until 15 native_gone_at 0 $((gone0 + 1))

idle0=$(metric lora_cursors_idle_closed_total)
cursor_start "$Q1000" 10
it_check "native: an idle cursor is closed after cursor_idle_ms (1 s)" \
	wait_until 15 idle_closed_at $((idle0 + 1))
echo "fetch 10" >&"$NCIN"
it_check "native: fetching it afterwards: LORA_NOT_FOUND" \
	wait_until 15 grep -q 'error=LORA_NOT_FOUND' "$IT_DIR/nc.out"
cursor_stop
it_check "native: no client-gone count for it" \
	[ "$(metric 'lora_statements_client_gone_total{api="native"}')" = $((gone0 + 1)) ]

# -- the engine accounts memory: an open cursor over a sort shows
it_check "an open cursor over a 1000-row sort is charged ($used bytes in lora_query_memory_used_bytes)" \
	[ "$used" -gt 0 ]
# expect_limit WHAT: the answer is 413 LORA_MEMORY_LIMIT
expect_limit() {
	it_check "$1: 413 LORA_MEMORY_LIMIT" \
		bash -c '[ "$1" = 413 ] && [[ "$2" == "{\"error\":{\"code\":\"LORA_MEMORY_LIMIT\""* ]]' _ "$IT_STATUS" "$IT_BODY"
}

# -- memoryBytes: checked, lowers the limit, never raises it
it_query "$ID" '{"query":"RETURN 1 AS one","memoryBytes":0}'
it_check "memoryBytes 0: 400 LORA_INVALID" bash -c '[ "$1" = 400 ] && grep -q LORA_INVALID <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_query "$ID" '{"query":"RETURN 1 AS one","memoryBytes":"lots"}'
it_check "memoryBytes \"lots\": 400 LORA_INVALID" bash -c '[ "$1" = 400 ] && grep -q LORA_INVALID <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_query "$ID" '{"query":"RETURN 1 AS one","memoryBytes":4194304}'
it_check "memoryBytes 4 MiB for RETURN 1: 200" [ "$IT_STATUS" = 200 ]

C10K='UNWIND range(1, 10000) AS i WITH collect(i) AS l RETURN size(l) AS n'
C2M='UNWIND range(1, 2000000) AS i WITH collect(i) AS l RETURN size(l) AS n'
it_query "$ID" "{\"query\":\"$C10K\"}"
it_check "a 10000-value list under the 8 MiB statement limit: 200" \
	[ "$IT_STATUS $IT_BODY" = '200 {"columns":["n"],"rows":[{"n":10000}],"bookmark":"'"$(it_field bookmark)"'"}' ]
refused0=$(metric lora_query_memory_refused_total)
it_query "$ID" "{\"query\":\"$C10K\",\"memoryBytes\":65536}"
expect_limit "the same with memoryBytes 64 KiB (the list alone needs 80 KB)"
it_query "$ID" "{\"query\":\"$C2M\",\"memoryBytes\":1073741824}"
expect_limit "a 2M-value list (16 MB) with memoryBytes 1 GiB: the node's 8 MiB still holds"
it_check "statement limits are not the shared budget: refused count unchanged" \
	[ "$(metric lora_query_memory_refused_total)" = "$refused0" ]
echo close | "$NC" "$N" "$C10K" 10 65536 >"$IT_DIR/nc.out"
it_check "native memory_bytes 64 KiB: LORA_MEMORY_LIMIT" grep -q 'error=LORA_MEMORY_LIMIT' "$IT_DIR/nc.out"
# a write over its limit: 413, nothing written, the node serves
W='UNWIND range(1, 100000) AS i CREATE (:Big {i: i, s: \"0123456789abcdef\"})'
it_query "$ID" "{\"query\":\"$W\",\"memoryBytes\":1048576}"
expect_limit "a write of 100000 nodes with memoryBytes 1 MiB"
it_query "$ID" '{"query":"MATCH (n:Big) RETURN count(n) AS n"}'
it_check "the refused write wrote nothing" grep -q '"rows":\[{"n":0}\]' <<<"$IT_BODY"
# the graph format keeps every node it returns until the answer ends:
# that counts against the statement's limit (rows stream instead)
it_query "$ID" '{"query":"WITH reduce(s = \"\", k IN range(1, 200) | s + \"0123456789\") AS s UNWIND range(1, 1000) AS i CREATE (:G {i: i, s: toString(i) + s})"}'
it_check "1000 nodes of 2 KB written ($IT_STATUS)" [ "$IT_STATUS" = 200 ]
GQ='MATCH (n:G) RETURN n'
it_query "$ID" "{\"query\":\"$GQ\",\"format\":\"graph\",\"memoryBytes\":2097152}"
expect_limit "the graph format of 1000 nodes of 2 KB with memoryBytes 2 MiB (it holds about 4 MB)"
it_query "$ID" "{\"query\":\"$GQ\",\"format\":\"rows\",\"memoryBytes\":2097152}"
n=$(grep -o '"i":' <<<"$IT_BODY" | wc -l)
it_check "the same nodes as rows with memoryBytes 2 MiB: 200, 1000 rows ($n)" \
	[ "$IT_STATUS $n" = "200 1000" ]
it_query "$ID" "{\"query\":\"$GQ\",\"format\":\"graph\"}"
n=$(grep -o '"labels":\["G"\]' <<<"$IT_BODY" | wc -l)
it_check "the graph format under the node's 8 MiB: 200, 1000 nodes ($n)" \
	[ "$IT_STATUS $n" = "200 1000" ]
it_query "$ID" '{"query":"RETURN 7 AS seven"}'
it_check "the node serves after statements over their limits" grep -q '"seven":7' <<<"$IT_BODY"
it_check "no statement left open, no memory left charged" \
	[ "$(metric lora_statements_open) $(metric lora_query_memory_used_bytes)" = "0 0" ]

# -- the shared budget: 4 MiB for everything, below the statement limit
it_check "graceful stop" it_stop "$ID"
it_start "$ID" "$ID@$IT_NET.$ID:4749" --statement-memory-bytes 1GiB --query-memory-bytes 4MiB || it_done
it_check "the shared budget (4MiB) shows in /metrics" [ "$(metric lora_query_memory_max_bytes)" = 4194304 ]
it_query "$ID" "{\"query\":\"$C2M\"}"
expect_limit "a 2M-value list over the 4 MiB shared budget"
it_check "counted in lora_query_memory_refused_total" [ "$(metric lora_query_memory_refused_total)" = 1 ]
# two statements at once: a cursor holds a sort of more than half the
# budget, so the same sort beside it is refused until the cursor goes
QS='UNWIND range(1, SORT_ROWS) AS i RETURN i ORDER BY i DESC'
QS=${QS/SORT_ROWS/30000}
cursor_start "$QS" 1
held=$(metric lora_query_memory_used_bytes)
it_log "a cursor over a 30000-row sort holds $held bytes of the 4 MiB budget"
it_check "a cursor holds more than half the shared budget" \
	bash -c '[ "$1" -gt 2097152 ] && [ "$1" -le 4194304 ]' _ "$held"
echo close | "$NC" "$N" "$QS" 1 >"$IT_DIR/nc2.out"
it_check "the same sort beside it: LORA_MEMORY_LIMIT, counted" \
	bash -c 'grep -q "error=LORA_MEMORY_LIMIT" "$1" && [ "$2" = 2 ]' _ "$IT_DIR/nc2.out" "$(metric lora_query_memory_refused_total)"
it_check "the held cursor still holds its sort" [ "$(metric lora_query_memory_used_bytes)" = "$held" ]
echo "close" >&"$NCIN"
cursor_stop
it_check "closed: nothing open, nothing charged" \
	wait_until 15 bash -c '[ "$(curl -s -m 5 "$1/metrics" | awk '\''$1 == "lora_statements_open" || $1 == "lora_query_memory_used_bytes" { s = s $2 " " } END { print s }'\'')" = "0 0 " ]' _ "$H"
echo close | "$NC" "$N" "$QS" 1 >"$IT_DIR/nc2.out"
it_check "the same sort alone: its first row" grep -q '^ms=.* rows=1 has_more=1 .*error=-' "$IT_DIR/nc2.out"
it_query "$ID" "{\"query\":\"$C10K\"}"
it_check "a small statement still runs beside it" grep -q '"n":10000' <<<"$IT_BODY"

it_done
