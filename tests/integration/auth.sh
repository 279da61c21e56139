#!/usr/bin/env bash
# Users, roles and authentication on a real three-node cluster
# (127.0.130.1-3, and .9 for the refused start), as a client would see
# them (docs/security.md):
# - a node with auth on and no admin secret refuses to start, saying why;
# - HTTP: no credentials and a wrong password are 401 with
#   WWW-Authenticate; /health stays open;
# - a reader that writes is 403, a writer that runs index DDL or calls an
#   admin endpoint is 403, each role can do what it should;
# - tokens from POST /auth/token work as bearer tokens until they expire;
# - user changes made through a follower replicate to every node and
#   survive a restart; the graph and system digests agree; no password
#   reaches the data
#   directories (the log carries the argon2id hash only);
# - a user whose password must change can do nothing else first;
# - 64 logins at once with the same new credentials are all answered;
# - the native port refuses a request before the handshake, and a cursor
#   cannot be fetched from another connection.
# Usage: auth.sh LORAD NATIVE_CURSOR
. "$(dirname "$0")/lib.sh"
it_setup 127.0.130 "$1"
NC=$2

# -- no admin secret, auth on: refused with a clear message
no_secret_refused() {
	env -u LORA_ADMIN_PASSWORD "$IT_LORAD" --id 9 --data-dir "$IT_DIR/n9" \
		--http "$IT_NET.9:4747" --client "$IT_NET.9:4748" \
		--peer "$IT_NET.9:4749" --peers "9@$IT_NET.9:4749" \
		>"$IT_DIR/n9.out" 2>&1
	local rc=$?
	[ $rc -ne 0 ] && grep -q "no password for the first admin" "$IT_DIR/n9.out"
}
it_check "auth on without an admin secret: the node refuses to start" no_secret_refused
it_check "auth = off starts with a warning" bash -c "
	env -u LORA_ADMIN_PASSWORD timeout 30 '$IT_LORAD' --id 9 --data-dir '$IT_DIR/n9b' \
		--http $IT_NET.9:4747 --client $IT_NET.9:4748 --peer $IT_NET.9:4749 \
		--peers 9@$IT_NET.9:4749 --auth off >'$IT_DIR/n9b.out' 2>&1 &
	p=\$!
	for i in \$(seq 1 100); do
		grep -q 'authentication is OFF' '$IT_DIR/n9b.out' && { kill \$p; wait \$p; exit 0; }
		sleep 0.1
	done
	kill \$p; exit 1"

P=$(it_peers 3)
it_start_all 3 "$P" --token-ttl-ms 2000 || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))    # a follower
O=$(((L + 1) % 3 + 1)) # the other one

# as CRED NODE PATH [BODY]: a request with these credentials only
# (curl -q: not the admin's from the test's .curlrc); "" CRED: none.
as() {
	local cred=$1 node=$2 path=$3 body=${4:-} out auth=()
	[ -n "$cred" ] && auth=(-u "$cred")
	if [ -n "$body" ]; then
		out=$(curl -q -s -m 20 -D "$IT_DIR/hdr" -w '\n%{http_code}' "${auth[@]}" \
			-X POST "http://$IT_NET.$node:4747$path" -d "$body")
	else
		out=$(curl -q -s -m 20 -D "$IT_DIR/hdr" -w '\n%{http_code}' "${auth[@]}" \
			"http://$IT_NET.$node:4747$path")
	fi
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}
status_body() { [ "$IT_STATUS" = "$1" ] && grep -q "$2" <<<"$IT_BODY"; }
q() { echo "{\"query\":\"$1\"}"; }

# -- 401 and open endpoints
as "" "$F" /query "$(q 'RETURN 1')"
it_check "no credentials: 401" status_body 401 LORA_UNAUTHORIZED
it_check "401 carries WWW-Authenticate" grep -qi '^WWW-Authenticate: Basic' "$IT_DIR/hdr"
as "admin:wrong" "$F" /query "$(q 'RETURN 1')"
it_check "wrong password: 401" it_status_is 401
as "nobody:$IT_ADMIN_PASSWORD" "$F" /query "$(q 'RETURN 1')"
it_check "unknown user: 401" it_status_is 401
as "" "$F" /health
it_check "/health needs no credentials" it_status_is 200
as "" "$F" /metrics
it_check "/metrics needs credentials by default" it_status_is 401
as "admin:$IT_ADMIN_PASSWORD" "$F" /query "$(q 'RETURN 1 AS x')"
it_check "the first admin (from LORA_ADMIN_PASSWORD) reads on a follower" status_body 200 '"x":1'

