#!/usr/bin/env bash
# Old values in the change stream (cdc_old_values on every node) on three
# real nodes (127.0.220.1-3): an updated property carries the value it
# replaced (null when it was not set), a removed property its last value,
# DETACH DELETE gives each relationship's and the node's last labels,
# type, ends and properties; label changes; the same over NDJSON, SSE and
# the native protocol (the shell's :changes); a label filter goes by the
# deleted node's last labels; a native subscriber that started on the
# leader goes on after the leader is killed -9 and still sees the old
# values of what the dead leader wrote and of what the new one writes,
# each event once, in order.
# Usage: changes_old.sh LORAD LORA
. "$(dirname "$0")/lib.sh"
it_setup 127.0.220 "$1"
LORA=$2

it_start_all 3 "$(it_peers 3)" --cdc-old-values true || it_done
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1))
G=$((F % 3 + 1))

it_query "$L" '{"query":"RETURN 1"}'
B0=$(it_field bookmark)
# the subscriber: the leader's address first, so that it polls the node
# killed below
"$LORA" -q -a "$IT_NET.$L:4748,$IT_NET.$F:4748,$IT_NET.$G:4748" \
	-c ":changes $B0" >"$IT_DIR/sub.out" 2>"$IT_DIR/sub.err" &
SUB=$!

q() {
	it_query "$L" "$1"
	it_check "$2" test "$IT_STATUS" = 200
}
q '{"query":"CREATE (:P {name: \"ann\", age: 1})-[:KNOWS {since: 2020}]->(:Q {x: 1})"}' "create"
q '{"query":"MATCH (p:P) SET p.age = 2"}' "update age"
q '{"query":"MATCH (p:P) SET p.city = \"oslo\""}' "set a new property"
q '{"query":"MATCH (p:P) REMOVE p.name"}' "remove name"
q '{"query":"MATCH (p:P) SET p:R REMOVE p:P"}' "relabel"
q '{"query":"MATCH ()-[k:KNOWS]->() SET k.since = 2021"}' "update since"
q '{"query":"MATCH (p:R) DETACH DELETE p","requestId":"del-1"}' "detach delete"
B1=$(it_field bookmark)

it_check "follower applied the last write" it_wait 10 bash -c "curl -s 'http://$IT_NET.$F:4747/admin/digest?index=$B1' | grep -q digest"
it_get "$F" "/changes?from=$B0&until=$B1"
echo "$IT_BODY" >"$IT_DIR/all.ndjson"
it_check "status 200" test "$IT_STATUS" = 200
has() { grep -q -- "$1" "$IT_DIR/$2"; }
check_old() { # FILE
	it_check "$1: update carries the replaced value" has \
		'"op":"setProperty","entity":"node","id":[0-9]*,"key":"age","value":2,"old":1' "$1"
	it_check "$1: a new property's old value is null" has \
		'"key":"city","value":"oslo","old":null' "$1"
	it_check "$1: a removed property carries its last value" has \
		'"op":"removeProperty","entity":"node","id":[0-9]*,"key":"name","old":"ann"' "$1"
	it_check "$1: a relationship update carries the replaced value" has \
		'"entity":"relationship","id":[0-9]*,"key":"since","value":2021,"old":2020' "$1"
	it_check "$1: label changes" has '"op":"addLabel","id":[0-9]*,"label":"R"},{"op":"removeLabel","id":[0-9]*,"label":"P"' "$1"
	it_check "$1: DETACH DELETE: the relationship's type, ends and properties" has \
		'"op":"deleteRelationship","id":[0-9]*,"old":{"type":"KNOWS","startId":[0-9]*,"endId":[0-9]*,"properties":{"since":2021}}' "$1"
	it_check "$1: DETACH DELETE: the node's labels and properties" has \
		'"op":"deleteNode","id":[0-9]*,"detach":true,"old":{"labels":\["R"\],"properties":{"age":2,"city":"oslo"}}' "$1"
}
check_old all.ndjson
it_check "created entities carry no old values: six in all" \
	test "$(grep -o '"old"' "$IT_DIR/all.ndjson" | wc -l)" = 6

it_get "$G" "/changes?from=$B0&until=$B1&format=sse"
echo "$IT_BODY" >"$IT_DIR/all.sse"
check_old all.sse

# filters go by a deleted entity's labels and type then (the changes of
# the node before, matched by its labels now, are kept as it no longer
# exists: docs/changes.md)
ops() { echo "$1" | grep -o '"op":"[a-zA-Z]*"' | cut -d'"' -f4 | tr '\n' ' '; }
it_get "$F" "/changes?from=$B0&until=$B1&labels=Q"
it_check "labels=Q: not the deletion of the node that was an R" \
	test "$(ops "$IT_BODY")" = "createNode setProperty setProperty removeProperty addLabel removeLabel "
