#!/usr/bin/env bash
# A follower passes the HTTP writes that arrive while its earlier ones are
# in flight to the leader together, as one batch (node/batch.h, proxy.c),
# and the leader runs each as a request of its own (http_api.c). On a
# real three-node cluster whose followers keep one request in flight
# (--proxy-batch-inflight 1), 60 writes sent at once to a follower, by
# three users:
#   - each write of a batch is checked on the leader as its own user, not
#     as whoever's write came first: the admin's index DDL answers 200, the
#     writer's answers 403 (the leader refuses it: DDL needs admin), and
#     both their CREATEs answer 200 and commit once; the reader's writes
#     answer 403 (refused by the follower itself);
#   - the follower sent batches (/metrics), and the leader refused none;
#   - a client cannot send a batch itself: without X-Lora-Forwarded, or
#     with it but with a password instead of a member's proof: 403;
#   - 60 more writes, each with a requestId, with the leadership moved to
#     the other follower in the middle of them: each answers 200, or 503
#     (LORA_UNKNOWN_OUTCOME, LORA_UNAVAILABLE), none is applied twice,
#     every one answered 200 is there, and sent again with the same
#     requestId every one answers 200 and is still there once;
#   - the three nodes' digests agree.
# 127.1.181.x (127.1.182.x with TLS on every port: IT_TLS=1).
. "$(dirname "$0")/lib.sh"
it_setup 127.1.181 "$1"
P=$(it_peers 3)
it_start_all 3 "$P" --proxy-batch-inflight 1 || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

it_query "$L" "{\"query\":\"CREATE USER wendy SET PASSWORD 'wendy-pw' CHANGE NOT REQUIRED\"}"
it_query "$L" '{"query":"GRANT ROLE writer TO wendy"}'
it_query "$L" "{\"query\":\"CREATE USER rita SET PASSWORD 'rita-pw' CHANGE NOT REQUIRED\"}"
it_query "$L" '{"query":"GRANT ROLE reader TO rita"}'
it_check "users made on the leader" it_status_is 200
it_caught_up "$F" "$L" "$(it_field bookmark)"
# each user's password checked once on the follower before the burst
# (argon2id; later requests find it remembered), and a write each, so
# that the follower holds a connection to the leader (a write finding
# none goes the worker's way and has one dialed for those after it)
for u in admin:$IT_ADMIN_PASSWORD wendy:wendy-pw rita:rita-pw; do
	curl -s -m 20 -u "$u" -o /dev/null -X POST \
		"$IT_SCHEME://$IT_NET.$F:4747/query" -d '{"query":"CREATE (:Warm)"}'
done

metric() { # metric NODE NAME -> value (0 if absent)
	curl -s -m 5 "$IT_SCHEME://$IT_NET.$1:4747/metrics" |
		awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}
b0=$(metric "$F" lora_proxy_batches_total)

# 60 writes at once, by i % 6: 0 the admin's index DDL (a label each),
# 1 and 2 the admin's CREATE, 3 wendy's CREATE, 4 wendy's index DDL, 5
# rita's CREATE; even ones with a requestId
want_of() { case $(($1 % 6)) in 4 | 5) echo 403 ;; *) echo 200 ;; esac; }
pids=()
for i in $(seq 0 59); do
	q="CREATE (:Pb {i: $i})"
	case $((i % 6)) in
	0) u=admin:$IT_ADMIN_PASSWORD q="CREATE INDEX FOR (n:Pa$i) ON (n.k)" ;;
	1 | 2) u=admin:$IT_ADMIN_PASSWORD ;;
	3) u=wendy:wendy-pw ;;
	4) u=wendy:wendy-pw q="CREATE INDEX FOR (n:Pw$i) ON (n.k)" ;;
	5) u=rita:rita-pw ;;
	esac
	rid=""
	[ $((i % 2)) = 0 ] && rid=",\"requestId\":\"pb-$i\""
	curl -s -m 30 -u "$u" -o "$IT_DIR/w$i.body" -w '%{http_code}' \
		-X POST "$IT_SCHEME://$IT_NET.$F:4747/query" \
		-d "{\"query\":\"$q\"$rid}" >"$IT_DIR/w$i.status" &
	pids+=($!)
done
wait "${pids[@]}" # (lib.sh's watcher is a background job too)

statuses_ok() {
	local i want s bad=0
	for i in $(seq 0 59); do
		want=$(want_of "$i")
		s=$(cat "$IT_DIR/w$i.status")
		if [ "$s" != "$want" ]; then
			it_log "write $i: $s (want $want): $(cat "$IT_DIR/w$i.body")"
			bad=1
		fi
		if [ "$want" = 403 ] && ! grep -q LORA_FORBIDDEN "$IT_DIR/w$i.body"; then
			it_log "write $i: not LORA_FORBIDDEN: $(cat "$IT_DIR/w$i.body")"
			bad=1
		fi
	done
	return $bad
}
it_check "40 writes answered 200; the writer's DDL and the reader's writes 403" statuses_ok

it_query "$L" '{"query":"MATCH (n:Pb) RETURN count(n) AS c, count(DISTINCT n.i) AS d","format":"rowArrays"}'
it_log "leader: $IT_BODY"
it_check "the leader holds each CREATE allowed once (30)" it_body_has '"rows":\[\[30,30\]\]'
it_query "$L" '{"query":"MATCH (n:Pb) WHERE n.i % 6 = 5 RETURN count(n) AS c","format":"rowArrays"}'
it_check "and none of the reader's" it_body_has '"rows":\[\[0\]\]'
BM=$(it_field bookmark)

