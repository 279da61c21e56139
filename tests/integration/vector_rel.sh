#!/usr/bin/env bash
# A relationship vector index (CREATE VECTOR INDEX ... FOR ()-[e:SIM]-())
# on three real nodes (127.1.60.1-3): created over 5,000 existing
# relationships, it is built in the background (five log steps of 1,024
# at 8-d and the default ef_construction) and ends
# ONLINE on every node; db.index.vector.queryRelationships gives the same
# top 10 on all three, equal to the exact top 10, before and after
# deletes, vector changes and a DETACH DELETE of an end node, with equal
# graph checksums at one applied index; after a follower restarts (its
# graph loaded from its column family) and on a follower that was down
# while the leader compacted its log past it (a snapshot install carries
# the graph; the 2,000 relationships written meanwhile are on every node).
# Every approximate answer is shown to come from the graph
# (lora_vector_searches_total{path="graph"} grows by one, "exact" not).
. "$(dirname "$0")/lib.sh"
it_setup 127.1.60 "$1"

FLAGS="--checkpoint-entries 20 --log-keep-entries 5"
it_start_all 3 "$(it_peers 3)" $FLAGS
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1)) # a follower
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))

VEC='vector([sin(i), cos(i * 1.7), sin(i * 0.3), cos(i * 2.9), (i % 13) / 13.0, sin(i * 5.1), cos(i * 0.11), (i % 7) / 7.0], 8, FLOAT32)'
it_query "$L" '{"query":"UNWIND range(0, 9) AS k CREATE (:N {k: k})"}'
it_check "nodes stored" test "$IT_STATUS" = 200
# batch B of relationships j * 10 + k from node k to node k + 1 (mod 10),
# 10 x J a batch (J 100 unless given)
rels() {
	local j=${3:-100}
	it_query "$L" '{"query":"MATCH (a:N), (b:N) WHERE b.k = (a.k + 1) % 10 UNWIND range('$(($1 * j))', '$(($1 * j + j - 1))') AS j WITH a, b, j * 10 + a.k AS i CREATE (a)-[:'"$2"' {i: i, v: '"$VEC"'}]->(b)","requestId":"r'$1$2'"}'
}
for b in 0 1 2 3 4; do
	rels "$b" SIM
	it_check "batch $b stored" test "$IT_STATUS" = 200
done
rels 9 OTHER
it_check "relationships of another type stored" test "$IT_STATUS" = 200
it_query "$L" '{"query":"CREATE VECTOR INDEX rv FOR ()-[e:SIM]-() ON (e.v) OPTIONS {indexConfig: {`vector.dimensions`: 8, `vector.similarity_function`: '"'cosine'"'}}"}'
it_check "index created" test "$IT_STATUS" = 200
B=$(it_field bookmark)

# state and populationPercent of rv on node n, as "TYPE STATE PERCENT"
state() { # (the only index)
	it_query "$1" '{"query":"SHOW INDEXES","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -o '"RELATIONSHIP",\["SIM"\],\["v"\],"\(ONLINE\|POPULATING\)",[0-9.]*' | tr -d '"' | tr , ' ' | grep . ||
		echo "node $1: $IT_STATUS $IT_BODY" >&2
}
echo "# right after CREATE: $(state "$L")"
online() { case "$(state "$1")" in "RELATIONSHIP [SIM] [v] ONLINE 100"*) ;; *) return 1 ;; esac; }
for n in 1 2 3; do
	it_wait 240 online "$n"
	it_check "node $n: ONLINE, entityType RELATIONSHIP" online "$n"
done

