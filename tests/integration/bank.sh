#!/usr/bin/env bash
# The bank test (issue 13) on three real nodes (127.0.201.1-3): ten
# accounts of 1000; clients move money between them in conflicting
# explicit transactions (read both balances, write both computed by the
# client, record the transfer with its id) over HTTP (POST /tx, through
# any node) and, when the neo4j-driver is installed, over Bolt (managed
# transactions with the driver's retries, neo4j:// routing); the leader is
# killed -9 once in the middle. Then: the total is 10000, every account
# holds exactly 1000 plus what the recorded transfers moved in and out (a
# lost update breaks that), no transfer id is recorded twice, and every
# transfer a client saw acknowledged is recorded (exactly once).
# Seeded from LORA_SEED (printed); BANK_SECONDS sets the run's length.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.201 "$1"
here=$(cd "$(dirname "$0")" && pwd)
SEED=${LORA_SEED:-$RANDOM}
SECS=${BANK_SECONDS:-16}
it_log "LORA_SEED=$SEED, $SECS s"

it_start_all 3 "$(it_peers 3)" || it_done
L=$(it_leader 1)
it_check "a leader" test -n "$L"
it_query "$L" '{"query":"UNWIND range(0, 9) AS i CREATE (:Acct {id: i, bal: 1000})"}'
it_check "ten accounts" test "$IT_STATUS" = 200

