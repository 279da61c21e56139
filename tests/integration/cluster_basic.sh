#!/usr/bin/env bash
# Three real nodes on 127.0.1.1-3: writes through a follower, reads converge,
# bookmark and linearizable reads, leadership transfer, redirect, and the
# HTTP error shapes.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.1 "$1"
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))  # a follower
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))

# -- write through a follower, forwarded transparently
it_query $F '{"query":"CREATE (p:Person {name: $n, age: 36}) RETURN p.name AS name","params":{"n":"Ada"},"requestId":"w1"}'
it_check "write through follower $F answers 200" [ "$IT_STATUS" = 200 ]
it_check "write returns its row" grep -q '"rows":\[{"name":"Ada"}\]' <<<"$IT_BODY"
BM=$(it_field bookmark)
it_check "write returns a bookmark ($BM)" [ -n "$BM" ]

# -- bookmark read on another node sees the write
it_query $G "{\"query\":\"MATCH (p:Person) RETURN p.name AS name\",\"consistency\":\"bookmark\",\"bookmark\":\"$BM\"}"
it_check "bookmark read on node $G sees own write" grep -q '"name":"Ada"' <<<"$IT_BODY"

# -- reads converge on all nodes (local reads)
for i in 1 2 3; do
	seen=0
	for t in $(seq 1 200); do
		it_query $i '{"query":"MATCH (p:Person) RETURN count(p) AS c","format":"rowArrays"}'
		grep -q '"rows":\[\[1\]\]' <<<"$IT_BODY" && { seen=1; break; }
		sleep 0.1
	done
	it_check "local read on node $i converges" [ $seen = 1 ]
done

# -- retried request id is applied once
it_query $G '{"query":"CREATE (p:Person {name: $n, age: 36}) RETURN p.name AS name","params":{"n":"Ada"},"requestId":"w1"}'
it_check "retry with same requestId answers 200" [ "$IT_STATUS" = 200 ]
it_query $L '{"query":"MATCH (p:Person) RETURN count(p) AS c","format":"rowArrays","consistency":"linearizable"}'
it_check "linearizable read; retried write applied once" grep -q '"rows":\[\[1\]\]' <<<"$IT_BODY"

# -- group commit: concurrent writes through all nodes
pids=""
for k in $(seq 1 30); do
	curl -s -m 20 -o /dev/null -X POST "$IT_SCHEME://$IT_NET.$((k % 3 + 1)):4747/query" \
		-d "{\"query\":\"CREATE (:Item {k: $k})\"}" &
	pids="$pids $!"
done
wait $pids
it_query $F '{"query":"MATCH (i:Item) RETURN count(i) AS c","format":"rowArrays","consistency":"linearizable"}'
it_check "30 concurrent writes all applied (linearizable read on follower)" grep -q '"rows":\[\[30\]\]' <<<"$IT_BODY"

# -- redirect instead of forwarding (leadership may have moved meanwhile)
L=$(it_leader 1)
F=$((L % 3 + 1))
it_query $F '{"query":"CREATE (:X)","redirect":true}'
it_check "redirect: 307 with LORA_NOT_LEADER" [ "$IT_STATUS" = 307 ]
it_check "redirect names the leader" grep -q "\"leader\":\"$IT_SCHEME://$IT_NET.$L:4747\"" <<<"$IT_BODY"

# -- formats
it_query $L '{"query":"MATCH (p:Person) RETURN p","format":"graph"}'
it_check "graph format lists the node" grep -q '"graph":{"nodes":\[{"id":[0-9]*,"kind":"node","labels":\["Person"\]' <<<"$IT_BODY"

