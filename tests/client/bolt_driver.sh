#!/usr/bin/env bash
# tests/client/bolt_driver.sh - the official Neo4j JavaScript driver
# (neo4j-driver from npm, installed by scripts/test.sh into
# tests/client/bolt/node_modules) against a three-node cluster on
# 127.0.160.1-3, Bolt on port 7687 of each: every value type written and
# read back over bolt:// to a follower, a syntax error's code, read
# transactions, bookmarks; neo4j:// through a follower sends writes to the
# leader; write transactions (isolation, rollback, 8 clients' read-modify-
# write without a lost update); the protocol by hand (negotiation, a
# malformed and an oversized request); the leader killed inside a write
# transaction: the driver retries it on the new leader, and it is applied
# once; bolt_connections_max refuses the connection past it. Exits 77 (skipped) without node or the
# driver.
# Usage: bolt_driver.sh LORAD
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
js="$here/bolt/bolt_test.js"
if ! command -v node >/dev/null || [ ! -d "$here/bolt/node_modules/neo4j-driver" ]; then
	echo "skipped: node or tests/client/bolt/node_modules/neo4j-driver missing"
	echo "(scripts/test.sh installs it: npm install --prefix tests/client/bolt)"
	exit 77
fi
it_setup 127.0.160 "$1"
peers=$(it_peers 3)
it_start_all 3 "$peers" || it_done

# bolt_phase PHASE LEADER FOLLOWER: the driver's checks, with a deadline
bolt_phase() {
	NODE_PATH="$here/bolt/node_modules" timeout 120 node "$js" "$1" "$IT_NET" "$2" "$3"
}

leader=$(it_leader 1)
follower=$((leader % 3 + 1))
it_log "leader $leader, follower $follower"
# the follower must know the leader's Bolt address (gossip) for routing
routed() { it_get "$follower" /cluster/status && [ "$(it_leader "$follower")" = "$leader" ]; }
it_check "the follower knows the leader" it_wait 30 routed
# a reader for the auth phase: it may read, never begin a write transaction
it_query "$leader" '{"query":"CREATE USER rita SET PASSWORD '"'"'rita-pw-1'"'"' CHANGE NOT REQUIRED"}'
it_query "$leader" '{"query":"GRANT ROLE reader TO rita"}'
it_check "authentication over Bolt" bolt_phase auth "$leader" "$follower"
it_check "values over bolt:// to a follower" bolt_phase values "$leader" "$follower"
it_check "neo4j:// routes writes to the leader" bolt_phase routing "$leader" "$follower"
it_check "explicit write transactions" bolt_phase tx "$leader" "$follower"
it_check "the protocol by hand: negotiation, bad requests" bolt_phase raw "$leader" "$follower"
# the driver kills the leader itself, inside a transaction
bolt_failover() {
	NODE_PATH="$here/bolt/node_modules" timeout 120 node "$js" failover \
		"$IT_NET" "$leader" "$follower" "$(cat "$IT_DIR/n$leader.pid")"
}
it_check "the leader killed inside a transaction: the driver's retry succeeds" \
	bolt_failover
it_kill9 "$leader" 2>/dev/null
# a one-node cluster on .9 that allows 4 Bolt connections
echo "bolt_connections_max = 4" >"$IT_DIR/n9.conf"
it_start 9 "9@$IT_NET.9:4749" --config "$IT_DIR/n9.conf"
bolt_limit() { NODE_PATH="$here/bolt/node_modules" timeout 60 node "$js" limit "$IT_NET" 9 9 4; }
it_check "bolt_connections_max = 4: the fifth is refused" bolt_limit
it_done
