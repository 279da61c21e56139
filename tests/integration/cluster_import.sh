#!/usr/bin/env bash
# A three-node cluster on 127.0.63.1-3 started from a bulk import: a graph
# generated here (awk, seeded; expected answers computed from the same
# rows) goes through lora-import and `deploy/cluster.sh import`; the
# nodes answer counts, a 2-hop, a property lookup and a vector value as
# expected, report equal digests (equal to the one lora-import printed),
# and take a write that replicates and continues the ids. Corrupt inputs
# and a piped one make lora-import fail naming file (and line), leaving
# nothing behind; one with --force over an existing import, and one
# stopped by SIGTERM (after its first progress line), leave that import
# byte for byte as it was.
#
# usage: cluster_import.sh LORAD LORA_IMPORT
. "$(dirname "$0")/lib.sh"
it_setup 127.0.63 "$1"
IMPORT=$2
CLUSTER_SH=$(cd "$(dirname "$0")/../../deploy" && pwd)/cluster.sh
SEED=${LORA_SEED:-$(( $(date +%s) % 100000 + 1 ))}
it_log "seed $SEED (LORA_SEED=$SEED replays it)"
D=$IT_DIR/csv
mkdir -p "$D"

# ---- the graph: 300 persons (every 5th also :Admin), 20 cities, 1200
# KNOWS (no self-loops), one LIVES_IN per person. Expected answers in
# $D/expected as "name value" lines.
awk -v seed="$SEED" -v dir="$D" '
function rnd() { x = (x * 16807) % 2147483647; return x }
BEGIN {
	x = seed % 2147483646 + 1
	np = 300; nc = 20; ne = 1200
	P = dir "/persons.csv"; C = dir "/cities.csv"
	K = dir "/knows.csv"; L = dir "/lives.csv"
	print "id:ID,name,age:int,score:float,emb:vector(4),:LABEL" > P
	for (i = 0; i < np; i++) {
		name = (i % 10 == 0) ? "\"Smith, " i "\"" : "Name " i
		age = 18 + rnd() % 60
		emb = ""
		for (d = 0; d < 4; d++) { # jansson prints 2 as 2.0
			c = sprintf("%.17g", (rnd() % 33 - 16) / 8)
			emb = emb (d ? "," : "") c (c ~ /[.e]/ ? "" : ".0")
		}
		printf "p%d,%s,%d,%s,\"[%s]\",%s\n", i, name, age,
		    (rnd() % 1000) / 4, emb, (i % 5 == 0 ? "Admin" : "") > P
		if (i == 7) { name7 = name; age7 = age }
		if (i == 9) emb9 = emb
	}
	print "cid:ID(City),name" > C
	for (j = 0; j < nc; j++) printf "c%d,City %d\n", j, j > C
	print ":START_ID,:END_ID,since:int" > K
	for (e = 0; e < ne; e++) {
		a = rnd() % np; b = rnd() % np
		if (a == b) b = (b + 1) % np
		printf "p%d,p%d,%d\n", a, b, 1990 + rnd() % 30 > K
		out[a] = out[a] " " b
	}
	print ":START_ID,:END_ID(City)" > L
	for (i = 0; i < np; i++) printf "p%d,c%d\n", i, i % nc > L
	n = split(out[5], mid, " ")
	for (k = 1; k <= n; k++) {
		m = split(out[mid[k]], far, " ")
		for (q = 1; q <= m; q++) seen[far[q]] = 1
	}
	two = 0
	for (f in seen) two++
	E = dir "/expected"
	print "twohop", two > E
	print "name7", name7 > E
	print "age7", age7 > E
	print "emb9", emb9 > E
}'
exp() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$D/expected"; }

# ---- import and install
OUT=$IT_DIR/import
res=$("$IMPORT" --into "$OUT" --nodes=Person "$D/persons.csv" \
	--nodes=City "$D/cities.csv" --relationships=KNOWS "$D/knows.csv" \
	--relationships=LIVES_IN "$D/lives.csv" --index 'Person(id)' \
	--digest 2>"$IT_DIR/import.err")
rc=$?
it_check "lora-import succeeds" [ "$rc" = 0 ]
it_check "lora-import reports 320 nodes and 1500 relationships" \
	grep -q "imported 320 nodes, 1500 relationships, 300 index entries" <<<"$res"