# -- HTTP error shapes
it_query $F '{"query": '
it_check "malformed JSON: 400" [ "$IT_STATUS" = 400 ]
it_check "malformed JSON: error shape" grep -q '"error":{"code":"LORA_INVALID","message":"malformed JSON' <<<"$IT_BODY"
it_query $F '{"query":"MATCH (n RETURN n"}'
it_check "parse error: 400 LORA_PARSE" grep -q '"code":"LORA_PARSE"' <<<"$IT_BODY"
it_check "parse error: position" grep -q '"position":{"line":1,"column":[0-9]*}' <<<"$IT_BODY"
it_query $F '{"query":"RETURN 1","colour":"red"}'
it_check "unknown field: 400 naming it" grep -q 'unknown field \\"colour\\"' <<<"$IT_BODY"
# unknown endpoints and oversized bodies: our JSON, not nng's HTML page
SHAPE='^{"error":{"code":"[A-Z_]*","message":"[^"]*","category":"client"}}$'
out=$(curl -s -m 20 -D "$IT_DIR/hdr" -w '\n%{http_code}' "$IT_SCHEME://$IT_NET.$F:4747/no/such/endpoint")
it_check "unknown endpoint: 404" [ "${out##*$'\n'}" = 404 ]
it_check "unknown endpoint: application/json" grep -qi '^Content-Type: application/json' "$IT_DIR/hdr"
it_check "unknown endpoint: LORA_NOT_FOUND error shape" grep -q "$SHAPE" <<<"${out%$'\n'*}"
grep -q '"code":"LORA_NOT_FOUND"' <<<"$out" || it_fail "unknown endpoint: code is not LORA_NOT_FOUND: $out"
out=$(curl -s -m 20 -D "$IT_DIR/hdr" -w '\n%{http_code}' -X DELETE "$IT_SCHEME://$IT_NET.$F:4747/query")
it_check "wrong method: 405" [ "${out##*$'\n'}" = 405 ]
it_check "wrong method: JSON error shape" grep -q "$SHAPE" <<<"${out%$'\n'*}"
head -c 5000000 /dev/zero | tr '\0' 'a' >"$IT_DIR/big"
for expect in "Expect: 100-continue" "Expect:"; do # curl waits for 100 or not
	out=$(curl -s -m 20 -D "$IT_DIR/hdr" -w '\n%{http_code}' -H "$expect" -X POST \
		"$IT_SCHEME://$IT_NET.$F:4747/query" --data-binary @"$IT_DIR/big")
	it_check "oversized body ($expect): 413" [ "${out##*$'\n'}" = 413 ]
	it_check "oversized body ($expect): application/json" grep -qi '^Content-Type: application/json' "$IT_DIR/hdr"
	it_check "oversized body ($expect): LORA_LIMIT error shape" grep -q "$SHAPE" <<<"${out%$'\n'*}"
	grep -q '"code":"LORA_LIMIT"' <<<"$out" || it_fail "oversized body: code is not LORA_LIMIT: $out"
done
# the connection stays usable after a 413 (the body was read and dropped)
out=$(curl -s -m 20 -H "Expect:" -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" --data-binary @"$IT_DIR/big" \
	--next -s -m 20 "${IT_CURL_TLS[@]}" -u "admin:$IT_ADMIN_PASSWORD" -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" -d '{"query":"RETURN 7 AS x"}')
it_check "a request after a 413 on the same connection answers" grep -q '"rows":\[{"x":7}\]' <<<"$out"
it_query $F '{"query":"RETURN $x","params":[1]}'
it_check "params not an object: 422" [ "$IT_STATUS" = 422 ]
it_get $F /health
it_check "node still serving after bad input" grep -q '"status":"ok"' <<<"$IT_BODY"

# -- status, metrics
it_get $F /cluster/status
it_check "status lists three nodes" [ "$(grep -o '"role":' <<<"$IT_BODY" | wc -l)" = 3 ]
it_get $F /metrics
it_check "metrics expose raft gauges" grep -q '^lora_raft_applied_index [0-9]' <<<"$IT_BODY"