it_get "$F" "/changes?from=$B0&until=$B1&labels=R"
it_check "labels=R: its label added, and its deletion" \
	test "$(ops "$IT_BODY")" = "setProperty setProperty removeProperty addLabel removeLabel deleteNode "
it_get "$F" "/changes?from=$B0&until=$B1&types=KNOWS"
it_check "types=KNOWS: created, updated, deleted" \
	test "$(ops "$IT_BODY")" = "createRelationship setProperty deleteRelationship "

# the native subscriber saw it all from the leader; now the leader dies
it_check "the native subscriber saw the deletion" it_wait 20 grep -q '"del-1"' "$IT_DIR/sub.out"
it_log "killing leader $L"
it_kill9 "$L"
write() { # QUERY RID: retried with its request id until acknowledged
	local i l
	for i in $(seq 1 100); do
		for l in 1 2 3; do
			[ -f "$IT_DIR/n$l.pid" ] || continue
			it_query "$l" '{"query":"'"$1"'","requestId":"'"$2"'"}'
			[ "$IT_STATUS" = 200 ] && return 0
		done
		sleep 0.1
	done
	return 1
}
it_check "a write after the kill" write 'MATCH (q:Q) SET q.x = 5' after-1
it_check "a delete after the kill" write 'MATCH (q:Q) DELETE q' after-2
it_check "the subscriber goes on after the kill" it_wait 30 grep -q '"after-2"' "$IT_DIR/sub.out"
kill "$SUB" 2>/dev/null
wait "$SUB" 2>/dev/null
check_old sub.out
it_check "native: the new leader's update carries the old value" has \
	'"key":"x","value":5,"old":1' sub.out
it_check "native: the new leader's delete carries the node" has \
	'"op":"deleteNode","id":[0-9]*,"detach":false,"old":{"labels":\["Q"\],"properties":{"x":5}}' sub.out
in_order() {
	grep -o '^{"index":[0-9]*' "$IT_DIR/sub.out" | cut -d: -f2 >"$IT_DIR/idx"
	sort -n -u "$IT_DIR/idx" | cmp -s - "$IT_DIR/idx"
}
it_check "native: events in log order, none twice" in_order
it_check "native: nine events" test "$(grep -c '"index"' "$IT_DIR/sub.out")" = 9

# an explicit transaction (HTTP /tx, two statements) is one entry: one
# event, each change with the value the change before it left
N=$(it_leader "$F") # (asked of a survivor: node $L is dead)
it_check "a new leader" it_other "$N" "$L"
it_post "$N" /tx '{"statements":[{"statement":"CREATE (:T {v: 1})"}]}'
it_check "begin: 201" test "$IT_STATUS" = 201
TX=$(it_field id)
it_post "$N" "/tx/$TX" '{"statements":[{"statement":"MATCH (t:T) SET t.v = 2"}]}'
it_post "$N" "/tx/$TX/commit" '{"statements":[{"statement":"MATCH (t:T) SET t.v = 3"}]}'
it_check "commit: 200" test "$IT_STATUS" = 200
B2=$(it_field bookmark)
it_get "$N" "/changes?from=$((B2 - 1))&until=$B2"
echo "$IT_BODY" >"$IT_DIR/tx.ndjson"
it_check "the transaction is one event" test "$(grep -c '"index"' "$IT_DIR/tx.ndjson")" = 1
it_check "its changes in order, each old value the one before" has \
	'"labels":\["T"\],"properties":{"v":1}},{"op":"setProperty","entity":"node","id":[0-9]*,"key":"v","value":2,"old":1},{"op":"setProperty","entity":"node","id":[0-9]*,"key":"v","value":3,"old":2}\]' tx.ndjson

# resuming from the bookmark before the kill, on a surviving node: the
# dead leader's entries keep their old values
it_get "$F" "/changes?from=$B0&until=$B1"
echo "$IT_BODY" >"$IT_DIR/resumed.ndjson"
check_old resumed.ndjson

# the native protocol's filters (ChangesRequest labels / types, through
# the shell) are the HTTP stream's
native_ops() { # FILTER
	"$LORA" -q -a "$IT_NET.$F:4748" --route any -c ":changes $B0 $B1 $1" >"$IT_DIR/nf.out" 2>&1
	ops "$(cat "$IT_DIR/nf.out")"
}
it_check "native labels=R: as over HTTP" \
	test "$(native_ops labels=R)" = "setProperty setProperty removeProperty addLabel removeLabel deleteNode "
it_check "native types=KNOWS: as over HTTP" \
	test "$(native_ops types=KNOWS)" = "createRelationship setProperty deleteRelationship "
it_done
