#!/usr/bin/env bash
# A leader whose apply thread is behind its followers' until it has
# applied the auth bootstrap (the test hook LORA_APPLY_LAG_TESTING) at the
# cluster's first start: a follower applies the bootstrap (first admin and
# cluster secret) and passes writes on with the secret's proof before the
# leader has applied it. The leader waits for its own apply instead of
# refusing the proof: every write from the first one taken on is taken,
# and no node logs a "refused forwarded" line. The same for native writes
# sent to the follower (native_cursor, every other round), which it
# passes to the leader's native port (node/forward.c, node/native.c):
# none is refused as unauthorized. Needs the node's test hooks
# (scripts/test.sh). Usage: auth_apply_lag.sh LORAD NATIVE_CURSOR
. "$(dirname "$0")/lib.sh"
it_setup 127.0.231 "$1"
NC=$2
P=$(it_peers 3)
export LORA_APPLY_LAG_TESTING=300
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

# Writes through the follower from the moment a leader is known, one
# every 50 ms without waiting for the answers: the follower passes them on
# with the secret's proof once it has applied the bootstrap, while the
# leader's own apply may still be behind (writes it cannot judge yet would
# answer 401 without the wait, or 503 once the wait runs out).
mkdir -p "$IT_DIR/st" "$IT_DIR/sb" "$IT_DIR/nt"
pids=""
for t in $(seq 1 40); do
	curl -s -m 30 -o "$IT_DIR/sb/$t" -w '%{http_code}' -X POST \
		"$IT_SCHEME://$IT_NET.$F:4747/query" \
		-d "{\"query\":\"CREATE (:Lag {t: $t})\"}" >"$IT_DIR/st/$t" &
	pids="$pids $!"
	# the same over the native port: the follower passes the write to
	# the leader's native port with the proof (node/forward.c), which
	# the leader must wait for too (node/native.c identify)
	[ -n "$NC" ] && [ $((t % 2)) = 0 ] &&
		"$NC" "$IT_NET.$F:4748" "CREATE (:LagN {t: $t})" 10 \
			</dev/null >"$IT_DIR/nt/$t" 2>&1 &
	pids="$pids $!"
	sleep 0.05
done
wait $pids
# A write that found NODE_AUTH_SECRET_WAITERS_MAX others waiting is
# answered "too many ... wait: retry" (503) by design, whenever it came:
# a slow machine makes the leader's wait longer and the crowd bigger (CI).
# Any other refusal after a write was taken means the wait did not work.
ok=0 refused_after=0 crowded=0 statuses=""
for t in $(seq 1 40); do
	s=$(cat "$IT_DIR/st/$t")
	statuses="$statuses $s"
	if [ "$s" = 200 ]; then
		ok=$((ok + 1))
	elif [ "$s" = 503 ] && grep -q 'too many requests already wait' "$IT_DIR/sb/$t"; then
		crowded=$((crowded + 1))
	elif [ $ok -gt 0 ]; then
		refused_after=$((refused_after + 1))
	fi
	[ "$s" = 200 ] || it_log "write $t: $s $(head -c 300 "$IT_DIR/sb/$t")"
done
it_log "writes answered 'too many wait, retry': $crowded"
it_check "no write answered 401" sh -c "! grep -qw 401 '$IT_DIR'/st/*"
it_check "writes through follower $F answer 200 ($ok)" [ $ok -ge 10 ]
it_check "no write refused after the first was taken (statuses:$statuses)" [ $refused_after = 0 ]
it_check "no node refused a forwarded proof" \
	sh -c "! grep -q 'refused forwarded' '$IT_DIR'/n*.log"
it_query $L '{"query":"MATCH (x:Lag) RETURN count(x) AS c","format":"rowArrays","consistency":"linearizable"}'
it_check "every write that answered 200 is there ($ok)" grep -q "\"rows\":\[\[$ok\]\]" <<<"$IT_BODY"
if [ -n "$NC" ]; then
	nok=0 nrefused=""
	for t in $(seq 2 2 40); do
		if grep -q 'error=-$' "$IT_DIR/nt/$t"; then
			nok=$((nok + 1))
		elif grep -q "UNAUTHORIZED" "$IT_DIR/nt/$t"; then
			nrefused="$nrefused $t"
		fi
	done
	it_check "no native write through follower $F refused as unauthorized (refused:$nrefused)" [ -z "$nrefused" ]
	it_check "native writes through follower $F taken ($nok of 20)" [ $nok -ge 5 ]
	it_query $L '{"query":"MATCH (x:LagN) RETURN count(x) AS c","format":"rowArrays","consistency":"linearizable"}'
	it_check "every native write taken is there ($nok)" grep -q "\"rows\":\[\[$nok\]\]" <<<"$IT_BODY"
fi
it_done
