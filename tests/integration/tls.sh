#!/usr/bin/env bash
# TLS on every port (docs/security.md "TLS") on a real three-node cluster
# (127.0.183.1-3) with tls = required and authentication on, certificates
# from deploy/gen-certs.sh, and a second CA that signs nothing of ours:
# - the cluster elects, a write through a follower (HTTP proxy over TLS)
#   and one through the shell (native, --ca) replicate: digests agree; an
#   admin call from the shell reaches the leader over HTTPS;
# - plaintext is refused on each port: HTTP, native, Bolt and peer, and
#   the refusals are logged;
# - 300 silent sockets on the HTTP port do not keep a TLS client out;
# - a client that trusts the other CA is refused (curl, lora, openssl);
# - the peer port wants a client certificate from the cluster CA;
# - a node restarted with another node's certificate (valid chain, wrong
#   id) is refused by the nodes that dial it, and its own frames (which
#   name its id) are refused by the nodes it dials, each logged; back with
#   its own certificate it catches up;
# - the leader killed: a new one is elected and takes writes over TLS;
# - the Neo4j JavaScript driver with the CA (when installed).
# Usage: tls.sh LORAD LORA
IT_TLS=1
. "$(dirname "$0")/lib.sh"
it_setup 127.0.183 "$1"
LORA=$2
here=$(cd "$(dirname "$0")" && pwd)
"$IT_GEN_CERTS" "$IT_DIR/other" 1@"$IT_NET".1 >/dev/null
CA=$IT_DIR/tls/ca.pem
OTHER=$IT_DIR/other/ca.pem
peers=$(it_peers 3)
it_start_all 3 "$peers" || it_done
L=$(it_leader 1)
it_check "leader elected over mutual TLS: node $L" [ -n "$L" ]
F=$((L % 3 + 1))
G=$((F % 3 + 1))

# -- writes over TLS replicate
it_query "$F" '{"query":"CREATE (:Tls {via: \"follower\"})"}'
it_check "write through follower $F (proxied to the leader over TLS): 200" [ "$IT_STATUS" = 200 ]
shell_write() { "$LORA" -q -a "$IT_NET.$G:4748" --ca "$CA" -c "CREATE (:Tls {via: 'shell'});"; }
it_check "write with the shell over native TLS (--ca)" shell_write
# The shell's admin calls go to the leader's HTTP port over HTTPS with the
# same CA (client/https.c): removing node 0 is refused with a 400 by
# whoever leads and changes nothing, so the answer proves the round trip.
shell_admin() { "$LORA" -q -a "$IT_NET.$G:4748" --ca "$CA" -c ":remove 0" 2>&1 | grep -q '^400 .*need'; }
it_check "an admin call from the shell over HTTPS (--ca): the leader's 400 comes back" shell_admin
applied() { # applied index of node $1 (its own line in /cluster/status)
	it_get "$1" /cluster/status
	grep -o "\"id\":$1,[^}]*\"appliedIndex\":[0-9]*" <<<"$IT_BODY" | grep -o '[0-9]*$'
}
commit_of_leader() { # the leader's own commit index
	it_get "$L" /cluster/status
	grep -o "\"id\":$L,[^}]*\"commitIndex\":[0-9]*" <<<"$IT_BODY" | grep -o '[0-9]*$'
}
IDX=$(commit_of_leader)
same_digests() {
	local d1 d2 d3
	d1=$(it_digest 1 "$IDX") d2=$(it_digest 2 "$IDX") d3=$(it_digest 3 "$IDX")
	it_same "$d1" "$d2" && it_same "$d1" "$d3"
}
it_check "the three digests agree at index $IDX" it_wait 30 same_digests
it_query "$G" '{"query":"MATCH (t:Tls) RETURN count(t) AS c","consistency":"linearizable","format":"rowArrays"}'
it_check "both writes read back on node $G" grep -q '\[\[2\]\]' <<<"$IT_BODY"

