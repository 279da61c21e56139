#!/usr/bin/env bash
# Streamed read answers over HTTP on one real node (127.0.65.1):
# - a medium result comes chunked, byte for byte the document a
#   Content-Length answer had (rows, rowArrays, combined), small results
#   and the graph format keep a Content-Length;
# - the engine produces rows lazily (the first of 100M rows on the native
#   port), and a big result's first bytes come long before its last (the
#   node sends rows as it pulls them);
# - a client that reads the first chunk and leaves stops the statement
#   (metrics: rows streamed stop far below the total, the client-gone
#   counter moves, no statement stays open), and so does a client that
#   stalls and then goes; half-closed and HTTP/1.0 clients get everything,
#   a request pipelined behind a streamed answer is answered;
# - an error after the first chunk ends the document with an "error"
#   member (status 200 is already out): a runtime error with a streaming
#   engine, and a node that stops (SIGTERM) in the middle of an answer.
# Usage: http_stream.sh LORAD NATIVE_CURSOR
. "$(dirname "$0")/lib.sh"
it_setup 127.0.65 "$1"
NC=$2
ID=1 # the node's id, and the last byte of its address
H="http://$IT_NET.$ID:4747"
it_start "$ID" "$ID@$IT_NET.$ID:4749" || it_done
[ -n "$(it_leader "$ID")" ] && it_ok "single node leads" || { it_fail "no leader"; it_done; }