# -- users, made through a follower (forwarded to the leader, hashed here)
for stmt in "CREATE USER rita SET PASSWORD 'rita-pw' CHANGE NOT REQUIRED" \
	"GRANT ROLE reader TO rita" \
	"CREATE USER wes SET PASSWORD 'wes-pw' CHANGE NOT REQUIRED" \
	"GRANT ROLE writer TO wes" \
	"CREATE USER carl SET PASSWORD 'carl-first'"; do
	it_query "$F" "$(q "$stmt")"
	it_check "admin via follower: $stmt" it_status_is 200
done
it_query "$F" "$(q "CREATE USER rita SET PASSWORD 'x' CHANGE NOT REQUIRED")"
it_check "creating an existing user: 409" status_body 409 LORA_EXISTS
it_query "$O" "$(q "GRANT ROLE wizard TO rita")"
it_check "granting an unknown role: 400" it_status_is 400

# every node knows them (a bookmark read after the last write)
B=$(it_field bookmark)
users_on() { # NODE: SHOW USERS there lists the three users with their roles
	it_query "$1" '{"query":"SHOW USERS","consistency":"linearizable"}'
	grep -q '"user":"rita","roles":\["reader"\]' <<<"$IT_BODY" &&
		grep -q '"user":"wes","roles":\["writer"\]' <<<"$IT_BODY" &&
		grep -q '"user":"carl","roles":\[\],"passwordChangeRequired":true' <<<"$IT_BODY"
}
for n in 1 2 3; do it_check "SHOW USERS on node $n lists the users" users_on $n; done

# -- a burst of logins with the same new credentials (a cold cache: 64
# clients of one application starting at once) is answered, none "busy":
# they wait for one password check instead of queueing for their own
it_query "$L" "$(q "CREATE USER bess SET PASSWORD 'bess-pw' CHANGE NOT REQUIRED")"
it_query "$L" "$(q "GRANT ROLE reader TO bess")"
burst_answered() {
	curl -q -s --no-progress-meter -m 60 -Z --parallel-immediate \
		--parallel-max 64 -u bess:bess-pw -w '%{http_code}\n' \
		-X POST -d '{"query":"RETURN 1"}' \
		$(for i in $(seq 64); do printf -- '-o /dev/null http://%s.%s:4747/query ' "$IT_NET" "$L"; done) \
		>"$IT_DIR/burst.out"
	sort "$IT_DIR/burst.out" | uniq -c | tr '\n' ' '
	echo
	test "$(grep -c '^200$' "$IT_DIR/burst.out")" = 64
}
it_check "64 logins at once with the same new password: all 200" burst_answered

# -- one wrong pair sent again and again is refused from memory for
# NODE_AUTH_DENIED_MS (1 s) after its first check: 100 requests in a row
# cost a password check per second they take, not one each (each check is
# an argon2id run that holds a worker)
checks_on() { # NODE: lora_auth_password_checks_total there
	curl -q -s -m 20 -u "admin:$IT_ADMIN_PASSWORD" "http://$IT_NET.$1:4747/metrics" |
		awk '/^lora_auth_password_checks_total /{print $2}'
}
wrong_flood() {
	local c0 c1 t0 t1 codes
	c0=$(checks_on "$L")
	t0=$(date +%s)
	codes=$(curl -q -s --no-progress-meter -m 120 -u bess:not-her-password \
		-w '%{http_code}\n' -X POST -d '{"query":"RETURN 1"}' \
		$(for i in $(seq 100); do printf -- '-o /dev/null http://%s.%s:4747/query ' "$IT_NET" "$L"; done) |
		sort | uniq -c | tr '\n' ' ')
	t1=$(date +%s)
	c1=$(checks_on "$L")
	echo "answers: $codes; checks $c0 -> $c1 in $((t1 - t0 + 1)) s"
	[ "$codes" = "    100 401 " ] && [ -n "$c0" ] && [ -n "$c1" ] &&
		[ $((c1 - c0)) -le $((t1 - t0 + 2)) ]
}
it_check "100 requests with one wrong pair: all 401, about one check a second" wrong_flood