DIGEST=$(sed -n 's/^digest //p' <<<"$res")
it_check "lora-import prints a digest ($DIGEST)" [ -n "$DIGEST" ]
"$IMPORT" --into "$OUT" --nodes "$D/cities.csv" >/dev/null 2>"$IT_DIR/again.err"
it_check "a second import into the same directory is refused" \
	grep -q "already exists (use --force to replace it)" "$IT_DIR/again.err"
"$CLUSTER_SH" import "$OUT" --data-dirs "$IT_DIR/n1,$IT_DIR/n2,$IT_DIR/n3"
installed() {
	local i
	for i in 1 2 3; do
		[ -f "$IT_DIR/n$i/state/CURRENT" ] &&
			[ -f "$IT_DIR/n$i/checkpoints/00000000000000000001/CURRENT" ] ||
			return 1
	done
}
it_check "cluster.sh import installs state and checkpoint into three data dirs" installed
"$CLUSTER_SH" import "$OUT" --data-dirs "$IT_DIR/n1" >/dev/null
it_check "cluster.sh import refuses a data dir that holds data" [ $? = 1 ]

# ---- the cluster
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER

q() { it_query "$1" "{\"query\":\"$2\",\"format\":\"rowArrays\"}"; }
for i in 1 2 3; do
	q $i 'MATCH (p:Person) RETURN count(p)'
	it_check "node $i: 300 persons" grep -q '"rows":\[\[300\]\]' <<<"$IT_BODY"
	q $i 'MATCH (a:Admin) RETURN count(a)'
	it_check "node $i: 60 admins" grep -q '"rows":\[\[60\]\]' <<<"$IT_BODY"
	q $i 'MATCH ()-[r:KNOWS]->() RETURN count(r)'
	it_check "node $i: 1200 KNOWS" grep -q '"rows":\[\[1200\]\]' <<<"$IT_BODY"
	q $i 'MATCH (:Person {id: \"p3\"})-[:LIVES_IN]->(c:City) RETURN c.name'
	it_check "node $i: p3 lives in City 3" grep -q '"rows":\[\["City 3"\]\]' <<<"$IT_BODY"
done
q 2 'MATCH (a:Person {id: \"p5\"})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)'
it_check "2-hop from p5 finds $(exp twohop) people" \
	grep -q "\"rows\":\[\[$(exp twohop)\]\]" <<<"$IT_BODY"
q 3 'MATCH (p:Person {id: \"p7\"}) RETURN p.name, p.age'
want="[\"$(exp name7 | tr -d '"')\",$(exp age7)]"
it_check "property lookup of p7 gives $want" grep -qF "\"rows\":[$want]" <<<"$IT_BODY"
q 1 'MATCH (p:Person {id: \"p9\"}) RETURN p.emb'
it_check "vector of p9 is [$(exp emb9)]" \
	grep -qF "\"kind\":\"vector\",\"dimension\":4,\"coordinateType\":\"FLOAT32\",\"values\":[$(exp emb9)]" <<<"$IT_BODY"
it_post 1 /explain '{"query":"MATCH (p:Person {id: \"p9\"}) RETURN p"}'
it_check "the imported index on :Person(id) is used" grep -q 'NodeIndexSeek' <<<"$IT_BODY"

it_get 1 /admin/digest
IDX=$(it_field appliedIndex)
for i in 1 2 3; do
	d=$(it_digest $i "$IDX")
	it_check "node $i digest at $IDX equals lora-import's" [ "$d" = "$DIGEST" ]
done

# ---- writes continue after the imported ids and indexes
it_post_leader 1 /query '{"query":"MATCH (p:Person {id: \"p1\"}) CREATE (n:Person {id: \"new\"})-[r:KNOWS]->(p) RETURN id(n), id(r)","format":"rowArrays"}'
it_check "a write after the import gets the next ids (node 320, rel 1500)" \
	grep -q '"rows":\[\[320,1500\]\]' <<<"$IT_BODY"
BM=$(it_field bookmark)
for i in 1 2 3; do
	it_query $i "{\"query\":\"MATCH (:Person {id: 'new'})-[:KNOWS]->(p) RETURN p.id\",\"format\":\"rowArrays\",\"consistency\":\"bookmark\",\"bookmark\":\"$BM\"}"
	it_check "node $i sees the write" grep -q '"rows":\[\["p1"\]\]' <<<"$IT_BODY"
