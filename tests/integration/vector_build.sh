#!/usr/bin/env bash
# The background build of an HNSW vector index over existing nodes, on
# three real nodes (127.0.212.1-3): CREATE VECTOR INDEX answers at once and
# SHOW INDEXES lists the index POPULATING with its populationPercent; the
# leader's build steps (log entries) proceed on an idle cluster and writes
# during the build keep the graph; queries meanwhile answer exactly; then
# ONLINE on every node, the same top 10 on all three (= the exact top 10),
# and equal state digests and equal checksums of the graph bytes (the
# `hnsw` column family, outside the state digest). The index is created
# with ef_construction 1024, so a build step covers 800 of the 24,000
# nodes (storage/hnsw_store.c, HNSW_STEP_WORK): the build takes some 30
# steps of several times the usual cost, and is asserted still POPULATING
# after the exact queries and after the writes.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.212 "$1"

it_start_all 3 "$(it_peers 3)"
L=$(it_leader 1)
it_check "a leader" test -n "$L"

VEC='vector([sin(i), cos(i * 1.7), sin(i * 0.3), cos(i * 2.9), (i % 13) / 13.0, sin(i * 5.1), cos(i * 0.11), (i % 7) / 7.0, sin(i * 0.7), cos(i * 0.05), sin(i * 2.3), (i % 5) / 5.0, cos(i * 3.7), sin(i * 0.9), cos(i * 1.1), (i % 3) / 3.0], 16, FLOAT32)'
for b in $(seq 0 11); do
	it_query "$L" '{"query":"UNWIND range('$((b * 2000))', '$((b * 2000 + 1999))') AS i CREATE (:Doc {i: i, v: '"$VEC"'})","requestId":"b'$b'"}'
	it_check "batch $b stored" test "$IT_STATUS" = 200
done
it_query "$L" '{"query":"CREATE VECTOR INDEX emb FOR (d:Doc) ON (d.v) OPTIONS {indexConfig: {`vector.dimensions`: 16, `vector.similarity_function`: '"'cosine'"', `hnsw.ef_construction`: 1024}}"}'
it_check "index created" test "$IT_STATUS" = 200
B=$(it_field bookmark)

# state and populationPercent of emb on node n, as "STATE PERCENT"
state() { # (the only index)
	it_query "$1" '{"query":"SHOW INDEXES","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -o '"\(ONLINE\|POPULATING\)",[0-9.]*' | tr -d '"' | tr , ' ' | grep . ||
		echo "node $1: $IT_STATUS $IT_BODY" >&2
}
S=$(state "$L")
echo "# right after CREATE: $S"
it_check "POPULATING right after CREATE (24,000 nodes to insert)" \
	sh -c "echo '$S' | grep -q '^POPULATING [0-9.]*$'"

# the top 10 of query t on node n, as one line
top() {
	local q="[$(awk -v t="$2" 'BEGIN { printf "%f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f, %f", sin(t), cos(t * 1.3), sin(t * 0.5), cos(t), (t % 13) / 13, sin(t * 3), cos(t * 0.2), (t % 7) / 7, sin(t), cos(t), sin(t * 2), 0.5, cos(t * 3), sin(t), cos(t), 0.3 }')]"
	it_query "$1" '{"query":"CALL db.index.vector.queryNodes('"'emb'"', 10, '"$q$3"') YIELD node RETURN node.i","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -o '"rows":\[.*\]\]' || echo "node $1: $IT_STATUS $IT_BODY" >&2
}
same_everywhere() { # every live node's answer = the exact answer
	local t a e n
	for t in 1 2 3 4 5; do
		e=$(top "$L" "$t" ", {exact: true}")
		[ -n "$e" ] || return 1
		for n in "$@"; do
			a=$(top "$n" "$t" "")
			[ "$a" = "$e" ] || { echo "query $t on node $n: $a, exact: $e"; return 1; }
		done
	done
}
it_check "during the build: the answers are the exact ones" same_everywhere "$L"
S=$(state "$L")
echo "# after those queries: $S"
it_check "still POPULATING after the exact queries" \
	sh -c "echo '$S' | grep -q '^POPULATING [0-9.]*$'"

# writes during the build: deletes and moves, ahead of and behind the cursor
it_query "$L" '{"query":"MATCH (d:Doc) WHERE d.i % 97 = 3 DETACH DELETE d"}'
it_check "deletes during the build" test "$IT_STATUS" = 200
it_query "$L" '{"query":"MATCH (d:Doc) WHERE d.i % 89 = 4 WITH d, d.i + 50000 AS i SET d.v = '"$VEC"'"}'
it_check "updates during the build" test "$IT_STATUS" = 200
# a failed write has no bookmark: keep the last one, so that the waits
# below still send well-formed requests (the failure is counted above)
B2=$(it_field bookmark)
[ -n "$B2" ] && B=$B2
S=$(state "$L")
echo "# after the writes: $S"
it_check "still POPULATING after the writes (they went in during the build)" \
	sh -c "echo '$S' | grep -q '^POPULATING [0-9.]*$'"

online() { [ "$(state "$1")" = "ONLINE 100.0" ] || [ "$(state "$1")" = "ONLINE 100" ]; }
for n in 1 2 3; do
	it_wait 240 online "$n"
	it_check "node $n: ONLINE, populationPercent 100" online "$n"
done
it_get "$L" /cluster/status
idx=$(echo "$IT_BODY" | grep -o '"appliedIndex":[0-9]*' | head -1 | cut -d: -f2)
it_check "the same answers on all three, = exact" same_everywhere 1 2 3
D1=$(it_digest 1 "$idx")
D2=$(it_digest 2 "$idx")
D3=$(it_digest 3 "$idx")
it_check "equal digests on three nodes at index $idx" sh -c "[ -n '$D1' ] && [ '$D1' = '$D2' ] && [ '$D2' = '$D3' ]"
# "applied checksum" of node n's hnsw CF: the graph bytes depend on the
# build steps (empty entries) a node applied, which the state digest does
# not see, so the three are compared at one applied index
it_check "equal hnsw graph checksums on three nodes at one applied index" \
	it_hnsw_same "$idx"
it_done