# -- roles
as "rita:rita-pw" "$O" /query "$(q 'MATCH (n) RETURN count(n) AS c')"
it_check "reader reads" it_status_is 200
as "rita:rita-pw" "$O" /query "$(q 'CREATE (:Forbidden)')"
it_check "reader writes: 403" status_body 403 LORA_FORBIDDEN
as "rita:rita-pw" "$L" /query "$(q 'CREATE (:Forbidden)')"
it_check "reader writes on the leader: 403" it_status_is 403
# a role changed on the leader holds for the very next request there (the
# store's user record cache never serves a record older than the last
# applied change, storage_ucache): one try each, no waiting
bess_writes() { as "bess:bess-pw" "$L" /query "$(q 'CREATE (:ByBess)')" && it_status_is "$1"; }
it_check "bess, a reader, writes on the leader: 403" bess_writes 403
it_query "$L" "$(q "GRANT ROLE writer TO bess")"
it_check "bess's next write on the leader once granted writer: 200" bess_writes 200
it_query "$L" "$(q "REVOKE ROLE writer FROM bess")"
it_check "bess's next write on the leader once revoked: 403" bess_writes 403
mkdir -p "$IT_DIR/n$O/import" && printf 'name,secret\nalice,hunter2\n' >"$IT_DIR/n$O/import/x.csv"
as "rita:rita-pw" "$O" /query "$(q "LOAD CSV FROM 'file:///x.csv' AS r RETURN r")"
it_check "reader reads a file with LOAD CSV: 403" status_body 403 LORA_FORBIDDEN
# the same inside a read transaction, which read the file before
as "rita:rita-pw" "$O" /tx '{"mode":"read","statements":[{"statement":"LOAD CSV FROM '"'"'file:///x.csv'"'"' AS r RETURN r"}]}'
tx_csv_refused() { grep -q LORA_FORBIDDEN <<<"$IT_BODY" && ! grep -q hunter2 <<<"$IT_BODY"; }
it_check "reader reads a file with LOAD CSV in a read transaction: refused" tx_csv_refused
as "wes:wes-pw" "$O" /query "$(q 'CREATE (:Written {by: 1})')"
it_check "writer writes through a follower" it_status_is 200
as "wes:wes-pw" "$O" /query "$(q 'CREATE INDEX w_by FOR (n:Written) ON (n.by)')"
it_check "writer runs index DDL: 403" status_body 403 LORA_FORBIDDEN
as "wes:wes-pw" "$L" /query "$(q 'CREATE INDEX w_by FOR (n:Written) ON (n.by)')"
it_check "writer runs index DDL on the leader: 403" it_status_is 403
as "wes:wes-pw" "$L" /query "$(q 'UNWIND [1] AS i CALL { CREATE INDEX w_in FOR (n:Written) ON (n.in) } IN TRANSACTIONS')"
it_check "writer runs index DDL inside IN TRANSACTIONS: 403" it_status_is 403
as "wes:wes-pw" "$L" /query "$(q 'CALL { CREATE CONSTRAINT w_u FOR (n:Written) REQUIRE n.u IS UNIQUE } IN TRANSACTIONS')"
it_check "writer creates a constraint inside IN TRANSACTIONS: 403" it_status_is 403
as "wes:wes-pw" "$F" /admin/digest
it_check "writer calls /admin/digest: 403" it_status_is 403
as "wes:wes-pw" "$F" /cluster/transfer "{\"to\":$F}"
it_check "writer calls /cluster/transfer: 403" it_status_is 403
as "wes:wes-pw" "$F" /query "$(q 'SHOW USERS')"
it_check "writer lists users: 403" it_status_is 403
as "wes:wes-pw" "$F" /query "$(q "CREATE USER evil SET PASSWORD 'x'")"
it_check "writer creates a user: 403" it_status_is 403
it_query "$F" "$(q 'CREATE INDEX w_by FOR (n:Written) ON (n.by)')"
it_check "admin runs index DDL" it_status_is 200
as "wes:wes-pw" "$F" /query "$(q 'MATCH (n:Written) RETURN count(n) AS c')"
it_check "writer reads" status_body 200 '"c":1'