# -- plaintext refused on every port
http_plain() { ! curl -q -s -m 5 "http://$IT_NET.$L:4747/health" | grep -q ok; }
it_check "HTTP: plaintext refused" http_plain
it_check "HTTP: the refusal is logged" it_wait 10 grep -q "http: TLS handshake with .* refused" "$IT_DIR/n$L.log"
# (the shell retries for 15 s: 5 s without an answer is enough)
native_plain() { ! env -u LORA_CA timeout 5 "$LORA" -q -a "$IT_NET.$L:4748" --timeout 2000 -c "RETURN 1;" >/dev/null 2>&1; }
it_check "native: a plaintext client gets no answer" native_plain
bolt_plain() { # the Bolt magic and versions in clear: no version comes back
	local got
	got=$(timeout 5 bash -c "exec 3<>/dev/tcp/$IT_NET.$L/7687 &&
		printf '\x60\x60\xb0\x17\x00\x00\x04\x05\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00' >&3 &&
		head -c 4 <&3 | wc -c")
	[ "${got:-0}" = 0 ]
}
it_check "Bolt: plaintext refused" bolt_plain
it_check "Bolt: the refusal is logged" it_wait 10 grep -q "bolt: TLS handshake on connection .* refused" "$IT_DIR/n$L.log"
peer_plain() { # nng's SP hello in clear: no hello comes back
	local got
	got=$(timeout 5 bash -c "exec 3<>/dev/tcp/$IT_NET.$L/4749 &&
		printf '\x00SP\x00\x00\x50\x00\x00' >&3 && head -c 8 <&3 | wc -c")
	[ "${got:-0}" = 0 ]
}
it_check "peer: plaintext refused" peer_plain
it_check "peer: the refusal is logged" it_wait 10 grep -q "peer listener: TLS handshake with .* refused" "$IT_DIR/n$L.log"

# -- silent sockets do not lock TLS clients out of HTTP: from one address
# at most pending_per_source (128) wait for their handshake, a new one
# closes the oldest of them (from many addresses the cap of pending
# handshakes, 256, does the same)
silent=()
for _ in $(seq 300); do
	exec {fd}<>"/dev/tcp/$IT_NET.$L/4747" && silent+=("$fd")
done
https_ok() { curl -q -s -m 2 --cacert "$CA" "https://$IT_NET.$L:4747/health" | grep -q ok; }
it_check "HTTP: ${#silent[@]} silent sockets open, a TLS client still gets /health" https_ok
it_check "HTTP: closing the oldest pending handshakes is logged" it_wait 10 \
	grep -q "http: closed the oldest of 128 connections from .* without an authenticated request" "$IT_DIR/n$L.log"
for fd in "${silent[@]}"; do exec {fd}>&-; done

# -- the wrong CA, and no client certificate on the peer port
other_ca_curl() { curl -q -s -m 5 --cacert "$OTHER" "https://$IT_NET.$L:4747/health"; [ $? = 60 ]; }
it_check "HTTP: a client trusting another CA is refused (curl: 60)" other_ca_curl
other_ca_lora() { ! timeout 5 "$LORA" -q -a "$IT_NET.$L:4748" --ca "$OTHER" --timeout 2000 -c "RETURN 1;" >/dev/null 2>&1; }
it_check "native: a client trusting another CA is refused" other_ca_lora
sclient() { # sclient PORT CAFILE [more s_client options]: handshake verified
	local port=$1 ca=$2
	shift 2
	openssl s_client -connect "$IT_NET.$L:$port" -CAfile "$ca" -verify_return_error \
		"$@" </dev/null >"$IT_DIR/sclient.out" 2>&1 &&
		grep -q "Verify return code: 0 (ok)" "$IT_DIR/sclient.out"
}
it_check "Bolt: TLS verified with the cluster CA (openssl)" sclient 7687 "$CA"
bolt_other() { ! sclient 7687 "$OTHER"; }
it_check "Bolt: refused by a client trusting another CA (openssl)" bolt_other
peer_nocert() { # without a client certificate no hello comes back
	! timeout 10 bash -c "(printf '\x00SP\x00\x00\x50\x00\x00'; sleep 2) | openssl s_client -quiet \
		-connect $IT_NET.$L:4749 -CAfile '$CA' 2>/dev/null | head -c 8 | grep -q SP"
}
it_check "peer: no client certificate, no peer hello" peer_nocert
peer_withcert() { # a node's certificate gets the listener's hello
	timeout 10 bash -c "(printf '\x00SP\x00\x00\x50\x00\x00'; sleep 2) | openssl s_client -quiet \
		-connect $IT_NET.$L:4749 -CAfile '$CA' -cert '$IT_DIR/tls/node$F.pem' \
		-key '$IT_DIR/tls/node$F.key' 2>/dev/null | head -c 8 | grep -q SP"
}
it_check "peer: a node certificate from the cluster CA gets the hello" peer_withcert

# -- a node with another node's certificate is refused by those dialing it
it_stop "$F"
it_launch "$F" "$peers" --tls-cert "$IT_DIR/tls/node$G.pem" --tls-key "$IT_DIR/tls/node$G.key"
# (its HTTPS certificate names node $G too: curl would refuse it)
it_check "node $F starts with node $G's certificate" it_wait 60 grep -q "lorad $F ready" "$IT_DIR/n$F.log"
it_check "the nodes dialing $F refuse its certificate and log why" it_wait 20 \
	grep -q "peer $F (.*): TLS handshake refused: .*lora-node-$F" "$IT_DIR/n$L.log"
# ... and the nodes it dials refuse its frames: they name node $F, its
# certificate names node $G (the identity of an inbound stream is its
# certificate's, node/tls_engine.c)
it_check "node $L refuses frames from $F over a certificate naming $G" it_wait 20 \
	grep -q "frames from node $F over a certificate naming node $G" "$IT_DIR/n$L.log"
it_query "$L" '{"query":"CREATE (:Tls {via: \"while F is refused\"})"}'
it_check "the cluster keeps taking writes" [ "$IT_STATUS" = 200 ]
IDX=$(commit_of_leader)
applied_insecure() { # node $F's applied index, its certificate unchecked
	curl -s -k -m 5 "https://$IT_NET.$F:4747/cluster/status" |
		grep -o "\"id\":$F,[^}]*\"appliedIndex\":[0-9]*" | grep -o '[0-9]*$'
}
for k in 1 2 3; do
	it_query "$L" "{\"query\":\"CREATE (:Tls {via: \\\"while F is refused $k\\\"})\"}"
done
IDX2=$(commit_of_leader)
# node $G (healthy) applies the later entries: had $F's link worked it
# would have applied $IDX by then
behind() {
	local a g
	a=$(applied_insecure) g=$(applied "$G")
	[ -n "$a" ] && [ -n "$g" ] && [ "$g" -ge "$IDX2" ] && [ "$a" -lt "$IDX" ]
}
it_check "node $G applies $IDX2 while node $F does not get $IDX" it_wait 20 behind
it_stop "$F"
it_start "$F" "$peers"
caught_up() { local a; a=$(applied "$F"); [ -n "$a" ] && [ "$a" -ge "$IDX" ]; }
it_check "with its own certificate node $F catches up" it_wait 30 caught_up
it_check "digests agree again at $IDX" it_wait 30 same_digests

# -- the Neo4j JavaScript driver with the cluster CA
if command -v node >/dev/null && [ -d "$here/../client/bolt/node_modules/neo4j-driver" ]; then
	driver_tls() {
		OTHER_CA=$OTHER NODE_PATH="$here/../client/bolt/node_modules" timeout 120 \
			node "$here/../client/bolt/bolt_test.js" tls "$IT_NET" "$L" "$F"
	}
	it_check "neo4j-driver: bolt with the custom CA works, another CA and plaintext fail" driver_tls
else
	it_log "skipped the driver: node or neo4j-driver missing"
fi

# -- fail over over TLS
it_kill9 "$L"
new_leader() { local l; l=$(it_leader "$F"); it_other "$l" "$L"; }
it_check "a new leader after killing $L" it_wait 30 new_leader
L2=$(it_leader "$F")
shell_after() { "$LORA" -q -a "$IT_NET.$F:4748,$IT_NET.$G:4748" --ca "$CA" -c "CREATE (:Tls {via: 'after failover'});"; }
it_check "the new leader $L2 takes a write from the shell over TLS" shell_after
it_done