b1=$(metric "$F" lora_proxy_batches_total)
w1=$(metric "$F" lora_proxy_batched_writes_total)
r1=$(metric "$F" lora_proxy_batches_refused_total)
it_log "follower $F: $((b1 - b0)) batches, $w1 writes in batches, $r1 refused"
it_check "the follower sent batches" test "$b1" -gt "$b0"
it_check "of more than one write each on average" test "$w1" -gt "$b1"
it_check "the leader refused none" test "$r1" = 0

# a batch from a client, not a member
batch='LB1 1
1 0 0 22
{"query":"CREATE (:X)"}'
it_post "$L" /query/batch "$batch"
it_check "a client's batch is refused (403)" it_status_is 403
out=$(curl -s -m 20 -w '\n%{http_code}' -H 'X-Lora-Forwarded: 1' \
	-X POST "$IT_SCHEME://$IT_NET.$L:4747/query/batch" --data-binary "$batch")
IT_STATUS=${out##*$'\n'}
it_check "also when it says it was passed on, with a password (403)" it_status_is 403
it_query "$L" '{"query":"MATCH (n:X) RETURN count(n) AS c","format":"rowArrays"}'
it_check "and nothing of it ran" it_body_has '"rows":\[\[0\]\]'

# the second burst, the leadership moved to node O in its middle
O=$((6 - L - F))
pids=()
for i in $(seq 100 159); do
	curl -s -m 30 -o "$IT_DIR/t$i.body" -w '%{http_code}' \
		-X POST "$IT_SCHEME://$IT_NET.$F:4747/query" \
		-d "{\"query\":\"CREATE (:Pt {i: $i})\",\"requestId\":\"pt-$i\"}" \
		>"$IT_DIR/t$i.status" &
	pids+=($!)
	if [ "$i" = 130 ]; then
		curl -s -m 30 -o "$IT_DIR/transfer.body" -X POST \
			"$IT_SCHEME://$IT_NET.$L:4747/cluster/transfer" -d "{\"to\":$O}" &
		pids+=($!)
	fi
done
wait "${pids[@]}"
it_log "transfer: $(cat "$IT_DIR/transfer.body")"
it_check "node $O leads after the transfer" it_wait 30 bash -c \
	"curl -s -m 5 $IT_SCHEME://$IT_NET.$F:4747/cluster/status | grep -q '\"leader\":$O'"
answered_ok() { # each 200, or 503 with a code that allows it
	local i s bad=0
	for i in $(seq 100 159); do
		s=$(cat "$IT_DIR/t$i.status")
		case $s in
		200) ;;
		503) grep -qE 'LORA_UNKNOWN_OUTCOME|LORA_UNAVAILABLE' "$IT_DIR/t$i.body" || bad=1 ;;
		*) bad=1 ;;
		esac
		[ "$bad" = 0 ] || { it_log "write $i: $s $(cat "$IT_DIR/t$i.body")"; return 1; }
	done
}
it_check "across the transfer each write answered 200 or a 503 that allows it" answered_ok
ok200=$(grep -l '^200$' "$IT_DIR"/t1*.status | wc -l)
it_log "$ok200 of 60 answered 200 across the transfer"
pt_count_is() { # pt_count_is N: N :Pt nodes, N distinct i, on the leader
	it_post_leader "$F" /query '{"query":"MATCH (n:Pt) RETURN count(n) AS c, count(DISTINCT n.i) AS d","format":"rowArrays"}' &&
		it_body_has "\"rows\":\[\[$1,$1\]\]"
}
pt_once() { # none twice, and every write answered 200 there
	it_post_leader "$F" /query '{"query":"MATCH (n:Pt) RETURN count(n) AS c, count(DISTINCT n.i) AS d, collect(n.i) AS l","format":"rowArrays"}' || return 1
	local c d i
	c=$(grep -o '"rows":\[\[[0-9]*' <<<"$IT_BODY" | grep -o '[0-9]*$')
	d=$(grep -o '"rows":\[\[[0-9]*,[0-9]*' <<<"$IT_BODY" | grep -o '[0-9]*$')
	[ -n "$c" ] && [ "$c" = "$d" ] || return 1
	for i in $(seq 100 159); do
		if [ "$(cat "$IT_DIR/t$i.status")" = 200 ] &&
			! grep -qE "[[,]$i[],]" <<<"$IT_BODY"; then
			it_log "write $i answered 200 and is missing"
			return 1
		fi
	done
}
it_check "none applied twice, every 200 there" pt_once
resend_all() { # each again, with its requestId: 200 every time
	local i
	for i in $(seq 100 159); do
		it_query "$F" "{\"query\":\"CREATE (:Pt {i: $i})\",\"requestId\":\"pt-$i\"}"
		[ "$IT_STATUS" = 200 ] || { it_log "again $i: $IT_STATUS $IT_BODY"; return 1; }
	done
}
it_check "sent again with the same requestId, each answers 200" resend_all
it_check "and each is there once (60)" pt_count_is 60
BM=$(it_field bookmark)

it_check "digests equal" it_digests_equal "$BM"
it_done