# -- a password that must change: nothing else until it did
as "carl:carl-first" "$F" /query "$(q 'RETURN 1')"
it_check "password change required: 403 until changed" it_status_is 403
as "carl:carl-first" "$F" /query "$(q "ALTER CURRENT USER SET PASSWORD FROM 'wrong' TO 'carl-second'")"
it_check "ALTER CURRENT USER with a wrong old password: 401" it_status_is 401
as "carl:carl-first" "$F" /query "$(q "ALTER CURRENT USER SET PASSWORD FROM 'carl-first' TO 'carl-second'")"
it_check "ALTER CURRENT USER through a follower" it_status_is 200
it_query "$F" "$(q 'GRANT ROLE reader TO carl')"
carl_new() { as "carl:carl-second" "$1" /query "$(q 'RETURN 2 AS y')" && status_body 200 '"y":2'; }
carl_old() { as "carl:carl-first" "$1" /query "$(q 'RETURN 2 AS y')" && it_status_is 401; }
for n in 1 2 3; do
	it_check "node $n: carl's new password works" it_wait 10 carl_new $n
	it_check "node $n: carl's old password is refused" carl_old $n
done

# -- tokens (token_ttl_ms 2000 on these nodes)
as "rita:rita-pw" "$F" /auth/token '{}'
TOKEN=$(it_field token)
it_check "POST /auth/token issues a 128-bit token" grep -Eq '^[0-9a-f]{32}$' <<<"$TOKEN"
bearer() { # NODE: status of a read with the token
	curl -q -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-X POST "http://$IT_NET.$1:4747/query" -d "$(q 'RETURN 1')"
}
bearer_is() { [ "$(bearer "$1")" = "$2" ]; }
it_check "the token reads on the node that issued it" bearer_is "$F" 200
it_check "a token is refused on another node" bearer_is "$O" 401
it_check "the token expires (401 after token_ttl_ms)" it_wait 10 bearer_is "$F" 401
TOKEN=0123456789abcdef0123456789abcdef
it_check "a made-up token: 401" bearer_is "$F" 401
# a new password ends the tokens issued before it (well inside the 2 s ttl)
as "rita:rita-pw" "$F" /auth/token '{}'
TOKEN=$(it_field token)
T0=$(date +%s%N)
it_check "a fresh token reads" bearer_is "$F" 200
it_query "$L" "$(q "ALTER USER rita SET PASSWORD 'rita-pw2' CHANGE NOT REQUIRED")"
it_check "the password changes" test "$IT_STATUS" = 200
refused_soon() { bearer_is "$F" 401 && [ $(( ($(date +%s%N) - T0) / 1000000 )) -lt 1800 ]; }
it_check "the token is refused after the password changed (before its ttl)" \
	it_wait 2 refused_soon
it_query "$L" "$(q "ALTER USER rita SET PASSWORD 'rita-pw' CHANGE NOT REQUIRED")"

# -- the native port: handshake first; cursors belong to their connection
native_unauth() {
	echo | env -u LORA_USER "$NC" "$IT_NET.$F:4748" 'RETURN 1' 10 >"$IT_DIR/nc0.out" 2>&1
	grep -q 'error=LORA_UNAUTHORIZED' "$IT_DIR/nc0.out"
}
it_check "native: a request before the handshake is refused" native_unauth
native_wrong() {
	echo | LORA_PASSWORD=wrong "$NC" "$IT_NET.$F:4748" 'RETURN 1' 10 >"$IT_DIR/nc1.out" 2>&1
	grep -q 'handshake refused: LORA_UNAUTHORIZED' "$IT_DIR/nc1.out"
}
it_check "native: a wrong password is refused at the handshake" native_wrong
native_unknown() {
	echo | LORA_USER=nobody "$NC" "$IT_NET.$F:4748" 'RETURN 1' 10 >"$IT_DIR/nc1.out" 2>&1
	grep -q 'handshake refused: LORA_UNAUTHORIZED' "$IT_DIR/nc1.out"
}
it_check "native: an unknown user is refused the same way" native_unknown
printf 'steal 5\nfetch 5\nclose\n' | "$NC" "$IT_NET.$F:4748" 'UNWIND range(1, 100) AS i RETURN i' 10 \
	>"$IT_DIR/nc2.out" 2>&1
