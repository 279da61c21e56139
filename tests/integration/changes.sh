#!/usr/bin/env bash
# The change stream (GET /changes) on three real nodes (127.0.91.1-3):
# the committed changes after a bookmark, in order, in logical form, read
# from a follower; filtered by label and by type; as Server-Sent Events;
# a live subscriber sees a new write; bad parameters and a bookmark the
# log has compacted away are refused with their codes.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.91 "$1"

it_start_all 3 "$(it_peers 3)" --log-keep-entries 1000
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1)) # a follower

it_query "$L" '{"query":"RETURN 1"}'
B0=$(it_field bookmark)
it_query "$L" '{"query":"CREATE (:P {name: \"ann\"})"}'
it_query "$L" '{"query":"CREATE (:Q {x: 1})"}'
it_query "$L" '{"query":"MATCH (p:P) SET p.age = 3 REMOVE p.name"}'
it_query "$L" '{"query":"MATCH (p:P), (q:Q) CREATE (p)-[:KNOWS {since: 1}]->(q)"}'
it_query "$L" '{"query":"MATCH (q:Q) SET q:R","requestId":"req-7"}'
it_query "$L" '{"query":"DROP INDEX nosuch"}' # rejected at apply: no event
it_check "DROP INDEX nosuch is refused" test "$IT_STATUS" != 200
# the system keyspace never leaves through the stream: no event either
it_query "$L" '{"query":"CREATE USER cdc SET PASSWORD '"'"'cdc-pw-123'"'"'"}'
it_check "a user is created" test "$IT_STATUS" = 200
it_query "$L" '{"query":"MATCH ()-[k:KNOWS]->() DELETE k"}'
B1=$(it_field bookmark)
it_log "bookmarks $B0 .. $B1"

# all of it, from a follower, ending at B1 by itself
it_wait 10 bash -c "curl -s 'http://$IT_NET.$F:4747/admin/digest?index=$B1' | grep -q digest"
it_get "$F" "/changes?from=$B0&until=$B1"
ALL=$IT_BODY
echo "$ALL" >"$IT_DIR/all.ndjson"
ops() { echo "$1" | grep -o '"op":"[a-zA-Z]*"' | cut -d'"' -f4 | tr '\n' ' '; }
it_check "status 200" test "$IT_STATUS" = 200
it_check "six events, one per graph write (none for the refused one or the user)" test "$(echo "$ALL" | grep -c '"index"')" = 6
it_check "changes in order" test "$(ops "$ALL")" = \
	"createNode createNode setProperty removeProperty createRelationship addLabel deleteRelationship "
it_check "createNode carries labels and properties" grep -q \
	'"op":"createNode","id":[0-9]*,"labels":\["P"\],"properties":{"name":"ann"}' "$IT_DIR/all.ndjson"
it_check "setProperty carries the new value" grep -q '"key":"age","value":3' "$IT_DIR/all.ndjson"
it_check "the request id is carried" grep -q '"requestIds":\["req-7"\]' "$IT_DIR/all.ndjson"
it_check "relationship type and ends" grep -q \
	'"type":"KNOWS","startId":[0-9]*,"endId":[0-9]*' "$IT_DIR/all.ndjson"
it_check "no old values without cdc_old_values" test "$(grep -c '"old"' "$IT_DIR/all.ndjson")" = 0
FIRST_IDX=$(echo "$ALL" | head -1 | grep -o '"index":[0-9]*' | cut -d: -f2)
it_check "the first event follows the bookmark" test "$FIRST_IDX" -gt "$B0"

# filters: label Q (its creation, and the label added to it), type KNOWS
it_get "$F" "/changes?from=$B0&until=$B1&labels=Q"
it_check "labels=Q: its creation and the label added to it" test "$(ops "$IT_BODY")" = "createNode addLabel "
it_get "$F" "/changes?from=$B0&until=$B1&types=KNOWS"
it_check "types=KNOWS" test "$(ops "$IT_BODY")" = "createRelationship deleteRelationship "

# Server-Sent Events
it_get "$F" "/changes?from=$B0&until=$B1&format=sse"
echo "$IT_BODY" >"$IT_DIR/all.sse"
it_check "SSE frames" test "$(grep -c '^event: change$' "$IT_DIR/all.sse")" = 6
it_check "SSE ids are log indexes" grep -q "^id: $FIRST_IDX\$" "$IT_DIR/all.sse"

# a live subscriber on another follower sees a write made after it began
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))
curl -s -N -m 30 -D "$IT_DIR/live.hdr" "http://$IT_NET.$G:4747/changes?from=$B1" \
	>"$IT_DIR/live.out" &
CURL=$!
it_check "the subscriber is answered 200 at once" \
	it_wait 10 grep -q '^HTTP/1.1 200' "$IT_DIR/live.hdr"
it_query "$L" '{"query":"CREATE (:Live {n: 42})"}'
it_check "the live stream shows the new write within 5 s" \
	it_wait 5 grep -q '"labels":\["Live"\]' "$IT_DIR/live.out"
kill "$CURL" 2>/dev/null
wait "$CURL" 2>/dev/null

# refused: a bad parameter, an unknown one
bad_from() { [ "$IT_STATUS" = 400 ] && echo "$IT_BODY" | grep -q LORA_INVALID; }
it_get "$F" "/changes?from=abc"
it_check "from=abc: 400 LORA_INVALID" bad_from
it_get "$F" "/changes?from=1&colour=red"
it_check "unknown parameter: 400" test "$IT_STATUS" = 400

# a bookmark before what the log holds: a checkpoint on a node started
# with log_keep_entries 0 compacts everything it covers
it_stop 3
it_launch 3 "$(it_peers 3)" --log-keep-entries 0
it_wait_up 3
# (node 3 may still be catching up after its restart: checkpoint again
# until the log it keeps starts past bookmark 0)
compacted() {
	it_post 3 /admin/checkpoint '{}'
	it_get 3 "/changes?from=0&until=$B1"
	[ "$IT_STATUS" = 404 ] && echo "$IT_BODY" | grep -q 'compacted into a checkpoint'
}
it_check "compacted bookmark: 404 LORA_NOT_FOUND naming the way out" \
	it_wait 20 compacted
it_done
