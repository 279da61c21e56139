# lib.sh - helpers for the integration tests: real lorad processes on
# 127.0.X.1..N (ports 4747/4748/4749 each), temp data dirs, curl for HTTP.
# Every test sources this, calls it_setup <subnet> <lorad>, and gets its
# processes killed and temp dir removed on exit, whatever happened.
# Authentication is on in every test: it_setup gives the nodes the first
# admin's password (LORA_ADMIN_PASSWORD), curl the same credentials through
# a .curlrc in the temp dir (CURL_HOME; `curl -q` goes without), and the C
# tools LORA_USER / LORA_PASSWORD.
# IT_TLS=1 runs the cluster with TLS on every port (tls = required):
# it_setup makes a CA and node certificates (deploy/gen-certs.sh), curl
# trusts the CA through the .curlrc (and talks https://, $IT_SCHEME), the C
# tools through LORA_CA.
set -u
IT_TLS=${IT_TLS:-0}
IT_SCHEME=http
IT_CURL_TLS=() # curl options after --next (which drops the .curlrc's)
IT_GEN_CERTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy" && pwd)/gen-certs.sh

IT_LORAD=""
IT_NET=""
IT_DIR=""
IT_FAILS=0
IT_T0=$(date +%s%N)

it_log() { echo "[$(( ($(date +%s%N) - IT_T0) / 1000000 )) ms] $*"; }

it_cleanup() {
	local f p
	for f in "$IT_DIR"/n*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "$IT_FAILS" -ne 0 ]; then
		for l in "$IT_DIR"/n*.log; do
			[ -f "$l" ] || continue
			echo "---- tail of $l"
			tail -n 200 "$l"
		done
	fi
	rm -rf "$IT_DIR"
}

# it_setup SUBNET LORAD: SUBNET like 127.0.1 (never 127.0.0).
it_setup() {
	IT_NET=${IT_SUBNET:-$1} # IT_SUBNET: run by hand beside the suite
	IT_LORAD=$2
	IT_DIR=$(mktemp -d /tmp/lora-it.XXXXXX)
	trap it_cleanup EXIT
	trap 'exit 1' INT TERM
	# If this shell is killed outright (a CTest timeout), a watcher still
	# kills the nodes it started and removes the temp dir.
	local me=$$ dir=$IT_DIR
	(
		trap '' INT TERM HUP
		while kill -0 "$me" 2>/dev/null; do sleep 1; done
		for f in "$dir"/n*.pid; do
			[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
		done
		rm -rf "$dir"
	) </dev/null >/dev/null 2>&1 &
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	IT_ADMIN_PASSWORD=${IT_ADMIN_PASSWORD:-it-admin-$RANDOM$RANDOM}
	export LORA_ADMIN_PASSWORD=$IT_ADMIN_PASSWORD
	export LORA_USER=admin LORA_PASSWORD=$IT_ADMIN_PASSWORD
	(umask 077 && printf 'user = "admin:%s"\n' "$IT_ADMIN_PASSWORD" >"$IT_DIR/.curlrc")
	export CURL_HOME=$IT_DIR
	IT_AUTHZ="Basic $(printf 'admin:%s' "$IT_ADMIN_PASSWORD" | base64 -w0)"
	if [ "$IT_TLS" = 1 ]; then
		IT_SCHEME=https
		printf 'cacert = "%s"\n' "$IT_DIR/tls/ca.pem" >>"$IT_DIR/.curlrc"
		export LORA_CA=$IT_DIR/tls/ca.pem
		IT_CURL_TLS=(--cacert "$LORA_CA")
		"$IT_GEN_CERTS" "$IT_DIR/tls" 1@"$IT_NET".1 2@"$IT_NET".2 \
			3@"$IT_NET".3 >/dev/null || it_fail "gen-certs.sh"
	fi
	it_log "temp dir $IT_DIR, nodes on $IT_NET.x${IT_TLS/#1/, TLS on}"
}

it_peers() { # it_peers N -> 1@net.1:4749,...
	local s="" i
	for i in $(seq 1 "$1"); do s="$s${s:+,}$i@$IT_NET.$i:4749"; done
	echo "$s"
}

# it_tls_flags ID: lorad's TLS flags for node ID (none unless IT_TLS=1).
it_tls_flags() {
	[ "$IT_TLS" = 1 ] || return 0
	[ -s "$IT_DIR/tls/node$1.pem" ] ||
		"$IT_GEN_CERTS" "$IT_DIR/tls" "$1@$IT_NET.$1" >/dev/null
	echo --tls required --tls-ca "$IT_DIR/tls/ca.pem" \
		--tls-cert "$IT_DIR/tls/node$1.pem" --tls-key "$IT_DIR/tls/node$1.key"
}

# it_launch ID PEERS [extra lorad flags...]: starts a node, does not wait.
it_launch() {
	local id=$1 peers=$2
	shift 2
	# shellcheck disable=SC2046 # paths without spaces (mktemp)
	"$IT_LORAD" --id "$id" --data-dir "$IT_DIR/n$id" $(it_tls_flags "$id") \
		--http "$IT_NET.$id:4747" --client "$IT_NET.$id:4748" \
		--peer "$IT_NET.$id:4749" --peers "$peers" \
		--election-ms "${IT_ELECTION_MS:-1000}" --heartbeat-ms 100 "$@" \
		>>"$IT_DIR/n$id.log" 2>&1 &
	echo $! >"$IT_DIR/n$id.pid"
}

# it_wait_up ID: waits (up to 60 s) until the node answers /health.
it_wait_up() {
	local i
	for i in $(seq 1 600); do
		curl -s -m 1 "$IT_SCHEME://$IT_NET.$1:4747/health" | grep -q ok && return 0
		sleep 0.1
	done
	it_fail "node $1 did not come up"
	return 1
}

# it_exit_code ID: waits (up to 60 s) for node ID to exit by itself; its
# exit status in RC ("running" when it did not).
it_exit_code() {
	local pid i
	pid=$(cat "$IT_DIR/n$1.pid")
	for i in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	RC=running
	kill -0 "$pid" 2>/dev/null && return
	wait "$pid"
	RC=$?
	rm -f "$IT_DIR/n$1.pid"
}

# it_start ID PEERS [flags...]: launch and wait.
it_start() {
	it_launch "$@"
	it_wait_up "$1"
}

# it_start_all N PEERS [flags...]: nodes 1..N, started together.
it_start_all() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do it_launch "$i" "$@"; done
	for i in $(seq 1 "$n"); do it_wait_up "$i" || return 1; done
}