# metric 'name{labels}' -> its value (0 when absent)
metric() {
	curl -s -m 5 "$H/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; 1 when
# SECONDS passed first.
wait_until() {
	local end=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
GONE='lora_statements_client_gone_total{api="http"}'
ROWS='lora_rows_streamed_total{api="http"}'
# the client-gone counter is at $1 and no statement is open
gone_at() { [ "$(metric "$GONE")" = "$1" ] && [ "$(metric lora_statements_open)" = 0 ]; }
rows_above() { [ "$(metric "$ROWS")" -gt "$1" ]; }
q_range() { printf '{"query":"UNWIND range(1, %s) AS i RETURN i"%s}' "$1" "${2:-}"; }

# post BODY -> $T/h (headers), $T/b (body), $T/w (curl's -w figures)
T=$IT_DIR/http
mkdir -p "$T"
post() {
	curl -s -m 60 -D "$T/h" -o "$T/b" -w '%{http_code} %{time_starttransfer} %{time_total}' \
		-X POST "$H/query" -d "$1" >"$T/w"
}
header() { grep -i "^$1:" "$T/h" | tr -d '\r' | sed 's/^[^:]*: *//'; }
# the document a rows / rowArrays / combined answer of q_range N must be
expected() { # N FORMAT BOOKMARK
	local wrap='{"i":&}'
	[ "$2" = rowArrays ] && wrap='[&]'
	printf '{"columns":["i"],"rows":['
	seq 1 "$1" | sed "s/.*/$wrap/" | paste -sd, | tr -d '\n'
	printf ']'
	[ "$2" = combined ] && printf ',"graph":{"nodes":[],"relationships":[]}'
	printf ',"bookmark":"%s"}' "$3"
}

# -- a medium result: chunked, and exactly the document it always was
N=100000
for fmt in rows rowArrays combined; do
	post "$(q_range $N ",\"format\":\"$fmt\"")"
	bm=$(header X-Lora-Bookmark)
	it_check "$fmt: $N rows answered 200" [ "$(cut -d' ' -f1 "$T/w")" = 200 ]
	it_check "$fmt: Transfer-Encoding: chunked, no Content-Length" \
		bash -c '[ "$(grep -ci "^transfer-encoding: chunked" "$1")" = 1 ] && ! grep -qi "^content-length" "$1"' _ "$T/h"
	expected $N "$fmt" "$bm" >"$T/e"
	it_check "$fmt: the body is byte for byte the expected document" cmp -s "$T/b" "$T/e"
done
chunks=$(curl -s --raw -X POST "$H/query" -d "$(q_range $N)" | grep -ac $'^[0-9a-f]*\r$')
it_check "the $N rows came in several chunks ($chunks chunk-size lines)" [ "$chunks" -ge 3 ]
post '{"query":"RETURN 1 AS one"}'
it_check "a small result keeps a Content-Length" \
	bash -c 'grep -qi "^content-length: " "$1" && ! grep -qi "^transfer-encoding" "$1"' _ "$T/h"
post "$(q_range $N ',"format":"graph"')"
it_check "the graph format is sent whole (Content-Length)" grep -qi '^content-length' "$T/h"

# -- the engine produces rows lazily: the first row of 100M rows comes
# back on the native port with more to fetch (built whole, they would
# pass the statement's memory limit of 1 GiB and its minute)
line=$(echo close | "$NC" "$IT_NET.$ID:4748" "UNWIND range(1, 100000000) AS i RETURN i" 1 | head -1)
it_log "first row of 100M rows: $line"
it_check "the first row of 100M rows comes back at once, with more to fetch" \
	bash -c '[[ "$1" == ms=*" rows=1 has_more=1 "*" error=-" ]] &&
	         awk -v m="${1#ms=}" "BEGIN { exit !(m + 0 < 10000) }"' _ "$line"

# -- a big result: the node sends rows as it has them
N=3000000
post "$(q_range $N)"
read -r code ttfb total <"$T/w"
bm=$(header X-Lora-Bookmark)
it_log "$N rows: first byte after ${ttfb}s, last after ${total}s"
digits=0
for ((d = 1, lo = 1; lo <= N; d++, lo *= 10)); do
	hi=$((lo * 10 - 1 < N ? lo * 10 - 1 : N))
	digits=$((digits + d * (hi - lo + 1)))
done
head='{"columns":["i"],"rows":[' tail='],"bookmark":""}'
size=$((${#head} + 6 * N + digits + N - 1 + ${#tail} + ${#bm}))
it_check "$N rows: 200, chunked, $size bytes" \
	[ "$code $(grep -ci '^transfer-encoding: chunked' "$T/h") $(stat -c %s "$T/b")" = "200 1 $size" ]
it_check "$N rows: first and last rows in place" \
	bash -c '[[ "$(head -c 40 "$1")" == "{\"columns\":[\"i\"],\"rows\":[{\"i\":1},{\"i\":2}"* &&
	           "$(tail -c 40 "$1")" == *"{\"i\":$2}],\"bookmark\":\"$3\"}" ]]' _ "$T/b" "$N" "$bm"
it_check "$N rows: the first byte came before a quarter of the answer's time" \
	awk -v a="$ttfb" -v b="$total" 'BEGIN { exit !(a * 4 < b) }'
it_check "$N rows: the first byte came before the engine made the last row (< 1/20 of the time)" \
	awk -v a="$ttfb" -v b="$total" 'BEGIN { exit !(a * 20 < b) }'

# -- a client that reads the first chunk and leaves stops the statement
BIG=100000000
gone0=$(metric "$GONE")
rows0=$(metric "$ROWS")
curl -sN -m 60 -X POST "$H/query" -d "$(q_range $BIG)" | head -c 70000 >/dev/null
it_check "client left after 70000 bytes of $BIG rows: counted as gone, no statement open" \
	wait_until 15 gone_at $((gone0 + 1))
rows1=$(metric "$ROWS")
it_log "rows streamed to the client that left: $((rows1 - rows0)) of $BIG"
it_check "it was sent far fewer rows than $BIG (< 1/10)" [ $((rows1 - rows0)) -lt $((BIG / 10)) ]
it_query "$ID" '{"query":"RETURN 7 AS seven"}'
it_check "rows streamed stopped growing, and the node serves" \
	[ "$(metric "$ROWS") $IT_BODY" = "$((rows1 + 1)) "'{"columns":["seven"],"rows":[{"seven":7}],"bookmark":"'"$bm"'"}' ]

# -- a client that stalls holds a bounded amount; when it goes, the
# statement stops
gone0=$(metric "$GONE")
rows0=$(metric "$ROWS")
b=$(q_range 3000000)
exec {slow}<>"/dev/tcp/$IT_NET.$ID/4747"
printf "$(it_with_auth 'POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: %s\r\n\r\n%s')" "${#b}" "$b" >&"$slow"
stalled() { # the statement is open and its rows stopped moving
	local a
	a=$(metric "$ROWS")
	[ "$(metric lora_statements_open)" = 1 ] && [ "$a" -gt "$rows0" ] && sleep 0.3 &&
		[ "$(metric "$ROWS")" = "$a" ]
}
it_check "a client that does not read: the statement waits for it" wait_until 15 stalled
rows1=$(metric "$ROWS")
it_log "rows sent to the stalled client: $((rows1 - rows0))"
it_check "the stalled client holds < 1M rows (its socket buffers and one chunk)" \
	[ $((rows1 - rows0)) -lt 1000000 ]
exec {slow}>&-
it_check "the stalled client hangs up: counted as gone, no statement open" \
	wait_until 15 gone_at $((gone0 + 1))

# -- half-closed and HTTP/1.0 clients, and a request pipelined behind
exchange() { # exchange BYTES HALFCLOSE -> everything the server answers
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0]) or exit 1;
		my $m = $ARGV[1]; $m =~ s/\\r/\r/g; $m =~ s/\\n/\n/g;
		print $s $m; $s->shutdown(1) if $ARGV[2];
		alarm 30; print while <$s>;' "$IT_NET.$ID:4747" "$(it_with_auth "$1")" "$2"
}
b=$(q_range 100000)
expected 100000 rows "$bm" >"$T/e"
exchange "POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#b}\r\n\r\n$b" 1 >"$T/raw"
it_check "half-closed after the request: the whole chunked answer (ends with the last chunk)" \
	bash -c 'grep -qai "^transfer-encoding: chunked" "$1" && [ "$(tail -c 5 "$1" | od -An -c | tr -d " ")" = "0\r\n\r\n" ]' _ "$T/raw"