# http_client C END: transfers until END (epoch s), acknowledged ids in
# acked.hC; each request to a random node (a follower passes it on)
http_client() {
	local c=$1 end=$2 k=0 out st body id a b m x y
	RANDOM=$((SEED * 16 + c))
	while [ "$(date +%s)" -lt "$end" ]; do
		k=$((k + 1))
		a=$((RANDOM % 10)) b=$((RANDOM % 9)) m=$((RANDOM % 50 + 1))
		[ "$b" -ge "$a" ] && b=$((b + 1))
		local node=$((RANDOM % 3 + 1)) tid="h$c-$k"
		out=$(curl -s -m 20 -w '\n%{http_code}' -X POST "http://$IT_NET.$node:4747/tx" \
			-d '{"format":"rowArrays","statements":[{"statement":"MATCH (a:Acct {id: $a}), (b:Acct {id: $b}) RETURN a.bal, b.bal","parameters":{"a":'$a',"b":'$b'}}]}')
		st=${out##*$'\n'} body=${out%$'\n'*}
		[ "$st" = 201 ] || continue
		id=$(grep -o '"id":"[0-9a-f]*"' <<<"$body" | cut -d'"' -f4)
		read -r x y < <(grep -o '"rows":\[\[[0-9]*,[0-9]*\]\]' <<<"$body" | grep -o '[0-9]\+' | tr '\n' ' ')
		if [ -z "$id" ] || [ -z "${y:-}" ] || [ "$x" -lt "$m" ]; then
			curl -s -m 20 -X DELETE "http://$IT_NET.$node:4747/tx/$id" >/dev/null
			continue
		fi
		out=$(curl -s -m 20 -w '\n%{http_code}' -X POST "http://$IT_NET.$node:4747/tx/$id/commit" \
			-d '{"statements":[{"statement":"MATCH (a:Acct {id: $a}), (b:Acct {id: $b}) SET a.bal = $x, b.bal = $y CREATE (:Transfer {tid: $t, src: $a, dst: $b, amt: $m})","parameters":{"a":'$a',"b":'$b',"x":'$((x - m))',"y":'$((y + m))',"t":"'$tid'","m":'$m'}}]}')
		[ "${out##*$'\n'}" = 200 ] && echo "$tid" >>"$IT_DIR/acked.h$c"
	done
	return 0
}

END=$(($(date +%s) + SECS))
PIDS=()
NHTTP=8
BOLT=0
if command -v node >/dev/null && [ -d "$here/../client/bolt/node_modules/neo4j-driver" ]; then
	BOLT=1
	NHTTP=4
	for c in 1 2 3 4; do
		NODE_PATH="$here/../client/bolt/node_modules" timeout $((SECS + 90)) \
			node "$here/../client/bolt/bank.js" "$IT_NET" "$c" "$END" "$SEED" \
			"$IT_DIR/acked.b$c" >"$IT_DIR/bolt$c.log" 2>&1 &
		PIDS+=($!)
	done
else
	it_log "neo4j-driver not installed (npm install --prefix tests/client/bolt): HTTP clients only"
fi
for c in $(seq 1 $NHTTP); do
	http_client "$c" "$END" &
	PIDS+=($!)
done
it_log "$NHTTP HTTP clients, $((BOLT * 4)) Bolt clients"

# the leader is killed once, a third of the way in
acked_count() { cat "$IT_DIR"/acked.* 2>/dev/null | wc -l; }
some_acked() { [ "$(acked_count)" -ge 10 ]; }
it_check "transfers are acknowledged before the kill" it_wait $((SECS / 3 + 10)) some_acked
BEFORE=$(acked_count)
it_log "killing leader $L after $BEFORE acknowledged transfers"
it_kill9 "$L"
for p in "${PIDS[@]}"; do wait "$p"; done
AFTER=$(acked_count)
it_log "$AFTER transfers acknowledged in all"
it_check "transfers are acknowledged after the kill" test "$AFTER" -gt "$BEFORE"
kind_acked() { [ "$(cat "$IT_DIR"/acked.$1* 2>/dev/null | wc -l)" -gt 0 ]; }
it_log "HTTP: $(cat "$IT_DIR"/acked.h* 2>/dev/null | wc -l), Bolt: $(cat "$IT_DIR"/acked.b* 2>/dev/null | wc -l)"
it_check "HTTP transactions were acknowledged" kind_acked h
[ "$BOLT" = 1 ] && it_check "Bolt transactions were acknowledged" kind_acked b
for c in 1 2 3 4; do
	[ "$BOLT" = 1 ] || break
	it_check "bolt client $c ended cleanly" grep -q '^done' "$IT_DIR/bolt$c.log"
done

# the checks, on whoever leads now
O=$((L % 3 + 1))
N=$(it_leader "$O")
it_check "a new leader" it_other "$N" "$L"
lin() { it_query "$N" '{"format":"rowArrays","consistency":"linearizable","query":"'"$1"'"}'; }
lin 'MATCH (a:Acct) RETURN sum(a.bal) AS s, count(a) AS c'
it_check "the total is conserved (10000 in 10 accounts)" grep -q '"rows":\[\[10000,10\]\]' <<<"$IT_BODY"
# (each read and its status inside the checked function: a failed or
# empty answer must not pass the checks on it)
read_transfers() {
	lin 'MATCH (t:Transfer) RETURN t.tid, t.src, t.dst, t.amt'
	[ "$IT_STATUS" = 200 ] || return 1
	grep -o '\["[^]]*\]' <<<"$IT_BODY" | tr -d '[]"' >"$IT_DIR/transfers"
	it_log "$(wc -l <"$IT_DIR/transfers") transfers recorded"
}
it_check "the transfers are read (200)" read_transfers
no_dup() { [ -z "$(cut -d, -f1 "$IT_DIR/transfers" | sort | uniq -d)" ]; }
it_check "no transfer id is recorded twice" no_dup
no_lost() { # every acknowledged id is recorded
	cat "$IT_DIR"/acked.* | sort >"$IT_DIR/acked"
	cut -d, -f1 "$IT_DIR/transfers" | sort >"$IT_DIR/recorded"
	[ -z "$(comm -23 "$IT_DIR/acked" "$IT_DIR/recorded")" ]
}
it_check "every acknowledged transfer is recorded" no_lost
balances_add_up() { # 1000 + in - out, per account, from the recorded transfers
	lin 'MATCH (a:Acct) RETURN a.id, a.bal'
	[ "$IT_STATUS" = 200 ] || return 1
	grep -o '\[[0-9]*,[0-9-]*\]' <<<"$IT_BODY" | tr -d '[]' >"$IT_DIR/balances"
	[ "$(wc -l <"$IT_DIR/balances")" = 10 ] || return 1
	awk -F, 'NR == FNR { d[$2] -= $4; d[$3] += $4; next }
		{ if ($2 != 1000 + d[$1]) { print "account " $1 ": " $2 " != " 1000 + d[$1]; bad = 1 } }
		END { exit bad }' "$IT_DIR/transfers" "$IT_DIR/balances"
}
it_check "every balance is 1000 plus its recorded transfers (no lost update)" balances_add_up
it_done
