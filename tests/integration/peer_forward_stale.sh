#!/usr/bin/env bash
# Late answers and stale roles on the ways a follower passes a write on to
# the leader, with the node's test hooks (docs/node.md "Test hooks";
# CMake option LORA_TEST_HOOKS):
#   - ids of passed-on writes start at a random value per process: the
#     leader holds back its answer to a write follower F passed on
#     (LORA_PFWD_HOLD_ANSWER_TESTING=1) while F is killed and restarted,
#     and sends it right before its answer to the first write through the
#     new F, which must get its own answer, never the old write's (with
#     ids starting at 1 in every run, both writes had id 1);
#   - the leader uses the lower of the role a follower claims for a user
#     and the user's role on the leader: wendy is demoted from writer to
#     reader while both followers still take her for a writer
#     (LORA_AUTH_STALE_ROLE_TESTING=wendy:writer, as a follower that has
#     not applied the REVOKE yet); her writes through a follower are
#     refused 403 and write nothing, whether passed on over the peer
#     channel (F, peer_forward on), the HTTP proxy (G, peer_forward off)
#     or the native port (native_cursor to F);
#   - the leader's memo of a follower's X-Lora-Identity (the HTTP proxy's
#     pooled connections) ends with the users' stamp: wendy writes through
#     G while still a writer (the leader accepts the repeated header from
#     its memo, lora_auth_memo_hits_total grows), and her next write
#     through G after the REVOKE, with the very same header, is 403;
#   - the three nodes' digests agree.
# 127.1.151.x
. "$(dirname "$0")/lib.sh"
it_setup 127.1.151 "$1"
NC=$2
P=$(it_peers 3)
export LORA_PFWD_HOLD_ANSWER_TESTING=1
it_start_all 3 "$P" --peer-forward true || it_done
unset LORA_PFWD_HOLD_ANSWER_TESTING
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))
G=$(((L + 1) % 3 + 1))

body_lacks() { ! grep -q -- "$1" <<<"$IT_BODY"; }
count_is() { # count_is LABEL N (asked of the leader)
	it_query "$L" "{\"query\":\"MATCH (a:$1) RETURN count(a) AS c\",\"format\":\"rowArrays\"}"
	grep -q "\"rows\":\[\[$2\]\]" <<<"$IT_BODY"
}
# memo_hits: the leader's lora_auth_memo_hits_total
memo_hits() {
	it_get "$L" /metrics
	sed -n 's/^lora_auth_memo_hits_total //p' <<<"$IT_BODY"
}
greater() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -gt "$2" ]; }
held() { grep -q "answer held back until the next one (test hook)" "$IT_DIR/n$L.log"; }
# as_wendy NODE BODY: POST /query to NODE as wendy
as_wendy() {
	local out
	out=$(curl -q -s -m 20 -u wendy:wendy-pw -w '\n%{http_code}' \
		-X POST "$IT_SCHEME://$IT_NET.$1:4747/query" -d "$2")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}

it_query "$L" "{\"query\":\"CREATE USER wendy SET PASSWORD 'wendy-pw' CHANGE NOT REQUIRED\"}"
it_query "$L" '{"query":"GRANT ROLE writer TO wendy"}'
it_check "wendy is a writer" it_status_is 200

# ---- a late answer across a follower restart
# F passes a write on over the peer channel only once it knows the leader
# and has applied the cluster's peer secret (before, it takes the HTTP
# way, whose answer the hook does not hold): wait for both
it_caught_up "$F" "$L" "$(it_field bookmark)"
# F also takes the HTTP way when it cannot read the cluster secret at
# once (its store briefly busy: the I/O thread never waits), and the hook
# holds only a write passed over the peer channel: such a write is
# answered, and the next one is tried (at most 5)
tries=0
while :; do
	tries=$((tries + 1))
	curl -s -m 60 -o "$IT_DIR/w1.out" -X POST "$IT_SCHEME://$IT_NET.$F:4747/query" \
		-d "{\"query\":\"CREATE (:Job {n: $tries}) RETURN 'first' AS who\",\"format\":\"rowArrays\"}" &
	W1=$!
	if it_wait 6 held || [ "$tries" -ge 5 ]; then break; fi
	wait "$W1" 2>/dev/null
	it_log "write $tries through follower $F went the HTTP way: $(cat "$IT_DIR/w1.out" 2>/dev/null)"
