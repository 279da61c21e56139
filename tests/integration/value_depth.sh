#!/usr/bin/env bash
# The value nesting limit (LORA_VALUE_DEPTH_MAX, 64 lists and maps) on real
# nodes (127.0.62.1-3): a parameter nested 64 deep passes and one nested 65
# deep is refused with LORA_INVALID_PARAMS, over HTTP (JSON) and over the
# native protocol (native_depth writes the request bytes itself); 20,000
# levels are refused without a crash; a result nested thousands deep is an
# error; writes through a follower carry a 64-deep parameter to the leader
# and its result back, and every node applies them alike; vector
# coordinates that do not fit their type are refused. After each, the node answers the next query, and the cluster
# restarts (replaying its log) with identical replicas.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.62 "$1"
NATIVE=$2
INJECT=$3
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

# nest N OPEN CLOSE INNER: INNER inside N copies of OPEN ... CLOSE.
nest() {
	local o c
	o=$(printf "%$1s" '' | sed "s/ /$2/g")
	c=$(printf "%$1s" '' | sed "s/ /$3/g")
	printf '%s%s%s' "$o" "$4" "$c"
}
list() { nest "$1" '[' ']' 1; }
map() { nest "$1" '{"k":' '}' 1; }
brackets() { tr -cd '[' <<<"$1" | wc -c; }

# serves ID: the node answers a query (after whatever came before).
serves() {
	it_query "$1" '{"query":"RETURN 1 AS one"}'
	[ "$IT_STATUS" = 200 ] && grep -q '"one":1' <<<"$IT_BODY"
}
# refused STATUS CODE: the last answer was an error with that code.
refused() {
	[ "$IT_STATUS" = "$1" ] && grep -q "\"code\":\"$2\"" <<<"$IT_BODY"
}
# native ID DEPTH SHAPE QUERY: native_depth's answer line.
native() { "$NATIVE" "$IT_NET.$1:4748" "$2" "$3" "$4"; }

ret='{"query":"RETURN $p AS p","params":{"p":'

# -- HTTP: parameters at the limit pass, one past is refused
it_query "$F" "$ret$(list 64)}}"
it_check "HTTP: a parameter 64 lists deep is accepted" [ "$IT_STATUS" = 200 ]
it_check "HTTP: ... and comes back 64 lists deep" [ "$(brackets "$IT_BODY")" = 66 ]
it_query "$F" "$ret$(list 65)}}"
it_check "HTTP: 65 lists deep is refused (422 LORA_INVALID_PARAMS)" refused 422 LORA_INVALID_PARAMS
it_check "HTTP: ... naming the limit" grep -q 'deeper than 64' <<<"$IT_BODY"
it_query "$F" "$ret$(map 64)}}"
it_check "HTTP: a parameter 64 maps deep is accepted" [ "$IT_STATUS" = 200 ]
it_query "$F" "$ret$(map 65)}}"
it_check "HTTP: 65 maps deep is refused" refused 422 LORA_INVALID_PARAMS
it_query "$F" "$ret$(list 20000)}}"
it_check "HTTP: 20,000 lists deep is refused (4xx)" [ "${IT_STATUS:0:1}" = 4 ]
it_check "HTTP: node $F still serves" serves "$F"

# -- a result the engine nests thousands deep: an error, never a crash
it_query "$F" '{"query":"RETURN reduce(a = [], i IN range(1, 10000) | [a]) AS s"}'
it_check "HTTP: reduce(... [a]) 10,000 deep is an error ($IT_STATUS)" [ "${IT_STATUS:0:1}" = 4 ]
it_check "HTTP: ... with a code" grep -q '"code":"LORA_' <<<"$IT_BODY"
it_check "HTTP: node $F still serves after it" serves "$F"

