#!/usr/bin/env bash
# The HTTP/1.1 server on real nodes (127.0.43.1-3): keep-alive and
# pipelining (reads and the leader's asynchronous writes), Expect:
# 100-continue, the JSON error shapes of protocol errors (400, 404, 405,
# 411, 413), slow and vanishing clients, many idle connections, writes
# proxied from a follower to the leader, and plans (/explain, /profile of
# reads and of writes, proxied too), requests sent one after another on one
# connection (a worker waiting for them). Raw requests go through bash's
# /dev/tcp so that the bytes on the wire are exactly the test's.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.43 "$1"
P=$(it_peers 3)
it_start_all 3 "$P" || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))

# raw ID BYTES: sends BYTES (printf format) on a new connection and prints
# everything the server answers until it closes (at most 10 s).
raw() {
	local fd
	exec {fd}<>"/dev/tcp/$IT_NET.$1/4747" || return 1
	printf "$(it_with_auth "$2")" >&"$fd"
	timeout 10 cat <&"$fd"
	exec {fd}>&-
}

count() { grep -o "$1" <<<"$2" | wc -l; }

# -- pipelined GETs on one connection, answered in order, then closed
out=$(raw "$L" 'GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /cluster/status HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
it_check "three pipelined requests get three answers" [ "$(count 'HTTP/1.1 200' "$out")" = 3 ]
it_check "the last one says Connection: close" grep -qi '^Connection: close' <<<"$out"
it_check "answers keep request order" bash -c '[[ "$1" == *"\"status\":\"ok\""*"\"leader\":"*"\"status\":\"ok\""* ]]' _ "$out"

# -- HTTP/1.0: keep-alive only when asked for, and then said in the answer
out=$(raw "$L" 'GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n')
it_check "HTTP/1.0 keep-alive: both requests answered" [ "$(count 'HTTP/1.1 200' "$out")" = 2 ]
it_check "HTTP/1.0 keep-alive is confirmed, then closed" bash -c '[[ "$1" == *"Connection: keep-alive"*"Connection: close"* ]]' _ "$out"

# -- pipelined writes to the leader (answered by the apply thread)
q1='{"query":"CREATE (:Pipe {i: 1})"}'
q2='{"query":"CREATE (:Pipe {i: 2}) RETURN 2 AS two"}'
out=$(raw "$L" "POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#q1}\r\n\r\n${q1}POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#q2}\r\nConnection: close\r\n\r\n${q2}")
it_check "two pipelined writes both answered 200" [ "$(count 'HTTP/1.1 200' "$out")" = 2 ]
it_check "the second write's row comes back" grep -q '"two":2' <<<"$out"
it_check "write answers carry X-Lora-Bookmark" [ "$(count 'X-Lora-Bookmark: [0-9]' "$out")" = 2 ]

# -- the same through a follower: proxied to the leader
out=$(raw "$F" "POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#q2}\r\n\r\n${q2}GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
it_check "a write pipelined through follower $F is answered" [ "$(count 'HTTP/1.1 200' "$out")" = 2 ]
it_check "the proxied answer carries the leader's bookmark" grep -q '^X-Lora-Bookmark: [0-9]' <<<"$out"
it_query "$L" '{"query":"MATCH (p:Pipe) RETURN count(p) AS c","format":"rowArrays","consistency":"linearizable"}'
it_check "exactly three Pipe nodes were created" grep -q '"rows":\[\[3\]\]' <<<"$IT_BODY"

# -- plans over HTTP: /explain (no rows, no effects), /profile of a read
#    (rows per operator) and of a write, also proxied from a follower
it_post "$F" /explain '{"query":"MATCH (p:Pipe) WHERE p.i = 1 RETURN p"}'
it_check "/explain answers 200 with a plan" [ "$IT_STATUS" = 200 ]
it_check "the plan names the Match and its label scan" grep -q '"operator":"Match".*NodeByLabelScan(:Pipe)' <<<"$IT_BODY"
it_check "/explain returns no rows" bash -c '! grep -q "\"rows\":\[" <<<"$1"' _ "$IT_BODY"
it_post "$L" /explain '{"query":"CREATE (:Never)"}'
it_check "/explain of a write plans a Create" grep -q '"operator":"Create"' <<<"$IT_BODY"
it_post "$L" /profile '{"query":"UNWIND range(1, 4) AS i RETURN i"}'
it_check "/profile of a read counts 4 rows" grep -q '"rows":4' <<<"$IT_BODY"
it_post "$F" /profile '{"query":"UNWIND range(1, 3) AS i CREATE (:Prof {i: i})"}'
it_check "/profile of a write through follower $F answers 200" [ "$IT_STATUS" = 200 ]
it_check "the write's plan counts the Create's 3 rows" grep -q '"plan":{"operator":"Create".*}\],"rows":3,' <<<"$IT_BODY"
it_query "$L" '{"query":"MATCH (n:Never) RETURN count(n) AS a UNION ALL MATCH (p:Prof) RETURN count(p) AS a","format":"rowArrays","consistency":"linearizable"}'
it_check "EXPLAIN wrote nothing, PROFILE wrote its 3 nodes" grep -q '"rows":\[\[0\],\[3\]\]' <<<"$IT_BODY"

# -- points: stored, indexed, sought, and in the JSON value form both ways
it_post "$L" /query '{"query":"CREATE POINT INDEX geo_p FOR (g:Geo) ON (g.p)"}'
it_check "CREATE POINT INDEX answers 200" [ "$IT_STATUS" = 200 ]
it_query "$F" '{"query":"UNWIND range(0, 9) AS i CREATE (:Geo {i: i, p: point({longitude: i, latitude: i})})"}'
it_check "points are stored through follower $F" [ "$IT_STATUS" = 200 ]
it_query "$L" '{"query":"MATCH (g:Geo) WHERE point.withinBBox(g.p, $lo, point({longitude: 5, latitude: 5})) RETURN g.p AS p ORDER BY g.i","params":{"lo":{"kind":"point","srid":4326,"x":3,"y":2.5}},"consistency":"linearizable"}'
it_check "withinBBox over the index finds points 3 to 5" bash -c '[[ "$1" == *"\"x\":3.0"*"\"x\":4.0"*"\"x\":5.0"* && "$1" != *"\"x\":2.0"* && "$1" != *"\"x\":6.0"* ]]' _ "$IT_BODY"
it_check "a point leaves as {kind: point, srid, crs, x, y}" grep -q '"kind":"point","srid":4326,"crs":"wgs-84","x":3.0,"y":3.0' <<<"$IT_BODY"
it_post "$L" /explain '{"query":"MATCH (g:Geo) WHERE point.distance(g.p, point({longitude: 1, latitude: 1})) < 1000 RETURN g"}'
it_check "a distance predicate is planned as a point index seek" grep -q 'NodePointIndexSeek(:Geo(p) distance)' <<<"$IT_BODY"

# -- Expect: 100-continue (curl sends it for bodies over 1 KiB and would
#    otherwise wait a second before sending the body)
pad=$(head -c 3000 /dev/zero | tr '\0' ' ')
t0=$(date +%s%N)
out=$(curl -s -m 10 -w '\n%{http_code}' -H 'Expect: 100-continue' -X POST \
	"http://$IT_NET.$L:4747/query" -d "{\"query\":\"RETURN 1 AS one\"$pad}")
ms=$((($(date +%s%N) - t0) / 1000000))
it_check "a 3 KiB body with Expect: 100-continue answers 200" [ "${out##*$'\n'}" = 200 ]
it_check "without curl's one-second wait for 100 Continue (${ms} ms)" [ "$ms" -lt 900 ]

# -- protocol errors: the JSON error shape and the right status
shape() { grep -q '{"error":{"code":"'"$1"'","message":"[^"]*","category":"client"}}' <<<"$2"; }
out=$(raw "$L" 'GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
it_check "unknown endpoint: 404 LORA_NOT_FOUND JSON" bash -c '[[ "$1" == "HTTP/1.1 404 "* ]]' _ "$out"
it_check "unknown endpoint body shape" shape LORA_NOT_FOUND "$out"
out=$(raw "$L" 'GET /query HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
it_check "wrong method: 405 JSON" bash -c '[[ "$1" == "HTTP/1.1 405 "* ]]' _ "$out"
it_check "wrong method body shape" shape LORA_INVALID "$out"
out=$(raw "$L" 'BOGUS\r\n\r\n')
it_check "malformed request line: 400 JSON" bash -c '[[ "$1" == "HTTP/1.1 400 "* ]]' _ "$out"
it_check "malformed request body shape" shape LORA_INVALID "$out"
out=$(raw "$L" 'POST /query HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
it_check "chunked body: 411 JSON" bash -c '[[ "$1" == "HTTP/1.1 411 "* ]]' _ "$out"
big=$(head -c 20000 /dev/zero | tr '\0' 'h')
out=$(raw "$L" "GET /health HTTP/1.1\r\nX-Big: $big\r\n\r\n")
it_check "20 KB of headers: 400 LORA_LIMIT" bash -c '[[ "$1" == "HTTP/1.1 400 "* ]]' _ "$out"
it_check "headers too large body shape" shape LORA_LIMIT "$out"
head -c 5000000 /dev/zero | tr '\0' 'a' >"$IT_DIR/big"
out=$(curl -s -m 20 -w '\n%{http_code}' -X POST "http://$IT_NET.$F:4747/query" --data-binary @"$IT_DIR/big")
it_check "5 MB body: 413" [ "${out##*$'\n'}" = 413 ]
it_check "5 MB body shape LORA_LIMIT" shape LORA_LIMIT "${out%$'\n'*}"
out=$(raw "$L" 'POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n')
it_check "a huge Content-Length without a body: 413 at once" bash -c '[[ "$1" == "HTTP/1.1 413 "* ]]' _ "$out"

out=$(raw "$L" 'G\0T /health HTTP/1.1\r\nHost: t\r\n\r\n')
it_check "a NUL byte in the request line: 400 JSON" bash -c '[[ "$1" == "HTTP/1.1 400 "* ]]' _ "$out"
out=$(raw "$L" 'POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n')
it_check "a negative Content-Length: 400 JSON" bash -c '[[ "$1" == "HTTP/1.1 400 "* ]]' _ "$out"
it_get "$L" /health
it_check "the node survives malformed heads" [ "$IT_STATUS" = 200 ]

# -- a client that half-closes after sending still gets its answers
# (perl-base is on every Debian system)
halfclose() { # halfclose ID BYTES
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0]) or exit 1;
		my $m = $ARGV[1]; $m =~ s/\\r/\r/g; $m =~ s/\\n/\n/g;
		print $s $m; $s->shutdown(1);
		alarm 10; print while <$s>;' "$IT_NET.$1:4747" "$(it_with_auth "$2")"
}
out=$(halfclose "$L" 'GET /health HTTP/1.1\r\nHost: t\r\n\r\n')
it_check "half-closed after a GET: answered" bash -c '[[ "$1" == "HTTP/1.1 200 "* ]]' _ "$out"
out=$(halfclose "$F" "POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: ${#q1}\r\n\r\n${q1}")
it_check "half-closed after a write through a follower: answered" bash -c '[[ "$1" == "HTTP/1.1 200 "* ]]' _ "$out"

# -- one request after another on one connection: the worker that answered
#    waits on it and reads the next request itself (a read, a write the
#    leader hands to its writer, a write a follower passes on, /health);
#    each is answered as it would be otherwise
inturn() { # inturn ID REQUEST...: "METHOD PATH [BODY]" each, sent in turn
	perl -MIO::Socket::INET -MSocket=IPPROTO_TCP,TCP_NODELAY -e '
		my $s = IO::Socket::INET->new(PeerAddr => shift) or exit 1;
		setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
		my $auth = shift; alarm 30;
		for my $r (@ARGV) {
			my ($m, $p, $b) = split / /, $r, 3; $b //= "";
			print $s "$m $p HTTP/1.1\r\nHost: t\r\nAuthorization: $auth\r\n" .
			    "Content-Length: " . length($b) . "\r\n\r\n$b";
			my $st = <$s> // exit 2; my $cl = 0;
			while (my $l = <$s>) {
				last if $l eq "\r\n";
				$cl = $1 if $l =~ /^Content-Length: (\d+)/i;
			}
			read($s, my $body, $cl) == $cl or exit 3;
			$st =~ s/\r\n//; print "$st $body\n";
		}' "$IT_NET.$1:4747" "$IT_AUTHZ" "${@:2}"
}
lingered() { curl -s "$IT_SCHEME://$IT_NET.$1:4747/metrics" | sed -n 's/^lora_http_requests_lingered_total //p'; }
rd='POST /query {"query":"RETURN 1 AS one"}'
cnt='POST /query {"query":"MATCH (n:Turn) RETURN count(n) AS c","consistency":"linearizable"}'
for X in "$L" "$F"; do
	reqs=()
	for i in $(seq 1 30); do reqs+=("$rd"); done
	reqs+=("POST /query {\"query\":\"CREATE (:Turn {via: $X, i: 1})\"}" "$cnt" "GET /health"
		"POST /query {\"query\":\"CREATE (:Turn {via: $X, i: 2})\"}" "$cnt" "$rd")
	l0=$(lingered "$X")
	out=$(inturn "$X" "${reqs[@]}")
	l1=$(lingered "$X")
	it_check "node $X: 36 requests in turn on one connection, all 200" [ "$(count '^HTTP/1.1 200 ' "$out")" = 36 ]
	it_check "node $X: the reads in turn answer" [ "$(count '"one":1' "$out")" = 31 ]
	it_check "node $X: each write in turn is seen by the read after it" \
		bash -c '[[ "$1" == *"\"c\":$2"*"\"status\":\"ok\""*"\"c\":$(($2 + 1))"* ]]' _ "$out" "$(( X == L ? 1 : 3 ))"
	it_check "node $X: workers read requests themselves ($l0 -> $l1; loose: a slow machine misses some)" \
		[ "$(( ${l1:-0} - ${l0:-0} ))" -ge 5 ]
done
it_query "$L" '{"query":"MATCH (n:Turn) RETURN count(n) AS c","format":"rowArrays","consistency":"linearizable"}'
it_check "four Turn nodes, each write once" grep -q '"rows":\[\[4\]\]' <<<"$IT_BODY"

# -- clients that stall or vanish do not hurt anyone else
exec {slow}<>"/dev/tcp/$IT_NET.$L/4747"
printf 'POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{"que' >&"$slow"
exec {gone}<>"/dev/tcp/$IT_NET.$L/4747"
printf 'POST /query HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{' >&"$gone"
exec {gone}>&-
idle=()
for i in $(seq 1 200); do exec {fd}<>"/dev/tcp/$IT_NET.$L/4747" && idle+=("$fd"); done
it_check "200 idle connections opened" [ "${#idle[@]}" = 200 ]
it_query "$L" '{"query":"RETURN 7 AS seven"}'
it_check "the node answers beside a stalled, a vanished and 200 idle clients" grep -q '"seven":7' <<<"$IT_BODY"
for fd in "${idle[@]}"; do exec {fd}>&-; done
exec {slow}>&-
it_get "$L" /health
it_check "still healthy after they all hang up" [ "$IT_STATUS" = 200 ]

it_done
