#!/usr/bin/env bash
# CALL { ... } IN TRANSACTIONS while leadership moves (127.0.210.1-3): a
# long statement (UNWIND range(1, N) ... OF 10 ROWS) is sent to the leader,
# then to a follower, and leadership is transferred once some of its
# chunks committed; a third time the leader is paused (SIGSTOP) until
# another node leads. No chunk may apply twice: every :E node has its own i
# (the leader used to answer a chunk refused after the move with
# LORA_UNAVAILABLE, "not executed", and the HTTP reroute ran the whole
# statement again on the new leader: 20 % more nodes than rows). The
# answer is honest: 200 only when every row committed once, else
# LORA_UNKNOWN_OUTCOME naming the transactions committed before.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.210 "$1"
N=${INTX_MOVES_ROWS:-20000}
P=$(it_peers 3)
it_start_all 3 "$P" || it_done

count_at_least() { # count_at_least NODE LABEL MIN
	it_query "$1" '{"query":"MATCH (e:'"$2"') RETURN count(e) AS c","format":"rowArrays"}'
	local c
	c=$(grep -o '"rows":\[\[[0-9]*' <<<"$IT_BODY" | grep -o '[0-9]*$')
	[ -n "$c" ] && [ "$c" -ge "$3" ]
}

at_most() { [ -n "$1" ] && [ "$1" -le "$2" ]; }

new_leader() { # new_leader NODE OLD: NODE sees a leader other than OLD
	it_get "$1" /cluster/status
	local l
	l=$(grep -o '"leader":[0-9]*' <<<"$IT_BODY" | cut -d: -f2)
	it_other "$l" "$2"
}

# moved_once VIA LABEL [stop]: the statement goes to node VIA, leadership
# moves while it runs (a transfer, or with "stop" the leader is paused
# with SIGSTOP until another node leads); checks what landed and what the
# client was told.
moved_once() {
	local via=$1 label=$2 l t out code body c d
	l=$(it_leader 1)
	t=$((l % 3 + 1))
	[ "$t" = "$via" ] && t=$((t % 3 + 1))
	out="$IT_DIR/$label.out"
	curl -s -m 200 -w '\n%{http_code}' -X POST "http://$IT_NET.$via:4747/query" \
		-d '{"query":"UNWIND range(1, '"$N"') AS i CALL { WITH i CREATE (:'"$label"' {i: i}) } IN TRANSACTIONS OF 10 ROWS"}' \
		>"$out" &
	local pid=$!
	it_wait 60 count_at_least "$l" "$label" 200 ||
		it_fail "$label: no chunk committed on leader $l"
	if [ "$3" = stop ]; then
		# the leader is paused until another node leads
		kill -STOP "$(cat "$IT_DIR/n$l.pid")"
		it_wait 60 new_leader "$t" "$l" || it_fail "$label: no new leader"
		kill -CONT "$(cat "$IT_DIR/n$l.pid")"
		it_log "$label via node $via: leader $l paused, node $t sees $(it_leader "$t")"
	else
		it_post_leader "$l" /cluster/transfer "{\"to\":$t}"
		it_log "$label via node $via: leadership $l -> $t ($IT_STATUS)"
	fi
	wait "$pid"
	code=$(tail -n 1 "$out")
	body=$(head -n -1 "$out")
	it_log "$label answer: $code ${body:0:300}"
	it_post_leader 1 /query '{"query":"MATCH (e:'"$label"') RETURN count(e) AS c, count(DISTINCT e.i) AS d","consistency":"linearizable","format":"rowArrays"}'
	c=$(grep -o '"rows":\[\[[0-9]*' <<<"$IT_BODY" | grep -o '[0-9]*$')
	d=$(grep -o '"rows":\[\[[0-9]*,[0-9]*' <<<"$IT_BODY" | grep -o '[0-9]*$')
	it_log "$label: $c nodes, $d distinct i, $N rows"
	it_check "$label via node $via: no chunk applied twice ($c nodes, $d distinct)" it_same "$c" "$d"
	it_check "$label: at most $N nodes ($c)" at_most "$c" "$N"
	if [ "$code" = 200 ]; then
		it_check "$label: 200 means every row committed ($c of $N)" it_same "$c" "$N"
	else
		it_check "$label: a failure is LORA_UNKNOWN_OUTCOME ($code)" \
			grep -q 'LORA_UNKNOWN_OUTCOME' <<<"$body"
		it_check "$label: ... naming what committed" \
			grep -q 'transactions committed\|chunks committed' <<<"$body"
	fi
}

it_need_leader 1
L=$IT_LEADER
moved_once "$L" E1 transfer
L=$(it_leader 1)
moved_once $((L % 3 + 1)) E2 transfer
L=$(it_leader 1)
moved_once "$L" E3 stop
it_done