# -- numbers: a float stays a float; a vector value must fit its type
it_query "$F" '{"query":"RETURN $p AS p","params":{"p":1e300}}'
it_check "HTTP: a float parameter 1e300 stays a float" grep -q '"p":1[.0-9]*e+\?300[,}]' <<<"$IT_BODY"
vec() { echo "{\"query\":\"RETURN \$v AS v\",\"params\":{\"v\":{\"kind\":\"vector\",\"coordinateType\":\"$1\",\"values\":[$2]}}}"; }
it_query "$F" "$(vec INTEGER64 1e300)"
it_check "HTTP: an INTEGER64 vector value 1e300 is refused" refused 422 LORA_INVALID_PARAMS
it_query "$F" "$(vec INTEGER64 -9.3e18)"
it_check "HTTP: an INTEGER64 vector value -9.3e18 is refused" refused 422 LORA_INVALID_PARAMS
it_query "$F" "$(vec INTEGER64 2.5)"
it_check "HTTP: an INTEGER64 vector value 2.5 is refused" refused 422 LORA_INVALID_PARAMS
it_query "$F" "$(vec FLOAT32 1e300)"
it_check "HTTP: a FLOAT32 vector value 1e300 is refused" refused 422 LORA_INVALID_PARAMS
it_query "$F" "$(vec INTEGER64 '3.0, -4')"
it_check "HTTP: INTEGER64 values 3.0 and -4 are taken" grep -q '"values":\[3,-4\]' <<<"$IT_BODY"

# -- native protocol: the same limit, and bytes that do not decode
out=$(native "$F" 64 list 'RETURN $p AS p')
it_check "native: a parameter 64 lists deep is accepted and returned ($out)" [ "$out" = "ok 1 64" ]
out=$(native "$F" 65 list 'RETURN $p AS p')
it_check "native: 65 lists deep is refused ($out)" grep -q '^error LORA_INVALID_PARAMS .*deeper than 64' <<<"$out"
out=$(native "$F" 64 map 'RETURN $p AS p')
it_check "native: 64 maps deep is accepted ($out)" [ "$out" = "ok 1 64" ]
out=$(native "$F" 65 map 'RETURN $p AS p')
it_check "native: 65 maps deep is refused" grep -q '^error LORA_INVALID_PARAMS' <<<"$out"
out=$(native "$F" 20000 list 'RETURN 1 AS one')
it_check "native: 20,000 lists deep is refused ($out)" grep -q '^error LORA_INVALID_PARAMS' <<<"$out"
out=$(native "$F" 3 cut 'RETURN 1 AS one')
it_check "native: a truncated request is refused ($out)" grep -q '^error LORA_INVALID request does not decode' <<<"$out"
out=$(native "$F" 0 list 'RETURN reduce(a = [], i IN range(1, 10000) | [a]) AS s')
it_check "native: reduce(... [a]) 10,000 deep is an error ($out)" grep -q '^error LORA_' <<<"$out"
it_check "native: node $F still serves" serves "$F"

# -- writes through a follower (HTTP proxy, native forward) with a 64-deep
#    parameter and result; a property is never nested (Cypher stores no
#    list of lists), and a deeper parameter never reaches the log
q='CREATE (n:Deep {k: 1}) RETURN $p AS p'
it_query "$F" "{\"query\":\"$q\",\"params\":{\"p\":$(list 64)}}"
it_check "HTTP write through follower $F: 64 deep goes and comes back" bash -c '[ "$1" = 200 ] && [ "$(tr -cd "[" <<<"$2" | wc -c)" = 66 ]' _ "$IT_STATUS" "$IT_BODY"
out=$(native "$F" 64 list 'CREATE (n:Deep {k: 2}) RETURN $p AS p')
it_check "native write through follower $F: 64 deep goes and comes back ($out)" [ "$out" = "ok 1 64" ]
it_query "$F" "{\"query\":\"CREATE (n:Deep {k: 3}) RETURN \$p AS p\",\"params\":{\"p\":$(list 65)}}"
it_check "HTTP write with a parameter 65 deep is refused" refused 422 LORA_INVALID_PARAMS
out=$(native "$F" 65 list 'CREATE (n:Deep {k: 3}) RETURN $p AS p')
it_check "native write with a parameter 65 deep is refused" grep -q '^error LORA_INVALID_PARAMS' <<<"$out"
it_query "$L" '{"query":"CREATE (n:Deep {k: 4, p: reduce(a = [], i IN range(1, 70) | [a])})"}'
it_check "a write the engine nests 70 deep is refused ($IT_STATUS)" [ "${IT_STATUS:0:1}" = 4 ]
it_query "$L" '{"query":"CREATE (n:Deep {k: 5, p: [1, 2]}) RETURN n.k AS k"}'
B=$(it_field bookmark)
it_check "the leader takes the next write (bookmark $B)" [ "$IT_STATUS" = 200 ]
readback='{"query":"MATCH (n:Deep) RETURN n.k AS k ORDER BY k","consistency":"bookmark","bookmark":"'$B'"}'
keys() { [ "$(grep -o '"k":[0-9]' <<<"$IT_BODY" | tr -d '\n')" = '"k":1"k":2"k":5' ]; }
for i in 1 2 3; do
	it_query "$i" "$readback"
	it_check "node $i has Deep nodes 1, 2 and 5, no others" keys
