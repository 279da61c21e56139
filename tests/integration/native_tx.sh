#!/usr/bin/env bash
# Explicit transactions over the native protocol, through the C client
# library and the `lora` shell (:begin, :commit, :rollback), on three real
# nodes (127.0.202.1-3): a write transaction begun with only a follower's
# address runs on the leader (the client follows the hint), reads its own
# writes, is invisible to others until :commit, and commits as one;
# :rollback and a failed statement leave nothing; a read transaction on a
# follower keeps reading its one view while a write lands; a script that
# ends with the transaction open rolls it back; a client killed inside a
# write transaction frees the writer at once (its connection went).
# Usage: native_tx.sh LORAD LORA
. "$(dirname "$0")/lib.sh"
it_setup 127.0.202 "$1"
LORA=$2

it_start_all 3 "$(it_peers 3)" || it_done
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1))
G=$((F % 3 + 1))
[ "$G" = "$L" ] && G=$((G % 3 + 1))

# sh_run ADDR-NODE SCRIPT: the shell on a script file (CSV output, its
# CRLF line ends made LF; the fifo outputs below keep them: '^1.$')
sh_run() {
	printf '%s\n' "$2" >"$IT_DIR/script.cypher"
	"$LORA" -q --format csv -a "$IT_NET.$1:4748" -f "$IT_DIR/script.cypher" >"$IT_DIR/sh.out" 2>&1
	RC=$?
	OUT=$(tr -d '\r' <"$IT_DIR/sh.out")
}
count_on() { # NODE LABEL
	it_query "$1" '{"query":"MATCH (n:'"$2"') RETURN count(n) AS c","format":"rowArrays","consistency":"linearizable"}'
	grep -o '"rows":\[\[[0-9]*\]\]' <<<"$IT_BODY" | grep -o '[0-9]\+'
}
out_has() { grep -q "$1" <<<"$OUT"; }
rc_is() { [ "$RC" = "$1" ]; }

# -- a write transaction through a follower's address: runs on the leader
sh_run "$F" ":begin
CREATE (:T {n: 1});
CREATE (:T {n: 2});
MATCH (t:T) RETURN count(t) AS inside;
:commit"
it_check "the script succeeds" rc_is 0
it_check "it reads its own two writes" out_has '^2$'
it_check "both are committed" test "$(count_on "$G" T)" = 2

# -- invisible until commit: the shell holds the transaction open while
# another client reads (a fifo feeds it)
mkfifo "$IT_DIR/in"
"$LORA" -q --format csv -a "$IT_NET.$F:4748" -f "$IT_DIR/in" >"$IT_DIR/held.out" 2>&1 &
SH=$!
exec 7>"$IT_DIR/in"
printf ':begin\nCREATE (:U {n: 1});\nMATCH (u:U) RETURN count(u) AS c;\n' >&7
it_check "the open transaction reads its write" it_wait 20 grep -q '^1.$' "$IT_DIR/held.out"
it_check "others do not see it before the commit" test "$(count_on "$G" U)" = 0
printf ':commit\n' >&7
u_committed() { [ "$(count_on "$G" U)" = 1 ]; }
it_check "after :commit they do" it_wait 20 u_committed
exec 7>&-
wait "$SH"
it_check "committed once" test "$(count_on "$G" U)" = 1

# -- rollback, a failed statement, a script ending inside a transaction
sh_run "$L" ":begin
CREATE (:V);
:rollback"
it_check ":rollback: the script succeeds" rc_is 0
it_check ":rollback leaves nothing" test "$(count_on "$L" V)" = 0
sh_run "$L" ":begin
CREATE (:W);
RETURN 1 / 0;"
it_check "a failed statement fails the script" rc_is 1
it_check "... says the transaction rolled back" out_has 'rolled back'
it_check "... and leaves nothing" test "$(count_on "$L" W)" = 0
sh_run "$L" ":begin
CREATE (:X);"
it_check "a script ending inside a transaction rolls it back" out_has 'open transaction was rolled back'
it_check "... nothing written" test "$(count_on "$L" X)" = 0
sh_run "$L" ":commit"
it_check ":commit without :begin fails" rc_is 1

# -- a client that dies inside a write transaction: its connection goes,
# the transaction rolls back at once (not after the 10 s idle limit)
mkfifo "$IT_DIR/in3"
"$LORA" -q --format csv -a "$IT_NET.$L:4748" -f "$IT_DIR/in3" >"$IT_DIR/gone.out" 2>&1 &
SH=$!
exec 9>"$IT_DIR/in3"
printf ':begin\nCREATE (:Gone);\nMATCH (g:Gone) RETURN count(g) AS c;\n' >&9
it_check "the transaction is open" it_wait 20 grep -q '^1.$' "$IT_DIR/gone.out"
kill -9 "$SH"
wait "$SH" 2>/dev/null
exec 9>&-
t0=$(date +%s%N)
it_query "$L" '{"query":"CREATE (:After)"}'
ms=$((($(date +%s%N) - t0) / 1000000))
it_log "a write after the client died: $ms ms"
it_check "a write after the client died is answered within 5 s" test "$IT_STATUS" = 200 -a "$ms" -lt 5000
it_check "the dead client's transaction wrote nothing" test "$(count_on "$L" Gone)" = 0

# -- a read transaction on a follower reads one view
mkfifo "$IT_DIR/in2"
"$LORA" -q --format csv -a "$IT_NET.$F:4748" --route any -f "$IT_DIR/in2" >"$IT_DIR/read.out" 2>&1 &
SH=$!
exec 8>"$IT_DIR/in2"
printf ':begin read\nMATCH (t:T) RETURN count(t) AS c;\n' >&8
it_check "the read transaction reads 2" it_wait 20 grep -q '^2.$' "$IT_DIR/read.out"
it_query "$L" '{"query":"CREATE (:T {n: 3})"}'
BM=$(it_field bookmark)
it_wait 10 bash -c "curl -s 'http://$IT_NET.$F:4747/admin/digest?index=$BM' | grep -q digest"
printf 'MATCH (t:T) RETURN count(t) AS c;\n:commit\n' >&8
exec 8>&-
wait "$SH"
it_check "the read transaction read 2 both times (its view)" test "$(grep -c '^2.$' "$IT_DIR/read.out")" = 2
it_check "a plain read sees 3" test "$(count_on "$F" T)" = 3
it_done
