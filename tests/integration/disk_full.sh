#!/usr/bin/env bash
# A full disk under one node of three (real lorad processes on 127.0.41.1-3).
# Node 3's data directory is a 40 MB tmpfs, filled with a filler file until
# ENOSPC. (a) Node 3 a follower: writes through the others succeed; node 3
# still answers /health and local reads; writes sent to it get 200
# (forwarded) or an error with a code, in bounded time. (b) Space freed:
# node 3 catches up and its digest matches the others'. (c) Node 3 the
# leader: a write sent to it answers 507 LORA_NO_SPACE at once, a linearizable
# read 503 LORA_UNAVAILABLE, local reads still answer, a new leader takes
# writes, node 3 stays up, and after freeing the space every acknowledged
# write is on all three nodes with matching digests.
# Needs root (mount); exits 77 (CTest SKIP_RETURN_CODE) without it.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root to mount a tmpfs"
	exit 77
fi
it_setup 127.0.41 "$1"
MNT="$IT_DIR/n3"
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=40m tmpfs "$MNT"; then
	echo "SKIP: cannot mount a tmpfs on $MNT"
	rm -rf "$IT_DIR"
	exit 77
fi
dk_cleanup() {
	local f
	for f in "$IT_DIR"/n*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	sleep 0.3
	umount "$MNT" 2>/dev/null || umount -l "$MNT"
	it_cleanup
}
trap dk_cleanup EXIT
ME=$$
( # unmount even if this shell is killed outright (CTest timeout)
	trap '' INT TERM HUP
	while kill -0 "$ME" 2>/dev/null; do sleep 1; done
	sleep 2
	umount -l "$MNT" 2>/dev/null
	rm -rf "$IT_DIR"
) </dev/null >/dev/null 2>&1 &

WRITE_BOUND_S=15 # documented: 10 s write timeout + 2 s forwarding slack
PAD=$(head -c 20000 /dev/zero | tr '\0' 'x') # entries that must hit disk
ACKED=""                                     # k of every 200 answer

