#!/usr/bin/env bash
# Snapshot chunks carry the sending leader's term (three real lorad
# processes on 127.0.44.1-3, chunks sent with snap_chunk_send): a follower
# stages a chunk of its current term from its leader (and refuses it once
# staged when it is no checkpoint), but refuses one claiming an older term
# (a deposed leader still streaming its checkpoint) or none, so such a
# snapshot never replaces its data.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.44 "$1"
SEND=$2
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
L=$(it_leader 1)
# A transfer starts a new term: term - 1 is then a real, older term.
it_post $L /cluster/transfer "{\"to\":$((L % 3 + 1))}"
L=$(it_leader 1)
F=$((L % 3 + 1))
it_get $F /cluster/status
TERM=$(grep -o '"term":[0-9]*' <<<"$IT_BODY" | head -1 | cut -d: -f2)
it_check "leader $L, follower $F at term $TERM (>= 2)" [ "${TERM:-0}" -ge 2 ]
for k in 1 2 3 4 5; do it_post_leader 1 /query "{\"query\":\"CREATE (:S {k: $k})\"}"; done
STAGE="$IT_DIR/n$F/snapshot-staging"

# refused peer frames counted by node $F
refused_n() { curl -s "http://$IT_NET.$F:4747/metrics" | grep '^lora_peer_refused_total ' | cut -d' ' -f2; }
refused_past() { [ "$(refused_n)" -gt "$1" ]; }

# -- a chunk at the current term from the leader is taken (the tool and the
# path work): it is staged, found not to be a checkpoint when it turns out
# to be the last, and refused then (logged), never installed
"$SEND" "$IT_NET.$F:4749" "$L" "$TERM" 1 probe-current || it_fail "send"
it_check "a chunk at the current term ($TERM) is staged, then refused as no checkpoint" \
	it_wait 10 grep -q "peer $L: refused snapshot-verify: staged snapshot 1 does not verify" "$IT_DIR/n$F.log"
it_check "the refused snapshot is not left staged" [ ! -e "$STAGE/probe-current" ]

# -- chunks of an older term, or with no term, are dropped: once the
# follower has counted the refusal, the chunk must not be staged
R=$(refused_n)
"$SEND" "$IT_NET.$F:4749" "$L" $((TERM - 1)) 1000000 probe-stale || it_fail "send"
it_check "the follower refuses the chunk from term $((TERM - 1))" \
	it_wait 10 refused_past "${R:-0}"
it_check "a chunk from term $((TERM - 1)) is not staged" [ ! -e "$STAGE/probe-stale" ]
R=$(refused_n)
"$SEND" "$IT_NET.$F:4749" "$L" 0 1000001 probe-noterm || it_fail "send"
it_check "the follower refuses the chunk without a term" \
	it_wait 10 refused_past "${R:-0}"
it_check "a chunk without a term is not staged" [ ! -e "$STAGE/probe-noterm" ]
it_check "the follower logs the refused chunk (once per peer and kind)" \
	grep -q "peer $L: refused snapshot-chunk: snapshot 1000000 chunk probe-stale at term $((TERM - 1)): the leader known here is node $L at term $TERM" "$IT_DIR/n$F.log"

# -- the follower keeps its data and keeps replicating
it_post_leader 1 /query '{"query":"CREATE (:S {k: 6})"}'
BM=$(it_field bookmark)
DL=$(it_digest $L "$BM")
DF=$(it_digest $F "$BM")
it_check "follower digest at $BM matches the leader's ($DF)" it_same "$DF" "$DL"
it_query $F "{\"query\":\"MATCH (s:S) RETURN count(s) AS c\",\"format\":\"rowArrays\",\"consistency\":\"bookmark\",\"bookmark\":\"$BM\"}"
it_check "follower still holds all six nodes" grep -q '"rows":\[\[6\]\]' <<<"$IT_BODY"
it_check "follower $F still running" kill -0 "$(cat "$IT_DIR/n$F.pid")"
it_done
