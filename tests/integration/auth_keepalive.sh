#!/usr/bin/env bash
# Credentials on a keep-alive connection (127.2.50.1-3): a node remembers
# the credentials a connection's last request was accepted with and lets
# the next request with the same header through without checking them
# again (node/http_auth.c). What a client must see all the same, on one
# connection that stays open, to the leader and through a follower (whose
# pooled connection to the leader carries X-Lora-Identity):
# - a REVOKE ROLE takes effect at the connection's next write (403), a
#   GRANT ROLE too (200);
# - after a new password, the old one on the same connection is 401;
# - after DROP USER, the same connection is 401.
# Each change is first seen from new connections on that node (so it is
# applied there); the kept-open connection then gets one try.
# Usage: auth_keepalive.sh LORAD
. "$(dirname "$0")/lib.sh"
it_setup 127.2.50 "$1"
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

# admin STATEMENT: run as the admin (the .curlrc) through whoever leads.
admin() { it_post_leader "$L" /query "{\"query\":\"$1\"}"; }

# ka_open VAR NODE: a new connection to NODE, its fd in VAR.
ka_open() {
	local -n fd_=$1
	exec {fd_}<>"/dev/tcp/$IT_NET.$2/4747"
}

# ka_write FD CRED: one write as CRED (user:password) on the open
# connection FD; the answer's status in KA_STATUS ("" when the connection
# answered nothing within 20 s or closed).
ka_write() {
	local fd=$1 body='{"query":"CREATE (:Ka)"}' line len=0 b64
	b64=$(printf '%s' "$2" | base64 -w0)
	KA_STATUS=""
	printf 'POST /query HTTP/1.1\r\nHost: t\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n%s' \
		"$b64" "${#body}" "$body" >&"$fd" 2>/dev/null || return 0
	IFS= read -r -t 20 line <&"$fd" || return 0
	line=${line%$'\r'}
	local status=${line#HTTP/1.1 }
	status=${status%% *}
	while IFS= read -r -t 20 line <&"$fd"; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		case ${line,,} in content-length:*) len=${line#*: } ;; esac
	done
	[ "$len" -gt 0 ] && { IFS= read -r -N "$len" -t 20 line <&"$fd" || return 0; }
	KA_STATUS=$status
}

# fresh NODE CRED STATUS: a write as CRED on a new connection to NODE is
# answered STATUS (the change is applied there).
fresh() {
	local out
	out=$(curl -q -s -m 20 -o /dev/null -w '%{http_code}' -u "$2" \
		-X POST "http://$IT_NET.$1:4747/query" -d '{"query":"CREATE (:Ka)"}')
	[ "$out" = "$3" ]
}
# ka_is FD CRED STATUS: one try on the kept-open connection.
ka_is() { ka_write "$1" "$2" && [ "$KA_STATUS" = "$3" ]; }

admin "CREATE USER kal SET PASSWORD 'pw-one' CHANGE NOT REQUIRED"
admin "GRANT ROLE writer TO kal"
both_write() { fresh "$L" kal:pw-one 200 && fresh "$F" kal:pw-one 200; }
it_check "kal can write through both nodes" it_wait 30 both_write

# after_change NODE FD STATEMENT WHAT CRED STATUS: the admin's change, seen
# by a fresh connection to NODE, then on the kept-open one (FD).
after_change() {
	admin "$3"
	it_check "node $1: $4 is applied there" it_wait 30 fresh "$1" "$5" "$6"
	it_check "node $1: the same connection's next write is $6" ka_is "$2" "$5" "$6"
}

for node in "$L" "$F"; do
	ka_open fd "$node"
	it_check "node $node: a kept-open connection writes as kal" ka_is "$fd" kal:pw-one 200
	it_check "node $node: and again (its credentials remembered)" ka_is "$fd" kal:pw-one 200
	after_change "$node" "$fd" "REVOKE ROLE writer FROM kal" REVOKE kal:pw-one 403
	after_change "$node" "$fd" "GRANT ROLE writer TO kal" GRANT kal:pw-one 200
	after_change "$node" "$fd" "ALTER USER kal SET PASSWORD 'pw-two' CHANGE NOT REQUIRED" \
		"the new password" kal:pw-one 401
	exec {fd}>&-

	ka_open fd "$node"
	it_check "node $node: a new connection writes with the new password" ka_is "$fd" kal:pw-two 200
	it_check "node $node: and again" ka_is "$fd" kal:pw-two 200
	after_change "$node" "$fd" "DROP USER kal" "DROP USER" kal:pw-two 401
	exec {fd}>&-

	admin "CREATE USER kal SET PASSWORD 'pw-one' CHANGE NOT REQUIRED"
	admin "GRANT ROLE writer TO kal"
	it_check "node $node: kal is back" it_wait 30 fresh "$node" kal:pw-one 200
done
it_done