it_kill9() { kill -9 "$(cat "$IT_DIR/n$1.pid")"; wait "$(cat "$IT_DIR/n$1.pid")" 2>/dev/null; rm -f "$IT_DIR/n$1.pid"; }

it_stop() { # graceful
	local pid
	pid=$(cat "$IT_DIR/n$1.pid")
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null
	local rc=$?
	rm -f "$IT_DIR/n$1.pid"
	return $rc
}

# it_with_auth FORMAT: a raw request (printf format, \r\n written as
# backslash sequences) with the admin's Authorization header after each
# request line, for the tests that write HTTP bytes by hand.
it_with_auth() {
	local f=$1 h="Authorization: $IT_AUTHZ"
	f=${f//HTTP\/1.1\\r\\n/HTTP\/1.1\\r\\n$h\\r\\n}
	f=${f//HTTP\/1.0\\r\\n/HTTP\/1.0\\r\\n$h\\r\\n}
	printf '%s' "$f"
}

it_fail() { IT_FAILS=$((IT_FAILS + 1)); it_log "FAIL: $*"; }
it_ok() { it_log "ok: $*"; }

# it_check "what" cmd...: the whole condition is the one command given
# (use a function below or bash -c '...'); "it_check x [ a ] && [ b ]"
# would run [ b ] unchecked (tests/integration/check_lint.sh refuses it).
it_check() {
	local what=$1
	shift
	if "$@"; then it_ok "$what"; else it_fail "$what"; fi
}

# it_hnsw_same INDEX: waits up to 60 s until nodes 1-3 report the same
# applied index and the same vector index graph checksum at INDEX
# (/admin/digest?hnsw=1: the state digest does not see the graphs) and
# prints them; 1 when they never agree or a checksum is missing.
it_hnsw_same() {
	local rc=0
	it_wait 60 it_hnsw_agree "$1" || rc=1
	echo "# applied index and hnsw checksum: $IT_H1 / $IT_H2 / $IT_H3"
	return $rc
}
it_hnsw_agree() {
	IT_H1=$(it_hnsw_sum 1 "$1")
	IT_H2=$(it_hnsw_sum 2 "$1")
	IT_H3=$(it_hnsw_sum 3 "$1")
	[ -n "${IT_H1#* }" ] && [ "$IT_H1" = "$IT_H2" ] && [ "$IT_H2" = "$IT_H3" ]
}
it_hnsw_sum() {
	it_get "$1" "/admin/digest?index=$2&hnsw=1"
	echo "$(it_field appliedIndex) $(it_field hnswDigest)"
}

# it_wait SECONDS cmd...: runs cmd every 0.1 s until it succeeds (0) or
# SECONDS have passed (1): a wait for a condition, never a fixed sleep.
it_wait() {
	local end=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# it_same A B: A is not empty and B equals it (digests, counts).
it_same() { [ -n "$1" ] && [ "$1" = "$2" ]; }
# it_other A B: A is not empty and differs from B (a new leader).
it_other() { [ -n "$1" ] && [ "$1" != "$2" ]; }

# it_post ID PATH BODY -> body on stdout; status in $IT_STATUS
it_post() {
	local out
	out=$(curl -s -m 20 -w '\n%{http_code}' -X POST "$IT_SCHEME://$IT_NET.$1:4747$2" -d "$3")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}

it_get() {
	local out
	out=$(curl -s -m 20 -w '\n%{http_code}' "$IT_SCHEME://$IT_NET.$1:4747$2")
	IT_STATUS=${out##*$'\n'}
	IT_BODY=${out%$'\n'*}
}

it_query() { it_post "$1" /query "$2"; }

# it_post_leader VIA PATH BODY: POST to whoever leads now (asking node
# VIA), retrying while leadership moves (a loaded machine may re-elect).
it_post_leader() {
	local i l
	for i in $(seq 1 20); do
		l=$(it_leader "$1")
		[ -n "$l" ] && it_post "$l" "$2" "$3"
		[ "${IT_STATUS:-}" = 200 ] && return 0
		sleep 0.5
	done
	return 1
}

# JSON field of a flat value in $IT_BODY (compact jansson output).
it_field() { echo "$IT_BODY" | grep -o "\"$1\":\"\?[^,\"}]*" | head -1 | sed 's/.*:"\?//'; }

# it_leader ID -> leader id seen by node ID (waits up to 30 s), "" if none.
it_leader() {
	local i l
	for i in $(seq 1 300); do
		it_get "$1" /cluster/status
		l=$(echo "$IT_BODY" | grep -o '"leader":[0-9]*' | cut -d: -f2)
		[ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.1
	done
	echo ""
}

# it_need_leader VIA: the leader node VIA sees (waits up to 30 s) in
# IT_LEADER, logged as elected; without one the test fails and ends here.
# it_caught_up ID LEADER BOOKMARK: node ID names LEADER as leader and has
# applied BOOKMARK (a read there waits for it), two checks; a follower
# passes writes on over the peer channel only then (it knows the leader
# and holds the cluster's peer secret)
it_caught_up() {
	it_check "follower $1 follows node $2" it_same "$(it_leader "$1")" "$2"
	it_query "$1" "{\"query\":\"RETURN 1\",\"bookmark\":\"$3\"}"
	it_check "follower $1 applied bookmark $3" it_status_is 200
}

it_need_leader() {
	IT_LEADER=$(it_leader "$1")
	if [ -z "$IT_LEADER" ]; then
		it_fail "no leader"
		it_done
	fi
	it_ok "leader elected: node $IT_LEADER"
}

# it_status_is CODE: the last request's HTTP status was CODE.
it_status_is() { [ "$IT_STATUS" = "$1" ]; }
# it_body_has PATTERN: the last answer's body matches PATTERN (grep).
it_body_has() { grep -q -- "$1" <<<"$IT_BODY"; }

# it_digests_equal INDEX: nodes 1-3 hold the same digest at INDEX.
it_digests_equal() {
	local d1 d2 d3
	d1=$(it_digest 1 "$1")
	d2=$(it_digest 2 "$1")
	d3=$(it_digest 3 "$1")
	it_same "$d1" "$d2" && it_same "$d1" "$d3"
}

# it_digest ID INDEX -> digest once ID applied INDEX
it_digest() {
	it_get "$1" "/admin/digest?index=$2"
	it_field digest
}

it_done() {
	local l
	for l in "$IT_DIR"/n*.log; do
		[ -f "$l" ] || continue
		if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$l"; then
			it_fail "sanitizer report in $l"
			grep -m 5 -A 10 "runtime error\|Sanitizer" "$l"
		fi
	done
	if [ "$IT_FAILS" -ne 0 ]; then
		it_log "$IT_FAILS check(s) failed"
		exit 1
	fi
	it_log "all checks passed"
	exit 0
}
