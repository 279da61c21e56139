#!/usr/bin/env bash
# scripts/start.sh - README command 1: install the dependencies, build a
# release tree, start the local three-node cluster (127.0.0.1-3), load a
# small demo graph THROUGH A FOLLOWER over HTTP (the follower forwards the
# write to the leader), read it back on the other follower with a bookmark,
# and print how to connect with the shell and with curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/deploy/cluster.sh" start

. "$root/deploy/lib.sh"
LC_LORAD=$root/build/release/node/lorad
LC_DIR=data
LC_PREFIX=127.0.0
LC_N=3
lc_auth_init data/admin.password # made by cluster.sh start (mode 0600)
lc_tls_init data/tls             # the CA and certificates it made
leader=$(lc_wait_leader 30) || { echo "no leader elected" >&2; exit 1; }
follower="" other=""
for i in 1 2 3; do
	[ "$i" = "$leader" ] && continue
	if [ -z "$follower" ]; then follower=$i; else other=$i; fi
done

query() { # query NODE JSON_BODY
	lc_curl -s -m 30 -X POST -H 'Content-Type: application/json' \
		--data "$2" "https://$(lc_http "$1")/query"
}

count=$(query "$follower" '{"query": "MATCH (p:Person) RETURN count(p) AS n", "format": "rowArrays"}')
existing=$(echo "$count" | grep -o '"rows"[^0-9]*[0-9]*' | grep -o '[0-9]*$' || true)
if [ "${existing:-0}" -gt 0 ]; then
	echo "demo graph already loaded ($existing people)"
	bookmark=""
else
	demo="CREATE (ada:Person {name: 'Ada', born: 1815}), (alan:Person {name: 'Alan', born: 1912}), (grace:Person {name: 'Grace', born: 1906}), (london:City {name: 'London'}), (ny:City {name: 'New York'}), (ada)-[:KNOWS {since: 1833}]->(alan), (alan)-[:KNOWS]->(grace), (ada)-[:LIVES_IN]->(london), (alan)-[:LIVES_IN]->(london), (grace)-[:LIVES_IN]->(ny)"
	out=$(query "$follower" "{\"query\": \"$demo\"}")
	if echo "$out" | grep -q '"error"'; then
		echo "loading the demo graph through node $follower failed: $out" >&2
		exit 1
	fi
	bookmark=$(echo "$out" | lc_json_field bookmark)
	echo "demo graph loaded through follower node $follower ($(lc_http "$follower")), bookmark $bookmark"
fi

consistency='"consistency": "local"'
[ -n "$bookmark" ] && consistency="\"consistency\": \"bookmark\", \"bookmark\": \"$bookmark\""
check=$(query "$other" "{\"query\": \"MATCH (p:Person)-[:LIVES_IN]->(c:City) RETURN p.name AS person, c.name AS city ORDER BY person\", $consistency}")
echo "read back on follower node $other: $check"

cat <<EOF

LoraDB is running: leader node $leader; nodes on 127.0.0.1, 127.0.0.2, 127.0.0.3
(HTTPS :4747, native protocol :4748, Bolt :7687, all TLS only). Data and logs
are in data/. The certificates come from a development CA in data/tls
(deploy/gen-certs.sh); clients trust data/tls/ca.pem:
    export LORA_CA=\$PWD/data/tls/ca.pem

Authentication is on. The first admin is "admin"; its password was generated
into data/admin.password (mode 0600). Give it to the tools:
    export LORA_USER=admin LORA_PASSWORD="\$(cat data/admin.password)"
and create your own users (docs/security.md), e.g. in the shell:
    CREATE USER alice SET PASSWORD 'a-long-secret' CHANGE NOT REQUIRED;
    GRANT ROLE writer TO alice;

Shell (any node; it finds the leader; -u NAME asks for the password;
--ca FILE or LORA_CA turns TLS on):
    build/release/client/lora --ca data/tls/ca.pem
    build/release/client/lora --ca data/tls/ca.pem -c "MATCH (p:Person) RETURN p.name, p.born;"

HTTP (any node; writes are forwarded to the leader; Basic auth or a token
from POST /auth/token):
    curl -s --cacert data/tls/ca.pem -u "admin:\$LORA_PASSWORD" \\
         -X POST https://127.0.0.2:4747/query \\
         -H 'Content-Type: application/json' \\
         -d '{"query": "MATCH (a:Person)-[:KNOWS]->(b) RETURN a.name, b.name"}'
    curl -s --cacert data/tls/ca.pem -u "admin:\$LORA_PASSWORD" https://127.0.0.1:4747/cluster/status

Neo4j drivers (Bolt over TLS): bolt+s:// and neo4j+s:// trust the system's
CAs only; with the development CA use bolt:// or neo4j:// and the driver's
TLS settings, e.g. in JavaScript:
    neo4j.driver('neo4j://127.0.0.1:7687', neo4j.auth.basic('admin', pw),
      {encrypted: 'ENCRYPTION_ON', trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES',
       trustedCertificates: ['data/tls/ca.pem']})
(or add data/tls/ca.pem to the system's trust store and use neo4j+s://).

Cluster:  deploy/cluster.sh status | stop      Operations: docs/operations.md
EOF