done
it_check "the first write through follower $F is held back on the leader" held
it_check "and committed" it_wait 10 count_is Job "$tries"
it_kill9 "$F"
wait "$W1" 2>/dev/null
it_log "follower $F killed: its client got '$(cat "$IT_DIR/w1.out" 2>/dev/null)'"
LORA_AUTH_STALE_ROLE_TESTING=wendy:writer it_start "$F" "$P" --peer-forward true
it_check "follower $F back, following node $L" it_same "$(it_leader "$F")" "$L"
it_query "$F" '{"query":"CREATE (:Job {n: 2}) RETURN \"second\" AS who","format":"rowArrays"}'
it_log "the first write through the restarted follower: $IT_STATUS $IT_BODY"
it_check "answers 200" it_status_is 200
it_check "with its own rows" it_body_has '"rows":\[\["second"\]\]'
it_check "not the old write's" body_lacks '"first"'
it_check "both writes applied once" it_wait 10 count_is Job $((tries + 1))

# ---- a stale role on the followers
it_kill9 "$G"
LORA_AUTH_STALE_ROLE_TESTING=wendy:writer it_start "$G" "$P"
it_check "follower $G back (peer_forward off), following node $L" \
	it_same "$(it_leader "$G")" "$L"
it_check "follower $G logged the test hook it honours" grep -q \
	"warn.*test hook LORA_AUTH_STALE_ROLE_TESTING=wendy:writer is set and honoured" \
	"$IT_DIR/n$G.log"
H0=$(memo_hits)
for i in 1 2 3; do
	as_wendy "$G" "{\"query\":\"CREATE (:WendyWriter {n: $i})\"}"
	it_check "wendy, still a writer, writes through $G (HTTP proxy): $i" \
		it_status_is 200
done
H1=$(memo_hits)
it_log "the leader's credential memo hits: $H0 before her writes, $H1 after"
it_check "the leader took her repeated X-Lora-Identity from its memo" \
	greater "$H1" "$H0"
it_query "$L" '{"query":"REVOKE ROLE writer FROM wendy"}'
it_query "$L" '{"query":"GRANT ROLE reader TO wendy"}'
it_check "wendy demoted to reader on the leader" it_status_is 200
BM=$(it_field bookmark)
for n in "$F" "$G"; do
	it_query "$n" "{\"query\":\"RETURN 1\",\"bookmark\":\"$BM\"}"
	it_check "follower $n applied the demotion (bookmark $BM)" it_status_is 200
done
as_wendy "$F" '{"query":"RETURN 1 AS x"}'
it_check "wendy reads through follower $F" it_status_is 200
as_wendy "$F" '{"query":"CREATE (:Wendy {via: \"peer\"})"}'
it_log "over the peer channel: $IT_STATUS $IT_BODY"
it_check "her write through $F (peer channel) is refused 403" it_status_is 403
as_wendy "$G" '{"query":"CREATE (:Wendy {via: \"proxy\"})"}'
it_log "over the HTTP proxy: $IT_STATUS $IT_BODY"
it_check "her write through $G (HTTP proxy) is refused 403" it_status_is 403
OUT=$(LORA_USER=wendy LORA_PASSWORD=wendy-pw "$NC" "$IT_NET.$F:4748" \
	'CREATE (:Wendy {via: "native"})' 0 </dev/null 2>&1)
it_log "over the native port: $OUT"
IT_BODY=$OUT
it_check "her write through $F (native) is refused: LORA_FORBIDDEN" \
	it_body_has "error=LORA_FORBIDDEN"
it_check "nothing written by her" count_is Wendy 0

it_query "$L" '{"query":"CREATE (:Last)"}'
BM=$(it_field bookmark)
it_check "the three nodes hold the same state (digest at $BM)" it_digests_equal "$BM"
it_done