done
d1=$(it_digest 1 "$BM")
for i in 2 3; do
	it_check "node $i digest at $BM equals node 1's" [ "$(it_digest $i "$BM")" = "$d1" ]
done

# ---- corrupt inputs: non-zero exit, FILE:LINE, nothing left behind
bad() { # bad NAME EXPECTED-MESSAGE lora-import args...
	local name=$1 want=$2
	shift 2
	"$IMPORT" --into "$IT_DIR/bad" "$@" >/dev/null 2>"$IT_DIR/stderr"
	local rc=$?
	it_check "$name: exit code 1 (got $rc)" [ "$rc" = 1 ]
	it_check "$name: says '$want'" grep -qF "$want" "$IT_DIR/stderr"
	it_check "$name: nothing left behind" [ -z "$(ls "$IT_DIR" | grep '^bad\.\|^bad$')" ]
}
{ head -n 3 "$D/persons.csv"; echo 'p300,Bad,forty,1.5,"[0,0,0,0]",'; } >"$D/badrow.csv"
bad "bad row" "$D/badrow.csv:4: column 3 \`age\`: not an integer: \"forty\"" \
	--nodes=Person "$D/badrow.csv"
{ head -n 5 "$D/knows.csv"; echo 'p1,p999,2000'; } >"$D/badend.csv"
bad "unknown end id" "$D/badend.csv:6: unknown :END_ID \"p999\"" \
	--nodes=Person "$D/persons.csv" --relationships=KNOWS "$D/badend.csv"
{ head -n 4 "$D/persons.csv"; printf 'p300,"Open quote,30,1.5\n'; } >"$D/badquote.csv"
bad "truncated quote" "$D/badquote.csv:5: quoted field never ends" \
	--nodes=Person "$D/badquote.csv"
# a pipe would map as an empty file, its rows lost on a successful import
bad "piped rows" ": not a regular file (lora-import reads regular files only)" \
	--nodes=Person "$D/persons.csv",<(tail -n +2 "$D/persons.csv")

# ---- a failed import over an existing one leaves that one as it was
fingerprint() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum | md5sum); }
before=$(fingerprint "$OUT")
"$IMPORT" --force --into "$OUT" --nodes=Person "$D/badrow.csv" >/dev/null 2>"$IT_DIR/stderr"
rc=$?
it_check "--force with a bad row: exit code 1 (got $rc), names the line" \
	bash -c '[ "$1" = 1 ] && grep -qF "$2:4: column 3" "$3"' _ "$rc" "$D/badrow.csv" "$IT_DIR/stderr"
it_check "--force with a bad row: the import it would replace is byte for byte unchanged" \
	[ "$(fingerprint "$OUT")" = "$before" ]
it_check "--force with a bad row: nothing left beside it" \
	[ -z "$(ls "$IT_DIR" | grep '^import\.\(importing\|replaced\)-')" ]

# ---- an import stopped by SIGTERM: exit code 1, nothing left behind, and
# an existing import it would replace unchanged
awk 'BEGIN { print "id:ID,name,age:int"; for (i = 0; i < 5000000; i++) printf "q%d,name%d,%d\n", i, i, i % 90 }' >"$D/big.csv"
"$IMPORT" --force --into "$OUT" --nodes=Person "$D/big.csv" >/dev/null 2>"$IT_DIR/stderr" &
ipid=$!
started() { # the import's directory is there, and its progress line
	ls "$IT_DIR" | grep -q '^import\.importing-' &&
		grep -q "^lora-import: [0-9.]* s: [a-z ]*$D/big.csv: [0-9]* rows ([0-9]* rows/s)$" "$IT_DIR/stderr"
}
it_check "a 5M-row import is under way and prints its progress line" it_wait 30 started
it_check "it is still running when stopped (about 4 s here)" kill -TERM "$ipid"
wait "$ipid"
rc=$?
it_check "SIGTERM: exit code 1 (got $rc), says it was cancelled" \
	bash -c '[ "$1" = 1 ] && grep -q "cancelled" "$2"' _ "$rc" "$IT_DIR/stderr"
it_check "SIGTERM: the import it would replace is unchanged, nothing left beside it" \
	bash -c '[ "$1" = "$2" ] && [ -z "$(ls "$3" | grep "^import\.\(importing\|replaced\)-")" ]' _ "$(fingerprint "$OUT")" "$before" "$IT_DIR"

it_done