# dk_write NODE K -> $DK_STATUS, $DK_BODY, $DK_MS; records acknowledged K
dk_write() {
	local t0 out
	t0=$(date +%s%N)
	out=$(curl -s -m $((WRITE_BOUND_S + 5)) -w '\n%{http_code}' -X POST \
		"http://$IT_NET.$1:4747/query" \
		-d "{\"query\":\"CREATE (:P {k: \$k, pad: \$pad})\",\"params\":{\"k\":$2,\"pad\":\"$PAD\"},\"requestId\":\"dk-$2\"}")
	DK_MS=$((($(date +%s%N) - t0) / 1000000))
	DK_STATUS=${out##*$'\n'}
	DK_BODY=${out%$'\n'*}
	[ "$DK_STATUS" = 200 ] && ACKED="$ACKED $2"
}

# dk_answer_ok WHAT: the last answer is 200, or an error with a code, in time
dk_answer_ok() {
	if [ "$DK_STATUS" = 200 ]; then
		it_ok "$1: 200 in $DK_MS ms"
	elif grep -q '^{"error":{"code":"LORA_[A-Z_]*","message":"[^"]*","category":"[a-z]*"}' <<<"$DK_BODY"; then
		it_ok "$1: $DK_STATUS $(grep -o '"code":"[A-Z_]*"' <<<"$DK_BODY") in $DK_MS ms"
	else
		it_fail "$1: status '$DK_STATUS' body '${DK_BODY:0:200}' after $DK_MS ms"
	fi
	[ "$DK_MS" -le $((WRITE_BOUND_S * 1000)) ] ||
		it_fail "$1: answered after $DK_MS ms (bound $WRITE_BOUND_S s)"
}

dk_fill() { # fills node 3's disk until ENOSPC
	local msg
	msg=$(dd if=/dev/zero of="$MNT/filler" bs=1M 2>&1)
	dd if=/dev/zero of="$MNT/filler2" bs=4k 2>/dev/null
	it_check "filling node 3's disk ends in ENOSPC" grep -q "No space left" <<<"$msg"
	it_log "node 3 disk: $(df -k "$MNT" | tail -1)"
}

dk_same() { [ -n "$1" ] && [ "$1" = "$2" ] && [ "$1" = "$3" ]; }
dk_alive() { it_check "node 3 process alive ($1)" kill -0 "$(cat "$IT_DIR/n3.pid")"; }

# dk_converged WHAT: a write through the leader, then every node's digest
# at its index matches, and node 3 holds every acknowledged write.
dk_converged() {
	local l bm d1 d2 d3 ks n
	it_post_leader 1 /query '{"query":"CREATE (:Marker)"}' || it_fail "$1: marker write"
	bm=$(it_field bookmark)
	d1=$(it_digest 1 "$bm")
	d2=$(it_digest 2 "$bm")
	d3=$(it_digest 3 "$bm")
	it_check "$1: digests at $bm match ($d1 $d2 $d3)" dk_same "$d1" "$d2" "$d3"
	ks=$(echo $ACKED | tr ' ' ',')
	n=$(echo $ACKED | wc -w)
	it_query 3 "{\"query\":\"MATCH (p:P) WHERE p.k IN \$ks RETURN count(DISTINCT p.k) AS c\",\"params\":{\"ks\":[$ks]},\"format\":\"rowArrays\",\"consistency\":\"bookmark\",\"bookmark\":\"$bm\"}"
	it_check "$1: node 3 holds all $n acknowledged writes" grep -q "\"rows\":\[\[$n\]\]" <<<"$IT_BODY"
}

P=$(it_peers 3)
it_start_all 3 "$P" || it_done
L=$(it_leader 1)
if [ "$L" = 3 ]; then
	it_post 3 /cluster/transfer '{"to":1}'
	L=$(it_leader 2)
fi
it_check "node 3 starts as a follower (leader $L)" grep -qx '[12]' <<<"$L"
for k in 1 2 3; do dk_write $L $k; done
it_check "writes before the disk fills" [ "$(echo $ACKED | wc -w)" = 3 ]

# -- (a) a full follower
dk_fill
k=100
for i in 1 2 3 4; do
	for via in 1 2; do
		k=$((k + 1))
		dk_write $via $k
		it_check "full follower: write $k via node $via answers 200" [ "$DK_STATUS" = 200 ]
	done
	k=$((k + 1))
	dk_write 3 $k
	dk_answer_ok "full follower: write $k sent to node 3"
done
it_get 3 /health
it_check "full follower: /health answers ok" grep -q '"status":"ok"' <<<"$IT_BODY"
it_query 3 '{"query":"MATCH (p:P) RETURN count(p) AS c","format":"rowArrays"}'
it_check "full follower: local read answers 200" [ "$IT_STATUS" = 200 ]
it_log "full follower: local read on node 3: $IT_BODY"
dk_alive "full follower"

# -- (b) free the space: node 3 catches up
rm -f "$MNT/filler" "$MNT/filler2"
dk_converged "after freeing a follower's disk"
dk_alive "after freeing"

# -- (c) a full leader
L=$(it_leader 1)
it_post $L /cluster/transfer '{"to":3}'
it_check "node 3 becomes the leader" [ "$(it_leader 1)" = 3 ]
dk_fill
k=200
dk_write 3 $((++k))
dk_answer_ok "full leader: first write sent to node 3"
ENOSPC_SEEN=0
NEW_LEADER_ACK=0
t_end=$(($(date +%s) + 25))
while [ "$(date +%s)" -lt $t_end ]; do
	dk_write 3 $((++k))
	dk_answer_ok "full leader: write $k sent to node 3"
	[ "$DK_STATUS" = 507 ] && grep -q '"code":"LORA_NO_SPACE"' <<<"$DK_BODY" && ENOSPC_SEEN=1
	dk_write 1 $((++k))
	dk_answer_ok "full leader: write $k via node 1"
	[ "$DK_STATUS" = 200 ] && NEW_LEADER_ACK=$((NEW_LEADER_ACK + 1))
	[ $ENOSPC_SEEN = 1 ] && [ $NEW_LEADER_ACK -ge 3 ] && break
	sleep 0.2
done
it_check "full leader: a write sent to it answers 507 LORA_NO_SPACE" [ $ENOSPC_SEEN = 1 ]
it_check "full leader: a new leader acknowledges writes ($NEW_LEADER_ACK)" [ $NEW_LEADER_ACK -ge 3 ]
t0=$(date +%s%N)
it_query 3 '{"query":"MATCH (p:P) RETURN count(p) AS c","consistency":"linearizable"}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_check "full leader: a linearizable read answers 503 LORA_UNAVAILABLE ($IT_STATUS in $ms ms)" \
	grep -q '"code":"LORA_UNAVAILABLE"' <<<"$IT_BODY"
it_check "full leader: ... within 2 s" [ $ms -le 2000 ]
it_query 3 '{"query":"MATCH (p:P) RETURN count(p) AS c","format":"rowArrays"}'
it_check "full leader: a local read answers 200 ($IT_BODY)" [ "$IT_STATUS" = 200 ]
it_get 3 /health
it_check "full leader: /health answers ok" grep -q '"status":"ok"' <<<"$IT_BODY"
dk_alive "full leader"
rm -f "$MNT/filler" "$MNT/filler2"
dk_converged "after freeing the old leader's disk"
dk_alive "at the end"
it_log "acknowledged writes: $(echo $ACKED | wc -w)"
it_done
