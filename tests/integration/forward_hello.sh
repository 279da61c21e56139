#!/usr/bin/env bash
# A member's connection to another member's native port is exempt from
# the authentication deadline by its own proof, never by its address
# (node/native.c, node/forward.c), with auth_timeout_ms 1000:
#   - a write through follower F's native port is passed to the leader L
#     over forward.c's connection;
#   - L is killed and restarted (now a follower): F's connection to it is
#     redialed and then stays idle, as no write goes there; the hello F
#     sends right after dialing (the cluster secret alone) exempts it, so
#     L does not close it at the deadline (without the hello L closes and
#     F redials it every auth_timeout_ms, logging "native: closed a
#     connection from F: not authenticated within auth_timeout_ms");
#   - a silent client connection to L (an SP header, then nothing) is
#     still closed at the deadline and logged (the check above can fail).
# Usage: forward_hello.sh LORAD LORA
# 127.1.160.x
. "$(dirname "$0")/lib.sh"
it_setup 127.1.160 "$1"
LORA=$2
P=$(it_peers 3)
it_start_all 3 "$P" --auth-timeout-ms 1000 || it_done
L=$(it_leader 1)
[ -n "$L" ] && it_ok "leader elected: node $L" || {
	it_fail "no leader"
	it_done
}
F=$((L % 3 + 1))

native_write() {
	"$LORA" -q -a "$IT_NET.$F:4748" --timeout 20000 \
		-c "CREATE (:Hello {n: 1});" >"$IT_DIR/w.out" 2>&1
}
it_check "a write through follower $F's native port" native_write

it_kill9 "$L"
it_start "$L" "$P" --auth-timeout-ms 1000
other_leader() { it_other "$(it_leader "$F")" "" && [ "$(it_leader "$F")" != "$L" ]; }
it_check "node $L back, another node leads" it_wait 20 other_leader
closed_from_f() {
	grep -q "native: closed a connection from $IT_NET.$F: not authenticated" \
		"$IT_DIR/n$L.log"
}
# F's dialer retries every 50-500 ms, and the deadline is 1 s: 6 s see
# it closed several times over if the hello did not exempt it
stays_open() { ! it_wait 6 closed_from_f; }
it_check "F's idle connection to node $L is not closed at the deadline" stays_open

# an SP header as a req0 client sends it (nng makes a pipe of it), then
# nothing
exec {silent}<>"/dev/tcp/$IT_NET.$L/4748"
printf '\x00SP\x00\x00\x30\x00\x00' >&"$silent"
closed_silent() { grep -q "native: closed a connection from .*: not authenticated within auth_timeout_ms (1000)" "$IT_DIR/n$L.log"; }
it_check "a silent connection to node $L is closed at the deadline" it_wait 10 closed_silent
exec {silent}>&-
it_done
