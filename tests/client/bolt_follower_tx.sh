#!/usr/bin/env bash
# tests/client/bolt_follower_tx.sh - the official Neo4j JavaScript driver
# over bolt:// to a follower alone (127.0.240.1-3): write transactions
# begun there run on the leader (node/bolt_relay.c): their reads see their
# writes, nobody sees them before COMMIT, every node after; ROLLBACK and a
# thrown transaction function leave nothing; 8 clients' read-modify-write
# transactions lose no update; leadership moved (a transfer), then the
# leader killed, inside a transaction: the driver gets a retryable error
# and executeWrite's retry commits once.
# Exits 77 (skipped) without node or the driver.
# Usage: bolt_follower_tx.sh LORAD
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
js="$here/bolt/bolt_test.js"
if ! command -v node >/dev/null || [ ! -d "$here/bolt/node_modules/neo4j-driver" ]; then
	echo "skipped: node or tests/client/bolt/node_modules/neo4j-driver missing"
	echo "(scripts/test.sh installs it: npm install --prefix tests/client/bolt)"
	exit 77
fi
it_setup 127.0.240 "$1"
it_start_all 3 "$(it_peers 3)" || it_done

# bolt_phase PHASE: the driver's checks, with a deadline
bolt_phase() {
	NODE_PATH="$here/bolt/node_modules" timeout 120 node "$js" "$1" "$IT_NET" \
		"$leader" "$follower" "$(cat "$IT_DIR/n$leader.pid")"
}

leader=$(it_leader 1)
it_check "a leader" test -n "$leader"
follower=$((leader % 3 + 1))
it_log "leader $leader, follower $follower"
# the follower must know the leader's Bolt address (gossip) to relay
relays() { it_get "$follower" /cluster/status && [ "$(it_leader "$follower")" = "$leader" ]; }
it_check "the follower knows the leader" it_wait 30 relays
it_check "bolt:// write transactions through a follower" bolt_phase followertx
it_check "leadership moved inside a follower's transaction: one retried commit" \
	bolt_phase followermove
# the leader is the third node now: the follower stays a follower
leader=$((6 - leader - follower))
moved() { it_get "$follower" /cluster/status && [ "$(it_leader "$follower")" = "$leader" ]; }
it_check "node $follower knows the new leader $leader" it_wait 30 moved
it_check "the leader killed inside a follower's transaction: one retried commit" \
	bolt_phase followerkill
it_done