it_check "native: a 128-bit cursor name" grep -Eq '^ms=.* rows=10 has_more=1 cursor=[0-9a-f]{32} ' "$IT_DIR/nc2.out"
it_check "native: another connection cannot fetch the cursor" bash -c "sed -n 2p '$IT_DIR/nc2.out' | grep -q 'error=LORA_NOT_FOUND'"
it_check "native: its own connection still can" bash -c "sed -n 3p '$IT_DIR/nc2.out' | grep -q 'rows=5 has_more=1 .*error=-'"
printf 'fetch 5\nas wes wes-pw\nfetch 5\n' | "$NC" "$IT_NET.$F:4748" 'UNWIND range(1, 100) AS i RETURN i' 10 \
	>"$IT_DIR/nc3.out" 2>&1
it_check "native: the same connection, authenticated again as another user, cannot fetch it" \
	bash -c "sed -n 2p '$IT_DIR/nc3.out' | grep -q 'error=-' && sed -n 4p '$IT_DIR/nc3.out' | grep -q 'error=LORA_NOT_FOUND'"
it_check "native: a reader's write is refused" bash -c "
	echo | LORA_USER=rita LORA_PASSWORD=rita-pw '$NC' $IT_NET.$O:4748 'CREATE (:X)' 10 | grep -q 'error=LORA_FORBIDDEN'"
it_check "native: a writer's write through a follower" bash -c "
	echo | LORA_USER=wes LORA_PASSWORD=wes-pw '$NC' $IT_NET.$O:4748 'CREATE (:Written {by: 2})' 10 | grep -q 'error=-'"

# -- user changes survive a restart; digests agree; no clear password
it_query "$F" "$(q 'DROP USER rita')"
it_check "admin drops a user" it_status_is 200
it_query "$F" "$(q 'REVOKE ROLE writer FROM wes')"
it_check "admin revokes a role" it_status_is 200
B=$(it_field bookmark)
it_stop "$O"
it_start "$O" "$P" --token-ttl-ms 600000 || it_done
wes_reader() { as "wes:wes-pw" "$O" /query "$(q 'CREATE (:Again)')" && it_status_is 403; }
it_check "after a restart: the revoked role stays revoked" it_wait 20 wes_reader
rita_gone() { as "rita:rita-pw" "$O" /query "$(q 'RETURN 1')" && it_status_is 401; }
it_check "after a restart: the dropped user stays dropped" rita_gone
carl_restarted() { carl_new "$O"; }
it_check "after a restart: carl's password still works" carl_restarted
# -- one user holds at most 64 live tokens per node (ttl 600 s here): the
# 65th ends the oldest, the others keep working
token_on_o() { as "carl:carl-second" "$O" /auth/token '{}' && it_field token; }
FIRST=$(token_on_o)
SECOND=$(token_on_o)
curl -q -s -m 30 -u carl:carl-second -X POST -d '{}' \
	$(for i in $(seq 63); do printf 'http://%s.%s:4747/auth/token ' "$IT_NET" "$O"; done) \
	>"$IT_DIR/tokens.out"
it_check "63 more tokens issued" test "$(grep -o '"token"' "$IT_DIR/tokens.out" | wc -l)" = 63
TOKEN=$SECOND
it_check "the user's second token still reads" bearer_is "$O" 200
TOKEN=$FIRST
it_check "the 65th token ended the user's oldest" bearer_is "$O" 401
D1=$(it_digest 1 "$B")
D2=$(it_digest 2 "$B")
D3=$(it_digest 3 "$B")
three_same() { it_same "$1" "$2" && it_same "$2" "$3"; }
it_check "graph digests agree" three_same "$D1" "$D2" "$D3"
sysdig() { it_get "$1" "/admin/digest?index=$B" && it_field systemDigest; }
S1=$(sysdig 1)
S2=$(sysdig 2)
S3=$(sysdig 3)
it_check "system keyspace digests (users) agree" three_same "$S1" "$S2" "$S3"
no_clear_password() { ! grep -rqa -e 'wes-pw' -e 'carl-second' -e 'rita-pw' "$IT_DIR"/n1 "$IT_DIR"/n2 "$IT_DIR"/n3 "$IT_DIR"/n*.log; }
it_check "no password in clear in any data directory or node log" no_clear_password
it_check "argon2id hashes are what is stored" grep -rqa '\$argon2id\$' "$IT_DIR/n$L"
it_done
