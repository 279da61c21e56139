#!/usr/bin/env bash
# Hostile peers against a live three-node cluster (127.0.120.1-3; the
# attacker connects from 127.0.120.9 with peer_forge). Every attack must be
# refused and logged once (one line per peer and kind), and afterwards the
# cluster serves, its digests are equal, no node died or restarted and the
# leader's term did not move. Then the backup confinement of
# POST /admin/checkpoint and the modes of what it writes.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.120 "$1"
FORGE=$2
A=$IT_NET.9
P=$(it_peers 3)
SNAP_MAX=65536
it_start_all 3 "$P" --snapshot-bytes-max $SNAP_MAX --backup-dir "$IT_DIR/backups" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))
PIDS="$(cat "$IT_DIR/n1.pid") $(cat "$IT_DIR/n2.pid") $(cat "$IT_DIR/n3.pid")"
it_post_leader 1 /query '{"query":"CREATE (:Base {k: 1})"}'
it_check "a first write commits" [ "$IT_STATUS" = 200 ]

# term and commit index of node $1 as it reports itself
term_of() { it_get "$1" /cluster/status; grep -o '"term":[0-9]*' <<<"$IT_BODY" | head -1 | cut -d: -f2; }
commit_of() {
	it_get "$1" /cluster/status
	grep -o "\"id\":$1,[^}]*" <<<"$IT_BODY" | grep -o '"commitIndex":[0-9]*' | cut -d: -f2
}
leader_of() { it_get "$1" /cluster/status; grep -o '"leader":[0-9]*' <<<"$IT_BODY" | cut -d: -f2; }
T0=$(term_of "$L")
it_check "leader $L at term $T0" [ -n "$T0" ]
# lines of node $1's log saying peer $2's $3 was refused
refusals() { grep -c "peer $2: refused $3:" "$IT_DIR/n$1.log"; }
logged() { [ "$(refusals "$@")" -ge 1 ]; }
once() { [ "$(refusals "$@")" = 1 ]; }
forge() { "$FORGE" "$IT_NET.$F:4749" "$A" "$@"; }

# -- 1. a heartbeat from non-member 99 with term + 100
forge heartbeat 99 99 "$F" $((T0 + 100)) || it_fail "send heartbeat"
it_check "node $F refuses the heartbeat of non-member 99 (logged)" \
	it_wait 10 logged "$F" 99 raft-not-member
it_check "node $F keeps term $T0" it_same "$(term_of "$F")" "$T0"
it_check "node $F keeps leader $L" it_same "$(leader_of "$F")" "$L"

# -- 2. an append from non-member 98 that would create (:Injected)
# (at the node's current term, after its last entry: what a leader sends)
C=$(commit_of "$F")
TF=$(term_of "$F")
forge append 98 "$F" "${TF:-$T0}" "${C:-0}" "$T0" || it_fail "send append"
it_check "node $F refuses the append of non-member 98 (logged)" \
	it_wait 10 logged "$F" 98 raft-not-member
it_query "$F" '{"query":"MATCH (n:Injected) RETURN count(n) AS c","format":"rowArrays"}'
it_check "no Injected node on node $F" grep -q '"rows":\[\[0\]\]' <<<"$IT_BODY"

# -- 3. a heartbeat with term 2^64-1 from the leader's id, and one whose
# frame names another sender than its message
forge heartbeat "$L" "$L" "$F" 18446744073709551615 || it_fail "send heartbeat"
it_check "node $F refuses term 2^64-1 (logged)" \
	it_wait 10 logged "$F" "$L" raft-term-overflow
forge heartbeat 97 "$L" "$F" $((T0 + 100)) || it_fail "send heartbeat"
it_check "node $F refuses a frame of 97 carrying a message of $L (logged)" \
	it_wait 10 logged "$F" 97 raft-sender
it_check "node $F still at term $T0" it_same "$(term_of "$F")" "$T0"

# -- 4. snapshot chunks: from a member that does not lead, over
# snapshot_bytes_max, and a final chunk with a garbage CURRENT
STAGE="$IT_DIR/n$F/snapshot-staging"
"$FORGE" "$IT_NET.$F:4749" "$A" chunk "$G" "$T0" 1000 probe-g 100 1 || it_fail "send chunk"
it_check "node $F refuses a chunk from non-leader $G (logged)" \
	it_wait 10 logged "$F" "$G" snapshot-chunk
it_check "the chunk from $G is not staged" [ ! -e "$STAGE/probe-g" ]
forge chunk "$L" "$T0" 1001 big $((SNAP_MAX + 1)) 0 || it_fail "send chunk"
it_check "node $F refuses a chunk over snapshot_bytes_max (logged)" \
	it_wait 10 logged "$F" "$L" snapshot-bounds
it_check "the oversized chunk is not staged" [ ! -e "$STAGE/big" ]
forge chunk "$L" "$T0" 1002 CURRENT 20 1 || it_fail "send chunk"
it_check "node $F refuses a staged snapshot that does not verify (logged)" \
	it_wait 20 logged "$F" "$L" snapshot-verify
it_check "the garbage snapshot is not left staged" [ ! -e "$STAGE/CURRENT" ]

# -- 5. gossip from fifteen fake ids (each twice), and a member's gossip
# claiming other addresses
# three senders at a time (each holds its connection a moment)
gossip_twice() { forge gossip "$1" "$A:4749" && forge gossip "$1" "$A:4749"; }
for b in 100 103 106 109 112; do
	GOSSIP=""
	for id in $b $((b + 1)) $((b + 2)); do
		gossip_twice "$id" &
		GOSSIP="$GOSSIP $!"
	done
	for p in $GOSSIP; do wait "$p" || it_fail "send gossip"; done