# the top 10 of query t on node n, as one line
top() {
	local q="[$(awk -v t="$2" 'BEGIN { printf "%f, %f, %f, %f, %f, %f, %f, %f", sin(t), cos(t * 1.3), sin(t * 0.5), cos(t), (t % 13) / 13, sin(t * 3), cos(t * 0.2), (t % 7) / 7 }')]"
	it_query "$1" '{"query":"CALL db.index.vector.queryRelationships('"'rv'"', 10, '"$q$3"') YIELD relationship RETURN relationship.i","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -o '"rows":\[.*\]\]' || echo "node $1: $IT_STATUS $IT_BODY" >&2
}
# node n's vector queries answered so far from the graph and by the exact
# scan, as "GRAPH EXACT" (lora_vector_searches_total in /metrics)
searches() {
	it_get "$1" /metrics
	echo "$IT_BODY" | awk '/^lora_vector_searches_total\{path="graph"\}/ { g = $2 }
		/^lora_vector_searches_total\{path="exact"\}/ { e = $2 }
		END { if (g != "" && e != "") print g, e }'
}
# the graph's answers on every live node, = exact; each one came from the
# graph (its graph count grew by one, its exact count did not)
same_everywhere() {
	local t a e n s0 s1
	for t in 1 2 3 4 5 6 7 8; do
		e=$(top "$L" "$t" ", {exact: true}")
		[ -n "$e" ] || return 1
		for n in "$@"; do
			s0=$(searches "$n")
			a=$(top "$n" "$t" "")
			s1=$(searches "$n")
			[ "$a" = "$e" ] || { echo "query $t on node $n: $a, exact: $e"; return 1; }
			[ -n "$s0" ] && [ -n "$s1" ] || { echo "node $n: no lora_vector_searches_total in /metrics"; return 1; }
			[ "$(echo "$s0 $s1" | awk '{ print $3 - $1, $4 - $2 }')" = "1 0" ] ||
				{ echo "query $t on node $n: not answered from the graph (graph, exact searches before: $s0, after: $s1)"; return 1; }
		done
	done
}
it_check "after the build: the graph's top 10 = the exact top 10, on all three" same_everywhere 1 2 3

it_query "$L" '{"query":"MATCH ()-[e:SIM]->() WHERE e.i % 5 = 0 DELETE e"}'
it_check "deletes stored" test "$IT_STATUS" = 200
it_query "$L" '{"query":"MATCH ()-[e:SIM]->() WHERE e.i % 5 = 1 WITH e, e.i + 7000 AS i SET e.v = '"$VEC"'"}'
it_check "vector changes stored" test "$IT_STATUS" = 200
it_query "$L" '{"query":"MATCH (n:N {k: 3}) DETACH DELETE n"}'
it_check "DETACH DELETE stored" test "$IT_STATUS" = 200
B=$(it_field bookmark)
it_check "after the writes: the same answers on all three, = exact" same_everywhere 1 2 3
no_stray() { # none of 4,000 candidates is deleted or of another type
	it_query "$L" '{"query":"CALL db.index.vector.queryRelationships('"'rv'"', 4000, [1, 0, 0, 0, 0, 0, 0, 0]) YIELD relationship WITH relationship AS e WHERE e.i % 5 = 0 OR e.i % 10 IN [2, 3] OR type(e) <> '"'SIM'"' RETURN count(*) AS c","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -q '"rows":\[\[0\]\]' || { echo "$IT_STATUS $IT_BODY"; return 1; }
}
it_check "no deleted or other-type relationship comes back" no_stray

it_get "$L" /cluster/status
idx=$(echo "$IT_BODY" | grep -o '"appliedIndex":[0-9]*' | head -1 | cut -d: -f2)
it_check "equal hnsw graph checksums on three nodes at one applied index" \
	it_hnsw_same "$idx"

it_stop "$F"
it_start "$F" "$(it_peers 3)" $FLAGS
it_check "after node $F restarts: the same answers" same_everywhere "$F"

# node G down while the leader writes and compacts past it: a snapshot
it_stop "$G"
for b in $(seq 100 124); do
	rels "$b" SIM 10
	it_check "batch $b stored while node $G is down" test "$IT_STATUS" = 200
done
B=$(it_field bookmark)
# 25 batches x 10 x 8 pairs of nodes (node k 3 is gone): 2,000, i >= 10000
late_count() {
	it_query "$1" '{"query":"MATCH ()-[e:SIM]->() WHERE e.i >= 10000 RETURN count(*)","consistency":"bookmark","bookmark":'"$B"',"format":"rowArrays"}'
	echo "$IT_BODY" | grep -q '"rows":\[\[2000\]\]' || { echo "node $1: $IT_STATUS $IT_BODY"; return 1; }
}
it_wait 30 grep -q "log compacted up to" "$IT_DIR/n$L.log"
it_start "$G" "$(it_peers 3)" $FLAGS
it_wait 60 grep -q "installed snapshot" "$IT_DIR/n$G.log"
it_check "node $G installed a snapshot" grep -q "installed snapshot" "$IT_DIR/n$G.log"
for n in 1 2 3; do
	it_check "node $n holds the 2,000 relationships written while node $G was down" late_count "$n"
done
it_check "after the snapshot: the same answers on all three" same_everywhere 1 2 3
it_done
