#!/usr/bin/env bash
# tests/client/shell_cluster.sh - the `lora` shell and the client library
# against a real three-node cluster on 127.0.39.1-3 (addresses of its own):
# writes routed to the leader from a follower address, bookmark and
# linearizable reads on followers, parameters, scripts and their exit
# codes, results larger than one batch (cursors), :status, plans over the
# native protocol (:explain, :profile of a write via a follower, EXPLAIN).
# Usage: shell_cluster.sh LORAD LORA
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/lib.sh"
LC_LORAD=$1
LORA=$2
LC_PREFIX=${SHELL_TEST_PREFIX:-127.0.39}
LC_N=3
LC_DIR=$(mktemp -d /tmp/lora-shell-test.XXXXXX)
trap 'lc_kill_all; rm -rf "$LC_DIR"' EXIT
failures=0

check() { # check NAME EXPECTED_RC PATTERN -- lora args...
	local name=$1 want_rc=$2 pattern=$3 out rc
	shift 4
	out=$("$LORA" --timeout 3000 "$@" 2>&1)
	rc=$?
	if [ "$rc" != "$want_rc" ] || ! grep -q -- "$pattern" <<<"$out"; then
		echo "FAIL $name: exit $rc (want $want_rc), output:"
		echo "$out" | sed 's/^/    /'
		failures=$((failures + 1))
	else
		echo "ok   $name"
	fi
}

lc_write_configs "election_ms = 300" "heartbeat_ms = 50"
for i in 1 2 3; do lc_start "$i"; done
for i in 1 2 3; do lc_wait_health "$i" 60 || exit 1; done
leader=$(lc_wait_leader 30) || { echo "no leader"; exit 1; }
f1="" f2=""
for i in 1 2 3; do
	[ "$i" = "$leader" ] && continue
	if [ -z "$f1" ]; then f1=$i; else f2=$i; fi
done
all=$(lc_clients)

# A write given only a follower's address reaches the leader (hint).
check write_via_follower 0 "bookmark" -- -a "$(lc_client "$f1")" \
	-c "CREATE (:Shell {name: 'a', n: 1});"
# Read-your-writes on the other follower in one session (bookmark).
check bookmark_read 0 '"b"' -- -a "$all" --consistency bookmark \
	-c "CREATE (:Shell {name: 'b', n: 2}); MATCH (s:Shell {name: 'b'}) RETURN s.name;"
check linearizable_read 0 '"a"' -- -a "$(lc_client "$f2")" --route any \
	--consistency linearizable -c "MATCH (s:Shell {name: 'a'}) RETURN s.name;"

script="$LC_DIR/script.cypher"
cat >"$script" <<'EOF'
:param who "c"
:param nums [1, 2, 3]
CREATE (:Shell {name: $who,
                n: 3});
MATCH (s:Shell) WHERE s.name = $who
RETURN s.name AS name, size($nums) AS k;
EOF
check script_with_params 0 '| "c"  | 3 |' -- -a "$all" -f "$script"
check parse_error_exit_code 1 "LORA_PARSE" -- -a "$all" -c "RETURN 1 +;"
check script_stops_at_error 1 "error" -- -a "$all" \
	-c "RETURN nope(; CREATE (:Shell {name: 'never'});"
check nothing_after_error 0 "| 0 " -- -a "$all" --consistency linearizable \
	-c "MATCH (s:Shell {name: 'never'}) RETURN count(s) AS n;"
check many_rows_cursor 0 "2500 rows" -- -a "$all" \
	-c "UNWIND range(1, 2500) AS i RETURN i;"
check plain_format 0 "$(printf '"x"\t1')" -- -a "$all" --format plain -q \
	-c "RETURN 'x' AS a, 1 AS b;"
check json_format 0 '^{"a":"x","b":1,"n":null}$' -- -a "$all" --format json -q \
	-c "RETURN 'x' AS a, 1 AS b, null AS n;"
check csv_format 0 '^"a,b",2,.$' -- -a "$all" --format csv -q \
	-c "RETURN 'a,b' AS s, 2 AS n, null AS z;"
check csv_header 0 '^s,n,z' -- -a "$all" --format csv -q \
	-c "RETURN 'a,b' AS s, 2 AS n, null AS z;"
check explain 0 "NodeByLabelScan(:Shell)" -- -a "$all" \
	-c ":explain MATCH (s:Shell) RETURN s"
check profile_rows 0 "rows: 5" -- -a "$all" \
	-c ":profile UNWIND range(1, 5) AS i RETURN i"
check explain_error 1 "error" -- -a "$all" -c ":explain RETURN 1 +"
# PROFILE of a write over the native protocol, forwarded by a follower:
# the plan comes back with the Create's rows, and the write happened.
check profile_write 0 "Create.*rows: 2" -- -a "$(lc_client "$f1")" --route any \
	-c ":profile UNWIND [1, 2] AS i CREATE (:ShellProf {i: i})"
check profile_wrote 0 "| 2 " -- -a "$all" --consistency linearizable \
	-c "MATCH (s:ShellProf) RETURN count(s) AS n;"
# A statement's own EXPLAIN prefix prints the plan too.
check explain_prefix 0 "NodeByLabelScan(:Shell)" -- -a "$all" \
	-c "EXPLAIN MATCH (s:Shell) RETURN s;"
# History: an interactive session (on a pseudo-terminal from script(1))
# keeps a statement typed over two lines as one entry in ~/.lora_history.
hist_home="$LC_DIR/home"
mkdir -p "$hist_home"
printf 'RETURN 1\n AS one;\n:quit\n' |
	HOME="$hist_home" script -qec "$LORA -a $all -q" /dev/null >/dev/null 2>&1
if grep -a 'RETURN' "$hist_home/.lora_history" 2>/dev/null | grep -q 'one;'; then
	echo "ok   history_keeps_statement"
else
	echo "FAIL history_keeps_statement: $(cat "$hist_home/.lora_history" 2>&1)"
	failures=$((failures + 1))
fi
# The leader may have moved on a loaded machine (election_ms = 300): ask
# again, so that :status is compared with the leader of the moment and the
# transfer goes to a node that does not lead.
leader=$(lc_wait_leader 30) || { echo "no leader"; exit 1; }
f1=$((leader % 3 + 1))
check status 0 "leader: $leader" -- -a "$all" -c ":status"
# Leadership transfer from the shell, then the status shows the new leader.
check transfer 0 "^200 " -- -a "$all" -c ":transfer $f1"
n=0
while [ "$(lc_leader)" != "$f1" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check status_after_transfer 0 "leader: $f1" -- -a "$all" -c ":status"
check admin_usage 1 "usage" -- -a "$all" -c ":remove"

echo "$failures failure(s)"
[ "$failures" = 0 ]