done
D1=$(it_digest 1 "$B")
it_check "the replicas are identical at $B" bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && [ "$1" = "$3" ]' _ "$D1" "$(it_digest 2 "$B")" "$(it_digest 3 "$B")"

# -- restart: the log replays, the nodes serve, the data is there
for i in 1 2 3; do it_stop "$i" || it_fail "node $i stopped with an error"; done
it_start_all 3 "$P" || it_done
for i in 1 2 3; do
	it_query "$i" "$readback"
	it_check "after restart node $i has Deep nodes 1, 2 and 5" keys
done

# -- a log holding entries that must be rejected: no crash, on any restart
it_stop 1 && it_stop 2 && it_stop 3 || it_fail "the cluster stopped with an error"
it_start 9 "9@$IT_NET.9:4749" || it_done
it_query 9 '{"query":"CREATE (:Before)"}'
it_check "node 9 takes a write" [ "$IT_STATUS" = 200 ]
it_stop 9 || it_fail "node 9 stopped with an error"
LOG9="$IT_DIR/n9/raftlog"
i1=$("$INJECT" "$LOG9" 1000 20000) && i2=$("$INJECT" "$LOG9" 1001 garbage) &&
	i3=$("$INJECT" "$LOG9" 1002 64) && i4=$("$INJECT" "$LOG9" 1003 65)
it_check "entries $i1 (20,000 deep), $i2 (garbage), $i3 (64 deep), $i4 (65 deep) injected" [ -n "$i4" ]
count9() {
	it_query 9 '{"query":"MATCH (n) RETURN count(n) AS c, collect(id(n)) AS ids","consistency":"linearizable"}'
	grep -q '"c":2,' <<<"$IT_BODY" && grep -q '1002' <<<"$IT_BODY"
}
deep9() {
	it_query 9 '{"query":"MATCH (n) WHERE id(n) = 1002 RETURN n.p AS p","consistency":"linearizable"}'
	[ "$(brackets "$IT_BODY")" = 66 ]
}
for round in 1 2; do
	it_start 9 "9@$IT_NET.9:4749" || it_done
	it_check "round $round: node 9 leads" [ "$(it_leader 9)" = 9 ]
	it_check "round $round: node 9 serves with the entries applied or rejected" count9
	it_check "round $round: the 64-deep value reads back" deep9
	it_stop 9 || it_fail "node 9 stopped with an error"
done
it_check "the log says why entries $i1, $i2 and $i4 were rejected" \
	bash -c 'grep -q "entry $2 rejected: a property value nests deeper than 64" "$1" && grep -q "entry $3 rejected: mutation batch does not decode" "$1" && grep -q "entry $4 rejected: a property value nests deeper than 64" "$1"' _ "$IT_DIR/n9.log" "$i1" "$i2" "$i4"
it_done
