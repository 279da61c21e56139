#!/usr/bin/env bash
# LOAD CSV through real nodes (127.0.66.1-3) sharing one import directory:
# a read that streams a file from a follower, a LOAD CSV ... CREATE sent
# to a follower and proxied to the leader (counts right on every node),
# the refusals (a path leaving the import directory, a missing file, a
# bad row with its line), and a rows/s figure for the load.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.66 "$1"
IMP="$IT_DIR/import"
mkdir -p "$IMP"
ROWS=${LOAD_ROWS:-20000}
{
	echo "id,name,note"
	for i in $(seq 1 "$ROWS"); do echo "$i,\"p$i\",\"a, \"\"quoted\"\" note\""; done
} >"$IMP/people.csv"
printf 'a,b\n"x"y,z\n' >"$IMP/bad.csv"
echo secret >"$IT_DIR/secret.csv"
P=$(it_peers 3)
it_start_all 3 "$P" --import-dir "$IMP" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

it_query "$F" '{"query":"LOAD CSV WITH HEADERS FROM '"'"'file:///people.csv'"'"' AS r RETURN count(r) AS n, max(toInteger(r.id)) AS m, min(r.note) AS note","format":"rowArrays"}'
it_check "a follower reads the file: $ROWS rows" grep -q "\"rows\":\[\[$ROWS,$ROWS,\"a, \\\\\"quoted\\\\\" note\"\]\]" <<<"$IT_BODY"

t0=$(date +%s%N)
it_query "$F" '{"query":"LOAD CSV WITH HEADERS FROM '"'"'file:///people.csv'"'"' AS r CREATE (:P {id: toInteger(r.id), name: r.name})"}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_check "LOAD CSV ... CREATE through a follower answers 200" [ "$IT_STATUS" = 200 ]
it_log "bench: LOAD CSV + CREATE of $ROWS rows in $ms ms: $((ROWS * 1000 / (ms ? ms : 1))) rows/s (3 nodes, one statement)"
for id in 1 2 3; do
	it_query "$id" '{"query":"MATCH (p:P) RETURN count(p) AS c, sum(p.id) AS s","format":"rowArrays","consistency":"linearizable"}'
	it_check "node $id counts $ROWS P nodes" grep -q "\"rows\":\[\[$ROWS,$((ROWS * (ROWS + 1) / 2))\]\]" <<<"$IT_BODY"
done

it_query "$L" '{"query":"LOAD CSV FROM '"'"'file:///../secret.csv'"'"' AS r RETURN r"}'
it_check "a path leaving the import dir is refused" grep -q 'outside the import directory' <<<"$IT_BODY"
it_query "$L" '{"query":"LOAD CSV FROM '"'"'file:///nope.csv'"'"' AS r RETURN r"}'
it_check "a missing file is LORA_NOT_FOUND" grep -q 'not found' <<<"$IT_BODY"
it_query "$L" '{"query":"LOAD CSV FROM '"'"'file:///bad.csv'"'"' AS r CREATE (:Bad)"}'
it_check "a bad row names file and line" grep -q 'bad.csv line 2' <<<"$IT_BODY"
it_query "$L" '{"query":"MATCH (b:Bad) RETURN count(b) AS c","format":"rowArrays"}'
it_check "a failed load writes nothing" grep -q '"rows":\[\[0\]\]' <<<"$IT_BODY"
it_done