done
it_check "node $F refuses the gossip of fake id 114 (logged)" \
	it_wait 10 logged "$F" 114 gossip
all_gossip_once() {
	local id
	for id in $(seq 100 114); do once "$F" "$id" gossip || return 1; done
}
it_check "each fake id's gossip is logged exactly once" all_gossip_once
it_get "$F" /cluster/status
it_check "node $F still lists three nodes" [ "$(grep -o '"id":' <<<"$IT_BODY" | wc -l)" = 3 ]
# the members file is written only when membership changes: gossip must
# neither have created it with a fake id nor put a new address in it
MF="$IT_DIR/n$F/members"
no_fake_member() { [ ! -e "$MF" ] || ! grep -q '^1[01][0-9] ' "$MF"; }
it_check "no fake id saved as a member by node $F" no_fake_member
forge gossip "$G" "$A:4749" || it_fail "send gossip"
it_check "node $F refuses new addresses for member $G (logged)" \
	it_wait 10 logged "$F" "$G" gossip-address
g_addr_kept() { [ ! -e "$MF" ] || grep -q "^$G $IT_NET.$G:4749 " "$MF"; }
it_check "node $F keeps member $G's peer address" g_addr_kept
g_http_kept() { it_get "$F" /cluster/status; grep -q "\"id\":$G,\"address\":\"$IT_NET.$G:4747\"" <<<"$IT_BODY"; }
it_check "node $F keeps member $G's HTTP address (writes are passed there)" g_http_kept
it_check "node $F does not dial $A for member $G" \
	bash -c "! grep -q 'peer $G ($A' '$IT_DIR/n$F.log'"

# -- 6. huge frames on several connections: the streams that would take
# the receive buffers past their cap are closed
HUGE=""
for k in 1 2 3 4; do
	forge huge 96 $((60 << 20)) 3000 &
	HUGE="$HUGE $!"
done
for p in $HUGE; do wait "$p"; done
it_check "node $F closed a stream over the receive-buffer cap (logged)" \
	it_wait 10 grep -q "peer stream from $A:[0-9]*: no room for a" "$IT_DIR/n$F.log"

# -- 7. many connections from one address: at most 20 stay open (every
# member of a 16-node cluster may share one host, no more)
forge_conns() { "$FORGE" "$IT_NET.$F:4749" "$A" conns 40 3000 >"$IT_DIR/conns.out"; }
forge_conns &
CONNS=$!
it_check "node $F refuses the 21st connection from $A (logged)" \
	it_wait 10 grep -q "20 connections open from the address of $A" "$IT_DIR/n$F.log"
it_post_leader 1 /query '{"query":"CREATE (:During {k: 2})"}'
it_check "writes commit while $A holds connections" [ "$IT_STATUS" = 200 ]
wait $CONNS
it_check "at most 20 of 40 connections from $A stayed open" [ "$(cat "$IT_DIR/conns.out")" -le 20 ]

# -- the cluster is unharmed
it_post_leader 1 /query '{"query":"CREATE (:After {k: 3})"}'
it_check "writes commit after the attacks" [ "$IT_STATUS" = 200 ]
BM=$(it_field bookmark)
D1=$(it_digest 1 "$BM")
it_check "node 2's digest at $BM equals node 1's" it_same "$(it_digest 2 "$BM")" "$D1"
it_check "node 3's digest at $BM equals node 1's" it_same "$(it_digest 3 "$BM")" "$D1"
alive() { local p; for p in $PIDS; do kill -0 "$p" || return 1; done; }
it_check "no node died or restarted (same pids)" alive
it_check "leader $L still leads" it_same "$(leader_of "$F")" "$L"
it_check "the leader's term did not move ($T0)" it_same "$(term_of "$L")" "$T0"
it_check "the append of 98 was logged once" once "$F" 98 raft-not-member
it_check "term 2^64-1 was logged once" once "$F" "$L" raft-term-overflow
it_check "the chunk from $G was logged once" once "$F" "$G" snapshot-chunk
it_check "/metrics counts refused peer frames" \
	bash -c "curl -s http://$IT_NET.$F:4747/metrics | grep -q '^lora_peer_refused_total [1-9]'"

# -- backups are named and go under backup_dir, 0700 / 0600
it_post "$L" /admin/checkpoint "{\"backup\":\"$IT_DIR/evil\"}"
it_check "a backup path is refused (400)" [ "$IT_STATUS" = 400 ]
it_check "nothing written at the path" [ ! -e "$IT_DIR/evil" ]
it_post "$L" /admin/checkpoint '{"backup":"../evil"}'
it_check "a backup name with .. is refused (400)" [ "$IT_STATUS" = 400 ]
it_check "nothing written beside backup_dir" [ ! -e "$IT_DIR/evil" ]
it_post "$L" /admin/checkpoint '{"backup":"b1"}'
it_check "a backup name works (200)" [ "$IT_STATUS" = 200 ]
it_check "the answer names the backup under backup_dir" grep -q "\"backup\":\"$IT_DIR/backups/b1\"" <<<"$IT_BODY"
it_check "the backup holds the checkpoint" [ -f "$IT_DIR/backups/b1/CURRENT" ]
it_check "the backup directory is 0700" it_same "$(stat -c %a "$IT_DIR/backups/b1")" 700
modes_600() { [ -z "$(find "$IT_DIR/backups/b1" -type f ! -perm 0600)" ]; }
it_check "every backup file is 0600" modes_600
it_post "$L" /admin/checkpoint '{"backup":"b1"}'
it_check "an existing backup name is refused" [ "$IT_STATUS" != 200 ]
it_check "the data directory is 0700" it_same "$(stat -c %a "$IT_DIR/n$L")" 700
it_done