exchange "POST /query HTTP/1.0\r\nContent-Length: ${#b}\r\n\r\n$b" 0 >"$T/raw"
it_check "HTTP/1.0: no chunks, Connection: close, the whole document" \
	bash -c '! grep -qai "^transfer-encoding" "$1" && grep -qai "^connection: close" "$1" && cmp -s <(sed "1,/^\r$/d" "$1") "$2"' _ "$T/raw" "$T/e"
exchange "POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#b}\r\n\r\n${b}GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" 0 >"$T/raw"
it_check "a request pipelined behind a streamed answer is answered after it" \
	bash -c '[ "$(grep -ao "HTTP/1.1 200" "$1" | wc -l)" = 2 ] && [[ "$(tail -c 15 "$1")" == "{\"status\":\"ok\"}" ]]' _ "$T/raw"

# -- an error after the first chunk: the document ends with "error"
post '{"query":"UNWIND range(1, 200000) AS i RETURN 10 / (150000 - i) AS x"}'
it_check "a division by zero at row 150000, after chunks went out: 200 with a closing error member" \
	bash -c '[ "$(cut -d" " -f1 "$3")" = 200 ] &&
	         [[ "$(tail -c 200 "$1")" == *'\''}],"error":{"code":"LORA_ARITHMETIC","message":'\''*'\''"category":"client"}}'\'' ]] &&
	         grep -qi "^transfer-encoding: chunked" "$2"' _ "$T/b" "$T/h" "$T/w"

# -- the node stops in the middle of an answer: the rows so far, then an
# error member that says the answer is incomplete
rows0=$(metric "$ROWS")
curl -s -m 60 --limit-rate 2M -D "$T/h" -o "$T/b" -X POST "$H/query" -d "$(q_range 3000000)" &
cpid=$!
it_check "a slowly read answer is under way" wait_until 15 rows_above "$rows0"
it_check "SIGTERM: the node stops (exit 0)" it_stop "$ID"
wait "$cpid"
it_check "the answer under way ends with error LORA_UNAVAILABLE, a complete chunked document" \
	bash -c '[[ "$(tail -c 200 "$1")" == *'\''}],"error":{"code":"LORA_UNAVAILABLE","message":"this node is stopping'\''*'\''"category":"server"}}'\'' ]]' _ "$T/b"

it_done
