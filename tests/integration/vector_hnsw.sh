#!/usr/bin/env bash
# The HNSW vector index on three real nodes (127.0.190.1-3): built on
# apply on every node, the same top 10 on all three (and the exact top 10:
# 3,000 vectors, 8-d, easy for the graph), after deletes and updates, after
# a follower restarts (its graph loaded from its column family), and on a
# follower that was down while the leader compacted its log past it (it
# gets a snapshot: the checkpoint carries the graph).
. "$(dirname "$0")/lib.sh"
it_setup 127.0.190 "$1"

FLAGS="--checkpoint-entries 20 --log-keep-entries 5"
it_start_all 3 "$(it_peers 3)" $FLAGS
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1)) # a follower
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))

VEC='vector([sin(i), cos(i * 1.7), sin(i * 0.3), cos(i * 2.9), (i % 13) / 13.0, sin(i * 5.1), cos(i * 0.11), (i % 7) / 7.0], 8, FLOAT32)'
it_query "$L" '{"query":"CREATE VECTOR INDEX emb FOR (d:Doc) ON (d.v) OPTIONS {indexConfig: {`vector.dimensions`: 8, `vector.similarity_function`: '"'cosine'"', `hnsw.m`: 12}}"}'
it_check "index created" test "$IT_STATUS" = 200
for b in 0 1 2; do
	it_query "$L" '{"query":"UNWIND range('$((b * 1000))', '$((b * 1000 + 999))') AS i CREATE (:Doc {i: i, v: '"$VEC"'})","requestId":"v'$b'"}'
	it_check "batch $b stored" test "$IT_STATUS" = 200
done
it_query "$L" '{"query":"MATCH (d:Doc) WHERE d.i % 5 = 0 DETACH DELETE d"}'
it_query "$L" '{"query":"MATCH (d:Doc) WHERE d.i % 5 = 1 WITH d, d.i + 5000 AS i SET d.v = '"$VEC"'"}'
it_query "$L" '{"query":"MATCH (d:Doc) WHERE d.i % 11 = 2 REMOVE d:Doc"}'
B=$(it_field bookmark)
it_check "deletes and updates stored" test "$IT_STATUS" = 200

# the top 10 of query t on node n, as one line
top() {
	local q="[$(awk -v t="$2" 'BEGIN { printf "%f, %f, %f, %f, %f, %f, %f, %f", sin(t), cos(t * 1.3), sin(t * 0.5), cos(t), (t % 13) / 13, sin(t * 3), cos(t * 0.2), (t % 7) / 7 }')]"
	it_query "$1" '{"query":"CALL db.index.vector.queryNodes('"'emb'"', 10, '"$q$3"') YIELD node RETURN node.i","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -o '"rows":\[.*\]\]' || echo "node $1: $IT_STATUS $IT_BODY" >&2
}
same_everywhere() { # the graph's answers on every live node, = exact
	local t a e n
	for t in 1 2 3 4 5 6 7 8; do
		e=$(top "$L" "$t" ", {exact: true}")
		[ -n "$e" ] || return 1
		for n in "$@"; do
			a=$(top "$n" "$t" "")
			[ "$a" = "$e" ] || { echo "query $t on node $n: $a, exact: $e"; return 1; }
		done
	done
}
it_check "the graph's top 10 = the exact top 10, on all three nodes" same_everywhere 1 2 3

# a vector parameter in base64 (FLOAT32 little-endian bytes of 0.5, -0.25,
# 1, 2, -3, 0.125, 4, -1; docs/node.md "Values"), written through a
# follower: stored exactly, and the index's nearest to itself everywhere
B64='AAAAPwAAgL4AAIA/AAAAQAAAQMAAAAA+AACAQAAAgL8='
it_query "$F" '{"query":"CREATE (:Doc {i: 99999, v: $v})","params":{"v":{"kind":"vector","coordinateType":"FLOAT32","dimension":8,"base64":"'"$B64"'"}},"requestId":"b64"}'
it_check "a base64 FLOAT32 vector is written through follower $F" test "$IT_STATUS" = 200
B=$(it_field bookmark)
it_query "$G" '{"query":"MATCH (d:Doc {i: 99999}) RETURN d.v AS v","consistency":"bookmark","bookmark":'"$B"'}'
it_check "... and reads back as those 8 FLOAT32 values" grep -qF '"coordinateType":"FLOAT32","values":[0.5,-0.25,1.0,2.0,-3.0,0.125,4.0,-1.0]' <<<"$IT_BODY"
nearest() {
	it_query "$1" '{"query":"CALL db.index.vector.queryNodes('"'emb'"', 1, $v) YIELD node RETURN node.i AS i","params":{"v":{"kind":"vector","coordinateType":"FLOAT32","base64":"'"$B64"'"}},"consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	grep -qF '"rows":[[99999]]' <<<"$IT_BODY" || { echo "node $1: $IT_STATUS $IT_BODY"; return 1; }
}
for n in 1 2 3; do
	it_check "node $n: the base64 vector's nearest neighbour is itself" nearest "$n"
done
it_query "$L" '{"query":"RETURN $v AS v","params":{"v":{"kind":"vector","coordinateType":"FLOAT32","base64":"AQID"}}}'
it_check "3 bytes are not FLOAT32 coordinates: 422 LORA_INVALID_PARAMS" bash -c '[ "$1" = 422 ] && grep -q LORA_INVALID_PARAMS <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_query "$L" '{"query":"RETURN $v AS v","params":{"v":{"kind":"vector","coordinateType":"FLOAT32","base64":"AADAfw=="}}}'
it_check "a NaN coordinate: 422 LORA_INVALID_PARAMS" bash -c '[ "$1" = 422 ] && grep -q LORA_INVALID_PARAMS <<<"$2"' _ "$IT_STATUS" "$IT_BODY"

it_stop "$F"
it_start "$F" "$(it_peers 3)" $FLAGS
it_check "after node $F restarts: the same answers" same_everywhere "$F"

# node G down while the leader writes and compacts past it: a snapshot
it_stop "$G"
for b in 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
	it_query "$L" '{"query":"UNWIND range('$((b * 100))', '$((b * 100 + 99))') AS j WITH j + 10000 AS i CREATE (:Doc {i: i, v: '"$VEC"'})"}'
done
B=$(it_field bookmark)
it_wait 30 grep -q "log compacted up to" "$IT_DIR/n$L.log"
it_start "$G" "$(it_peers 3)" $FLAGS
it_wait 60 grep -q "installed snapshot" "$IT_DIR/n$G.log"
it_check "node $G installed a snapshot" grep -q "installed snapshot" "$IT_DIR/n$G.log"
it_check "after the snapshot: the same answers on all three" same_everywhere 1 2 3
it_done