# -- leadership transfer
L=$(it_leader 1)
T=$((L % 3 + 1))
O=$((T % 3 + 1))
it_post $L /cluster/transfer "{\"to\":$T}"
it_check "transfer from $L to $T answers 200" [ "$IT_STATUS" = 200 ]
it_check "node $O sees $T as leader" [ "$(it_leader $O)" = "$T" ]
it_query $O '{"query":"CREATE (:AfterTransfer)"}'
it_check "writes continue after transfer" [ "$IT_STATUS" = 200 ]
# an admin call sent to a follower is passed to the leader
it_post $O /cluster/transfer "{\"to\":$L}"
it_check "transfer asked of follower $O answers 200" [ "$IT_STATUS" = 200 ]
it_check "node $O sees $L as leader again" [ "$(it_leader $O)" = "$L" ]

# -- writes sent to the leader while leadership moves back and forth are
# never refused: one the writer turns down (a transfer in progress, or
# this node no longer leads) goes to whoever leads now, and runs once
L=$(it_leader $O)
T=$((L % 3 + 1))
pids=()
for w in 1 2 3 4 5 6 7 8; do
	(for i in $(seq 1 40); do
		k=$((w * 1000 + i))
		c=$(curl -s -m 20 -o "$IT_DIR/mv.$k" -w '%{http_code}' -X POST \
			"$IT_SCHEME://$IT_NET.$L:4747/query" \
			-d "{\"query\":\"CREATE (:Moving {w: $w, i: $i})\",\"requestId\":\"mv-$w-$i\"}")
		echo "$k $c"
	done >"$IT_DIR/moving.$w") &
	pids+=($!)
done
for k in 1 2 3 4 5 6 7 8; do
	sleep 0.1
	it_post_leader $O /cluster/transfer "{\"to\":$([ $((k % 2)) = 1 ] && echo $T || echo $L)}"
done
wait "${pids[@]}"
# mv_refused: each write not answered 200, with its answer
mv_refused() {
	local k c
	cat "$IT_DIR"/moving.* | while read -r k c; do
		[ "$c" = 200 ] || echo "$k:$c:$(cat "$IT_DIR/mv.$k")"
	done
}
codes=$(cat "$IT_DIR"/moving.* | awk '{print $2}' | sort | uniq -c | tr '\n' ' ')
it_check "320 writes during 8 transfers all answer 200 ($codes $(mv_refused))" \
	[ "$(cat "$IT_DIR"/moving.* | grep -c ' 200$')" = 320 ]
it_post_leader $O /query '{"query":"MATCH (m:Moving) RETURN m.w * 1000 + m.i AS k","consistency":"linearizable","format":"rowArrays"}'
grep -o '\[[0-9]*\]' <<<"$IT_BODY" | tr -d '[]' | sort >"$IT_DIR/mv.applied"
# mv_contract: what each answer promised against what was applied: a
# requestId applies at most once, 200 applied, LORA_UNAVAILABLE not
# (LORA_UNKNOWN_OUTCOME may have); prints each broken promise
mv_contract() {
	local k c
	uniq -d "$IT_DIR/mv.applied" | sed 's/^/applied twice: /'
	cat "$IT_DIR"/moving.* | while read -r k c; do
		if [ "$c" = 200 ]; then
			grep -qx "$k" "$IT_DIR/mv.applied" || echo "200, not applied: $k"
		elif grep -q '"code":"LORA_UNAVAILABLE"' "$IT_DIR/mv.$k"; then
			grep -qx "$k" "$IT_DIR/mv.applied" && echo "UNAVAILABLE, applied: $k"
		fi
	done
}
it_check "each applied once ($(wc -l <"$IT_DIR/mv.applied") applied; $(mv_contract | tr '\n' ' '))" \
	[ -z "$(mv_contract)" ]
it_check "all 320 applied once" [ "$(sort -u "$IT_DIR/mv.applied" | wc -l)" = 320 ]

# -- graceful shutdown of the leader hands over
L=$(it_leader $O)
O=$((L % 3 + 1))
it_stop $L
it_check "leader $L stops with exit 0" [ $? = 0 ]
NL=$(it_leader $O)
it_check "a new leader ($NL) after graceful stop" it_other "$NL" "$L"
it_done
