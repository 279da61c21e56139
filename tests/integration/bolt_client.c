/* bolt_client.c - test tool: a Bolt client of our own (blocking socket,
 * node/packstream.c for the values) that drives one node through the
 * protocol and checks every answer.
 *
 *   bolt_client HOST PORT LEADER_HOST [follower | gone | life LIFE_MS]
 *
 * Logs in as LORA_USER / LORA_PASSWORD. Checks, in order: the handshake
 * (5.4 chosen from a 5.0-5.4 range, 4.4 alone, 3.0 refused with zeros);
 * HELLO + LOGON (5.4) and HELLO with credentials (4.4); value round trips
 * of every PackStream type through RETURN $p; a node, a relationship and a
 * path as structures; temporal values and a vector; RUN / PULL n with
 * has_more / DISCARD; BEGIN / ROLLBACK (nothing kept) and BEGIN / COMMIT
 * (kept, a bookmark); a syntax error as
 * Neo.ClientError.Statement.SyntaxError, the next request IGNORED, RESET,
 * and the connection usable again; LOGOFF, a wrong password at LOGON,
 * LOGON again (on other connections); ROUTE's table (ttl, the leader's
 * address as WRITE, READ and ROUTE for every member); GOODBYE. With
 * "follower", against a follower: an auto-commit write forwarded, its
 * bookmark, a write transaction begun there (run on the leader: its reads
 * see its writes, another session does not before COMMIT, ROLLBACK and a
 * failed statement then RESET leave nothing, COMMIT's bookmark shows the
 * write here and on the leader; the same in 4.4; a connection that names
 * itself a relay is not relayed on), a read transaction, and ROUTE naming
 * the leader. With "gone": two sessions that leave a result open (the
 * socket closed; GOODBYE), for the script to read the metrics after.
 * With "life LIFE_MS": a read transaction kept busy past LIFE_MS ends with
 * TransactionTimedOut (the node runs with LORA_TX_LIFE_MS_TESTING).
 * Prints
 * "ok: ..." or "FAIL: ..." per check; exits 1 when one failed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lora.h"
#include "lora_pb.h"
#include "packstream.h"

#define BC_TIMEOUT_S 30
#define BC_MSG_BYTES (1u << 20)

enum {
	M_HELLO = 0x01,
	M_GOODBYE = 0x02,
	M_RESET = 0x0F,
	M_RUN = 0x10,
	M_BEGIN = 0x11,
	M_COMMIT = 0x12,
	M_ROLLBACK = 0x13,
	M_DISCARD = 0x2F,
	M_PULL = 0x3F,
	M_ROUTE = 0x66,
	M_LOGON = 0x6A,
	M_LOGOFF = 0x6B,
	M_SUCCESS = 0x70,
	M_RECORD = 0x71,
	M_IGNORED = 0x7E,
	M_FAILURE = 0x7F,
};

static int fails;
/* the last bookmark a write answered: every RUN and BEGIN after it asks
 * for it (causal chaining, as drivers do), so reads on a follower see
 * the writes before them */
static char bookmark[128];
static const char *host, *user, *password;
static int port;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	fails += !ok;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = BC_TIMEOUT_S};
	inet_pton(AF_INET, host, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = read(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The handshake with four proposals; the server's choice (0: refused). */
static uint32_t handshake(int fd, const uint32_t v[4])
{
	uint8_t out[20] = {0x60, 0x60, 0xB0, 0x17}, in[4];
	for (int i = 0; i < 4; i++) {
		out[4 + 4 * i] = (uint8_t)(v[i] >> 24);
		out[5 + 4 * i] = (uint8_t)(v[i] >> 16);
		out[6 + 4 * i] = (uint8_t)(v[i] >> 8);
		out[7 + 4 * i] = (uint8_t)v[i];
	}
	if (write(fd, out, sizeof out) != sizeof out || read_all(fd, in, 4))
		return 0xFFFFFFFFu;
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	       (uint32_t)in[2] << 8 | in[3];
}

/* Sends the message in b (one chunk, then the end marker). */
static void send_msg(int fd, struct lora_buf *b)
{
	uint8_t h[2] = {(uint8_t)(b->len >> 8), (uint8_t)b->len}, end[2] = {0};
	if (b->len > 0xFFFF || write(fd, h, 2) != 2 ||
	    write(fd, b->data, b->len) != (ssize_t)b->len ||
	    write(fd, end, 2) != 2) {
		fprintf(stderr, "send failed\n");
		exit(1);
	}
	lora_buf_reset(b);
}

/* Receives one message into m (ps_message_free). */
static void recv_msg(int fd, struct ps_message *m)
{
	static uint8_t msg[BC_MSG_BYTES];
	size_t len = 0;
	char err[LORA_ERRMSG_BYTES];
	for (;;) {
		uint8_t h[2];
		if (read_all(fd, h, 2)) {
			fprintf(stderr, "connection closed\n");
			exit(1);
		}
		size_t n = (size_t)h[0] << 8 | h[1];
		if (n == 0 && len > 0)
			break;
		if (len + n > sizeof msg || read_all(fd, msg + len, n))
			exit(1);
		len += n;
	}
	struct ps_dec d = {0};
	if (ps_decode_message(msg, len, &d, m, err)) {
		fprintf(stderr, "bad message: %s\n", err);
		exit(1);
	}
}

static const char *str_of(const Lora__Value *v)
{
	return v && v->kind_case == LORA__VALUE__KIND_STRING_VALUE
	           ? v->string_value
	           : "";
}

/* The next message's tag; its metadata (field 0) key printed into out. */
static int expect(int fd, int tag, const char *key, char *out, size_t cap)
{
	struct ps_message m;
	recv_msg(fd, &m);
	int got = m.tag;
	if (out)
		out[0] = 0;
	if (m.n_fields && key && out) {
		const Lora__Value *v = ps_map_get(m.fields[0], key);
		if (v && v->kind_case == LORA__VALUE__KIND_INT_VALUE)
			snprintf(out, cap, "%lld", (long long)v->int_value);
		else if (v && v->kind_case == LORA__VALUE__KIND_BOOL_VALUE)
			snprintf(out, cap, "%s",
			         v->bool_value ? "true" : "false");
		else
			snprintf(out, cap, "%s", str_of(v));
	}
	if (got != tag && got == M_FAILURE && m.n_fields)
		fprintf(stderr, "FAILURE %s: %s\n",
		        str_of(ps_map_get(m.fields[0], "code")),
		        str_of(ps_map_get(m.fields[0], "message")));
	ps_message_free(&m);
	return got == tag;
}

static void put_auth(struct lora_buf *b, int with_agent)
{
	ps_put_map_header(b, with_agent ? 4 : 3);
	if (with_agent) {
		ps_put_str(b, "user_agent");
		ps_put_str(b, "bolt_client/1.0");
	}
	ps_put_str(b, "scheme");
	ps_put_str(b, "basic");
	ps_put_str(b, "principal");
	ps_put_str(b, user);
	ps_put_str(b, "credentials");
	ps_put_str(b, password);
}

/* The extra map of RUN and BEGIN: the bookmark, when there is one. */
static void put_extra(struct lora_buf *b)
{
	ps_put_map_header(b, bookmark[0] ? 1 : 0);
	if (bookmark[0]) {
		ps_put_str(b, "bookmarks");
		ps_put_list_header(b, 1);
		ps_put_str(b, bookmark);
	}
}

static void run(int fd, struct lora_buf *b, const char *query)
{
	ps_put_struct_header(b, M_RUN, 3);
	ps_put_str(b, query);
	ps_put_map_header(b, 0);
	put_extra(b);
	send_msg(fd, b);
}

static void pull(int fd, struct lora_buf *b, int tag, int64_t n)
{
	ps_put_struct_header(b, (uint8_t)tag, 1);
	ps_put_map_header(b, 1);
	ps_put_str(b, "n");
	ps_put_int(b, n);
	send_msg(fd, b);
}

static void simple(int fd, struct lora_buf *b, int tag, int map)
{
	ps_put_struct_header(b, (uint8_t)tag, map ? 1 : 0);
	if (map)
		ps_put_map_header(b, 0);
	send_msg(fd, b);
}

/* Reads records until the summary; their count, the summary's has_more. */
static int records(int fd, int *has_more)
{
	int n = 0;
	*has_more = 0;
	for (;;) {
		struct ps_message m;
		recv_msg(fd, &m);
		int tag = m.tag;
		if (tag == M_SUCCESS && m.n_fields) {
			const Lora__Value *h =
			    ps_map_get(m.fields[0], "has_more");
			*has_more = h && h->bool_value;
			h = ps_map_get(m.fields[0], "bookmark");
			if (h && h->kind_case == LORA__VALUE__KIND_STRING_VALUE)
				snprintf(bookmark, sizeof bookmark, "%s",
				         h->string_value);
		}
		ps_message_free(&m);
		if (tag != M_RECORD)
			return tag == M_SUCCESS ? n : -1;
		n++;
	}
}

/* One 5.4 session, logged in. */
static int session54(struct lora_buf *b)
{
	int fd = dial();
	uint32_t v[4] = {0x00040405, 0x00000404, 0, 0};
	check(handshake(fd, v) == 0x00000405,
	      "handshake: 5.4 chosen from 5.0-5.4 and 4.4");
	ps_put_struct_header(b, M_HELLO, 1);
	ps_put_map_header(b, 1);
	ps_put_str(b, "user_agent");
	ps_put_str(b, "bolt_client/1.0");
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "HELLO (5.4)");
	ps_put_struct_header(b, M_LOGON, 1);
	put_auth(b, 0);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "LOGON");
	return fd;
}

/* ---- the checks ---------------------------------------------------------- */

static void check_handshakes(struct lora_buf *b)
{
	int fd = dial();
	uint32_t v44[4] = {0x00000404, 0, 0, 0};
	check(handshake(fd, v44) == 0x00000404, "handshake: 4.4 alone");
	ps_put_struct_header(b, M_HELLO, 1);
	put_auth(b, 1);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0),
	      "HELLO with credentials (4.4)");
	close(fd);
	fd = dial();
	uint32_t v52[4] = {0x00000205, 0, 0, 0};
	check(handshake(fd, v52) == 0x00000205, "handshake: 5.2 exactly");
	close(fd);
	fd = dial();
	uint32_t v3[4] = {0x00000003, 0, 0, 0};
	check(handshake(fd, v3) == 0, "handshake: 3.0 refused (zeros)");
	close(fd);
}

/* Receives one message's bytes (dechunked) into out; its length. */
static size_t recv_raw(int fd, uint8_t *out, size_t cap)
{
	size_t len = 0;
	for (;;) {
		uint8_t h[2];
		if (read_all(fd, h, 2))
			exit(1);
		size_t n = (size_t)h[0] << 8 | h[1];
		if (n == 0 && len > 0)
			return len;
		if (len + n > cap || read_all(fd, out + len, n))
			exit(1);
		len += n;
	}
}

/* The bookmark of a summary's raw bytes, when it has one. */
static void remember_bookmark(const uint8_t *p, size_t n)
{
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	struct ps_dec d = {0};
	if (ps_decode_message(p, n, &d, &m, err))
		return;
	const Lora__Value *v =
	    m.n_fields ? ps_map_get(m.fields[0], "bookmark") : NULL;
	if (m.tag == M_SUCCESS && v &&
	    v->kind_case == LORA__VALUE__KIND_STRING_VALUE)
		snprintf(bookmark, sizeof bookmark, "%s", v->string_value);
	ps_message_free(&m);
}

/* RUN query with {p: v} (v may be NULL: no parameters) and PULL all:
 * the first record's bytes in rec (its length), the summary consumed. */
static size_t run_one(int fd, struct lora_buf *b, const char *query,
                      const Lora__Value *v, uint8_t *rec, size_t cap)
{
	struct ps_enc e = {1, 1};
	ps_put_struct_header(b, M_RUN, 3);
	ps_put_str(b, query);
	ps_put_map_header(b, v ? 1 : 0);
	if (v) {
		ps_put_str(b, "p");
		ps_put_value(b, v, &e);
	}
	put_extra(b);
	send_msg(fd, b);
	if (!expect(fd, M_SUCCESS, NULL, NULL, 0))
		return 0;
	pull(fd, b, M_PULL, -1);
	size_t n = recv_raw(fd, rec, cap);
	if (n < 2 || rec[1] != M_RECORD) {
		remember_bookmark(rec, n);
		return 0;
	}
	int more;
	return records(fd, &more) == 0 ? n : 0; /* exactly one row */
}

/* Zone offsets for the zones the checks use (the server has the real
 * table): Europe/Paris in summer. */
static int zone(const char *name, int64_t seconds, int local, int32_t *off)
{
	(void)seconds, (void)local;
	if (strcmp(name, "Europe/Paris"))
		return LORA_EINVAL;
	*off = 7200;
	return 0;
}

/* The record's one value, decoded from its bytes (B1 71 91 <value>). */
static Lora__Value *record_value(const uint8_t *rec, size_t n)
{
	Lora__Value *v = NULL;
	char err[LORA_ERRMSG_BYTES];
	struct ps_dec d = {zone};
	if (n < 3 || rec[2] != 0x91 ||
	    ps_decode_value(rec + 3, n - 3, &d, &v, err))
		return NULL;
	return v;
}

/* The value comes back as sent, byte for byte. */
static void round_trip(int fd, struct lora_buf *b, const Lora__Value *v,
                       const char *what)
{
	static uint8_t rec[BC_MSG_BYTES];
	struct lora_buf want = {0};
	struct ps_enc e = {1, 1};
	ps_put_value(&want, v, &e);
	size_t n = run_one(fd, b, "RETURN $p AS p", v, rec, sizeof rec);
	char msg[128];
	snprintf(msg, sizeof msg, "round trip: %s", what);
	check(n == want.len + 3 && !memcmp(rec + 3, want.data, want.len), msg);
	lora_buf_free(&want);
}

static void check_values(int fd, struct lora_buf *b)
{
	Lora__Value v = LORA__VALUE__INIT, items[3], *ip[3];
	round_trip(fd, b, &v, "null");
	v.kind_case = LORA__VALUE__KIND_BOOL_VALUE;
	v.bool_value = 1;
	round_trip(fd, b, &v, "boolean");
	v.kind_case = LORA__VALUE__KIND_INT_VALUE;
	int64_t ints[] = {0, -16, 127, -129, 40000, -(1LL << 40), INT64_MAX};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		v.int_value = ints[i];
		round_trip(fd, b, &v, "integer of each width");
	}
	v.kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
	v.float_value = -3.25e100;
	round_trip(fd, b, &v, "float");
	v.kind_case = LORA__VALUE__KIND_STRING_VALUE;
	v.string_value = "h\xc3\xa9llo, a string longer than fifteen bytes";
	round_trip(fd, b, &v, "string");
	uint8_t bytes[300];
	memset(bytes, 7, sizeof bytes);
	v.kind_case = LORA__VALUE__KIND_BYTES_VALUE;
	v.bytes_value.data = bytes;
	v.bytes_value.len = sizeof bytes;
	round_trip(fd, b, &v, "bytes");
	Lora__ValueList l = LORA__VALUE_LIST__INIT;
	for (int i = 0; i < 3; i++) {
		lora__value__init(&items[i]);
		ip[i] = &items[i];
	}
	items[0].kind_case = LORA__VALUE__KIND_INT_VALUE;
	items[0].int_value = 1;
	items[1].kind_case = LORA__VALUE__KIND_STRING_VALUE;
	items[1].string_value = "a";
	l.items = ip;
	l.n_items = 3;
	v.kind_case = LORA__VALUE__KIND_LIST_VALUE;
	v.list_value = &l;
	round_trip(fd, b, &v, "list");
	Lora__MapEntry e1 = LORA__MAP_ENTRY__INIT, *ep[] = {&e1};
	Lora__ValueMap m = LORA__VALUE_MAP__INIT;
	e1.key = "k";
	e1.value = &v; /* the list */
	m.entries = ep;
	m.n_entries = 1;
	Lora__Value mv = LORA__VALUE__INIT;
	mv.kind_case = LORA__VALUE__KIND_MAP_VALUE;
	mv.map_value = &m;
	round_trip(fd, b, &mv, "map");
	/* temporal values and points: made by the server, sent back */
	static const char *made[] = {
	    "RETURN date('2024-01-02')",
	    "RETURN localtime('12:34:56.789')",
	    "RETURN time('12:00:01+01:00')",
	    "RETURN localdatetime('2024-01-02T03:04:05.5')",
	    "RETURN datetime('2024-01-02T03:04:05Z')",
	    "RETURN datetime('2024-07-02T03:04:05[Europe/Paris]')",
	    "RETURN duration('P1Y2M3DT4H5M6.007S')",
	    "RETURN point({x: 1, y: 2})",
	    "RETURN point({longitude: 10, latitude: 50, height: 3})",
	};
	static uint8_t rec[BC_MSG_BYTES];
	for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
		size_t n = run_one(fd, b, made[i], NULL, rec, sizeof rec);
		Lora__Value *t = n ? record_value(rec, n) : NULL;
		check(t != NULL, made[i]);
		if (t)
			round_trip(fd, b, t, made[i]);
		if (t)
			lora__value__free_unpacked(t, &lora_pb_allocator);
	}
	size_t n = run_one(fd, b, "RETURN vector([1.5, 2.5], 2, FLOAT64) AS v",
	                   NULL, rec, sizeof rec);
	/* a list of two floats: 92 C1 <8> C1 <8> */
	check(n == 3 + 1 + 18 && rec[3] == 0x92 && rec[4] == 0xC1 &&
	          rec[13] == 0xC1,
	      "a vector is a list of floats");
}

static void check_graph(int fd, struct lora_buf *b)
{
	static uint8_t rec[BC_MSG_BYTES];
	run_one(fd, b, "CREATE (:BA {name: 'x'})-[:BR {w: 1}]->(:BB)", NULL,
	        rec, sizeof rec);
	size_t n =
	    run_one(fd, b, "MATCH (a:BA) RETURN a", NULL, rec, sizeof rec);
	check(n > 5 && rec[3] == 0xB4 && rec[4] == 'N',
	      "a node is a Node structure (4 fields in 5.x)");
	n = run_one(fd, b, "MATCH ()-[r:BR]->() RETURN r", NULL, rec,
	            sizeof rec);
	check(n > 5 && rec[3] == 0xB8 && rec[4] == 'R',
	      "a relationship is a Relationship structure (8 fields)");
	n = run_one(fd, b, "MATCH p = (:BA)-[:BR]->(:BB) RETURN p", NULL, rec,
	            sizeof rec);
	check(n > 5 && rec[3] == 0xB3 && rec[4] == 'P',
	      "a path is a Path structure");
}

static void check_streaming(int fd, struct lora_buf *b)
{
	int more;
	run(fd, b, "UNWIND range(1, 5) AS x RETURN x");
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "RUN");
	pull(fd, b, M_PULL, 2);
	check(records(fd, &more) == 2 && more, "PULL 2: two rows, has_more");
	pull(fd, b, M_PULL, 2);
	check(records(fd, &more) == 2 && more,
	      "PULL 2 again: two rows, has_more");
	pull(fd, b, M_DISCARD, -1);
	check(records(fd, &more) == 0 && !more,
	      "DISCARD: no rows, the result ends");
	run(fd, b, "UNWIND range(1, 5) AS x RETURN x");
	expect(fd, M_SUCCESS, NULL, NULL, 0);
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 5 && !more, "PULL -1: every row");
}

/* Mode "gone": two sessions leave a result open, one closing its socket,
 * one saying GOODBYE; the script then reads the node's metrics. */
static void leave_results_open(struct lora_buf *b)
{
	for (int goodbye = 0; goodbye < 2; goodbye++) {
		int fd = session54(b), more;
		run(fd, b, "UNWIND range(1, 100000) AS x RETURN x");
		check(expect(fd, M_SUCCESS, NULL, NULL, 0), "RUN (gone)");
		pull(fd, b, M_PULL, 2);
		check(records(fd, &more) == 2 && more,
		      "PULL 2: the result stays open");
		if (goodbye)
			simple(fd, b, M_GOODBYE, 0);
		close(fd);
	}
}

static int64_t count(int fd, struct lora_buf *b, const char *query)
{
	static uint8_t rec[BC_MSG_BYTES];
	size_t n = run_one(fd, b, query, NULL, rec, sizeof rec);
	Lora__Value *v = n ? record_value(rec, n) : NULL;
	int64_t c = v && v->kind_case == LORA__VALUE__KIND_INT_VALUE
	                ? v->int_value
	                : -1;
	if (v)
		lora__value__free_unpacked(v, &lora_pb_allocator);
	return c;
}

static void tx_create(int fd, struct lora_buf *b)
{
	int more;
	ps_put_struct_header(b, M_BEGIN, 1);
	put_extra(b);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "BEGIN");
	run(fd, b, "CREATE (:BT {k: 1})");
	expect(fd, M_SUCCESS, NULL, NULL, 0);
	pull(fd, b, M_PULL, -1);
	records(fd, &more);
}

static void check_transactions(int fd, struct lora_buf *b)
{
	char bm[128];
	static uint8_t rec[BC_MSG_BYTES];
	run_one(fd, b, "MATCH (t:BT) DELETE t", NULL, rec, sizeof rec);
	tx_create(fd, b);
	simple(fd, b, M_ROLLBACK, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "ROLLBACK");
	check(count(fd, b, "MATCH (t:BT) RETURN count(t)") == 0,
	      "a rolled back write is not kept");
	tx_create(fd, b);
	check(count(fd, b, "MATCH (t:BT) RETURN count(t)") == 1,
	      "a transaction reads its own write");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_SUCCESS, "bookmark", bm, sizeof bm) && bm[0],
	      "COMMIT answers a bookmark");
	snprintf(bookmark, sizeof bookmark, "%s", bm);
	check(count(fd, b, "MATCH (t:BT) RETURN count(t)") == 1,
	      "a committed write is kept");
}

static void check_reset(int fd, struct lora_buf *b)
{
	char code[128];
	int more;
	run(fd, b, "RETURN 1 +");
	check(expect(fd, M_FAILURE, "code", code, sizeof code) &&
	          !strcmp(code, "Neo.ClientError.Statement.SyntaxError"),
	      "a syntax error is Neo.ClientError.Statement.SyntaxError");
	pull(fd, b, M_PULL, -1);
	check(expect(fd, M_IGNORED, NULL, NULL, 0),
	      "after a failure, requests are IGNORED");
	simple(fd, b, M_RESET, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "RESET");
	run(fd, b, "RETURN 1");
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "RUN after RESET");
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "its row");
	/* a user command in auto-commit is answered as over HTTP (it was a
	 * syntax error over Bolt) */
	run(fd, b, "SHOW USERS");
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "SHOW USERS over Bolt");
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) >= 0 && !more, "its rows");
}

/* The addresses of role in the routing table rt ("" when none). */
static void role_addresses(const Lora__Value *rt, const char *role, char *out,
                           size_t cap)
{
	const Lora__Value *s = ps_map_get(rt, "servers");
	out[0] = 0;
	for (size_t i = 0; s && s->list_value && i < s->list_value->n_items;
	     i++) {
		const Lora__Value *e = s->list_value->items[i];
		if (strcmp(str_of(ps_map_get(e, "role")), role))
			continue;
		const Lora__Value *a = ps_map_get(e, "addresses");
		for (size_t k = 0;
		     a && a->list_value && k < a->list_value->n_items; k++) {
			size_t len = strlen(out);
			snprintf(out + len, cap - len, "%s ",
			         str_of(a->list_value->items[k]));
		}
	}
}

static void check_route(int fd, struct lora_buf *b, const char *leader)
{
	char addr[64], w[256], r[256], ro[256], want[80];
	snprintf(addr, sizeof addr, "%s:%d", host, port);
	ps_put_struct_header(b, M_ROUTE, 3);
	ps_put_map_header(b, 1);
	ps_put_str(b, "address");
	ps_put_str(b, addr);
	ps_put_list_header(b, 0);
	ps_put_map_header(b, 0);
	send_msg(fd, b);
	struct ps_message m;
	recv_msg(fd, &m);
	const Lora__Value *rt = m.tag == M_SUCCESS && m.n_fields
	                            ? ps_map_get(m.fields[0], "rt")
	                            : NULL;
	const Lora__Value *ttl = ps_map_get(rt, "ttl");
	check(ttl && ttl->kind_case == LORA__VALUE__KIND_INT_VALUE &&
	          ttl->int_value > 0,
	      "ROUTE: a table with a ttl");
	role_addresses(rt, "WRITE", w, sizeof w);
	role_addresses(rt, "READ", r, sizeof r);
	role_addresses(rt, "ROUTE", ro, sizeof ro);
	snprintf(want, sizeof want, "%s:%d ", leader, port);
	printf("route: WRITE %s| READ %s| ROUTE %s\n", w, r, ro);
	check(!strcmp(w, want), "ROUTE: the leader is the writer");
	int nr = 0, nro = 0;
	for (char *p = r; (p = strchr(p, ' ')); p++)
		nr++;
	for (char *p = ro; (p = strchr(p, ' ')); p++)
		nro++;
	check(nr == 3 && nro == 3, "ROUTE: three readers and routers");
	ps_message_free(&m);
}

/* LOGOFF (5.1+) leaves the connection open, unauthenticated; a wrong
 * password at LOGON is Neo.ClientError.Security.Unauthorized; the right
 * one logs in again. */
static void check_logoff(int fd, struct lora_buf *b)
{
	char code[128];
	int more;
	simple(fd, b, M_LOGOFF, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "LOGOFF");
	const char *pw = password;
	password = "not-the-password";
	ps_put_struct_header(b, M_LOGON, 1);
	put_auth(b, 0);
	send_msg(fd, b);
	password = pw;
	check(expect(fd, M_FAILURE, "code", code, sizeof code) &&
	          !strcmp(code, "Neo.ClientError.Security.Unauthorized"),
	      "LOGON with a wrong password: Security.Unauthorized");
	close(fd);
	fd = session54(b);
	simple(fd, b, M_LOGOFF, 0);
	expect(fd, M_SUCCESS, NULL, NULL, 0);
	ps_put_struct_header(b, M_LOGON, 1);
	put_auth(b, 0);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "LOGON again after LOGOFF");
	run(fd, b, "RETURN 1");
	expect(fd, M_SUCCESS, NULL, NULL, 0);
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "a statement after LOGON again");
	simple(fd, b, M_GOODBYE, 0);
	close(fd);
}

/* BEGIN (write) and CREATE (:BFT {k: k}), its rows pulled. */
static void tx_create_k(int fd, struct lora_buf *b, int k)
{
	int more;
	char q[64];
	ps_put_struct_header(b, M_BEGIN, 1);
	put_extra(b);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0),
	      "a write BEGIN on a follower");
	snprintf(q, sizeof q, "CREATE (t:BFT {k: %d}) RETURN t.k", k);
	run(fd, b, q);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "its CREATE");
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "the CREATE's row");
}

/* A connection that says it is a follower's relay (HELLO's user_agent)
 * is not relayed on: a write BEGIN on a follower is NotALeader there, so
 * two nodes that take each other for the leader cannot relay in a loop. */
static void check_relay_loop(struct lora_buf *b)
{
	char code[128];
	int fd = dial();
	uint32_t v[4] = {0x00000405, 0, 0, 0};
	check(handshake(fd, v) == 0x00000405, "relay: handshake 5.4");
	ps_put_struct_header(b, M_HELLO, 1);
	ps_put_map_header(b, 1);
	ps_put_str(b, "user_agent");
	ps_put_str(b, "LoraDB-C follower relay");
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "relay: HELLO");
	ps_put_struct_header(b, M_LOGON, 1);
	put_auth(b, 0);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "relay: LOGON");
	ps_put_struct_header(b, M_BEGIN, 1);
	put_extra(b);
	send_msg(fd, b);
	check(expect(fd, M_FAILURE, "code", code, sizeof code) &&
	          !strcmp(code, "Neo.ClientError.Cluster.NotALeader"),
	      "a relay's write BEGIN on a follower: NotALeader, not relayed "
	      "again");
	close(fd);
}

/* Bolt 4.4 (credentials in HELLO, no LOGON): a write transaction on a
 * follower is relayed in 4.4 too, and commits. */
static void check_follower_tx44(struct lora_buf *b)
{
	char bm[128];
	int fd = dial();
	uint32_t v44[4] = {0x00000404, 0, 0, 0};
	check(handshake(fd, v44) == 0x00000404, "4.4: handshake");
	ps_put_struct_header(b, M_HELLO, 1);
	put_auth(b, 1);
	send_msg(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "4.4: HELLO");
	tx_create_k(fd, b, 44);
	check(count(fd, b, "MATCH (t:BFT {k: 44}) RETURN count(t)") == 1,
	      "4.4 follower tx: reads its own write");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_SUCCESS, "bookmark", bm, sizeof bm) &&
	          !strncmp(bm, "lora:", 5),
	      "4.4 follower tx: COMMIT answers a bookmark");
	snprintf(bookmark, sizeof bookmark, "%s", bm);
	check(count(fd, b, "MATCH (t:BFT {k: 44}) RETURN count(t)") == 1,
	      "4.4 follower tx: committed");
	close(fd);
}

/* On a follower, a write transaction runs on the leader: its reads see
 * its writes, nobody else's do before COMMIT; ROLLBACK, and a failed
 * statement then RESET, leave nothing; COMMIT's bookmark shows the write
 * here and on the leader. Idempotent (the run may be repeated). */
static void check_follower_tx(int fd, struct lora_buf *b, const char *leader)
{
	static uint8_t rec[BC_MSG_BYTES];
	char bm[128], code[128];
	const char *q = "MATCH (t:BFT) RETURN count(t)";
	run_one(fd, b, "MATCH (t:BFT) DELETE t", NULL, rec, sizeof rec);
	int other = session54(b);
	tx_create_k(fd, b, 1);
	check(count(fd, b, q) == 1, "follower tx: reads its own write");
	check(count(other, b, q) == 0,
	      "follower tx: another session does not see it");
	simple(fd, b, M_ROLLBACK, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "follower tx: ROLLBACK");
	check(count(fd, b, q) == 0, "follower tx: rolled back, nothing kept");
	tx_create_k(fd, b, 2);
	run(fd, b, "RETURN 1 / 0");
	check(expect(fd, M_FAILURE, "code", code, sizeof code) &&
	          !strcmp(code, "Neo.ClientError.Statement.ArithmeticError"),
	      "follower tx: a failing statement, the leader's code");
	pull(fd, b, M_PULL, -1);
	check(expect(fd, M_IGNORED, NULL, NULL, 0),
	      "follower tx: IGNORED after it");
	simple(fd, b, M_RESET, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "follower tx: RESET");
	check(count(fd, b, q) == 0, "follower tx: the failed one kept nothing");
	tx_create_k(fd, b, 3);
	run(fd, b, "MATCH (t:BFT) SET t.seen = true RETURN t.k");
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "follower tx: a 2nd RUN");
	int more;
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "follower tx: it matches its write");
	check(count(other, b, q) == 0,
	      "follower tx: still unseen by another session");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_SUCCESS, "bookmark", bm, sizeof bm) &&
	          !strncmp(bm, "lora:", 5),
	      "follower tx: COMMIT answers a bookmark");
	snprintf(bookmark, sizeof bookmark, "%s", bm);
	check(count(fd, b,
	            "MATCH (t:BFT {k: 3, seen: true}) RETURN count(t)") == 1 &&
	          count(fd, b, q) == 1,
	      "follower tx: committed, seen here with its bookmark");
	check(count(other, b, q) == 1, "follower tx: and by another session");
	const char *here = host;
	host = leader;
	int lfd = session54(b);
	host = here;
	check(count(lfd, b, q) == 1, "follower tx: and on the leader");
	close(lfd);
	close(other);
	check_relay_loop(b);
	check_follower_tx44(b);
}

static void begin_read(int fd, struct lora_buf *b)
{
	ps_put_struct_header(b, M_BEGIN, 1);
	ps_put_map_header(b, 1);
	ps_put_str(b, "mode");
	ps_put_str(b, "r");
	send_msg(fd, b);
}

/* On a follower: an auto-commit write is forwarded to the leader and its
 * bookmark makes the next read here see it; a write transaction runs on
 * the leader (check_follower_tx); a read BEGIN runs here. */
static void check_follower(int fd, struct lora_buf *b, const char *leader)
{
	static uint8_t rec[BC_MSG_BYTES];
	int more;
	run_one(fd, b, "MERGE (f:BF {k: 1}) SET f.n = coalesce(f.n, 0) + 1",
	        NULL, rec, sizeof rec);
	check(bookmark[0] != 0, "a write through a follower: a bookmark");
	check(count(fd, b, "MATCH (f:BF) RETURN count(f)") == 1,
	      "a read with that bookmark sees the write");
	check_follower_tx(fd, b, leader);
	begin_read(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0),
	      "a read BEGIN on a follower");
	run(fd, b, "MATCH (f:BF) RETURN f.k");
	expect(fd, M_SUCCESS, NULL, NULL, 0);
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "its read");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "COMMIT of the read");
}

/* A read transaction kept busy (a statement every life_ms / 8, never
 * idle) ends once it is life_ms old, as an HTTP one does: its next
 * statement fails with TransactionTimedOut; after a RESET a new one
 * begins. The node runs with LORA_TX_LIFE_MS_TESTING=life_ms. */
static void check_read_life(struct lora_buf *b, int64_t life_ms)
{
	int fd = session54(b), more, ok = 1;
	char code[128] = "";
	begin_read(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "a read BEGIN");
	uint64_t t0 = lora_now_ms(), deadline = t0 + 3 * life_ms + 10000;
	while (ok && lora_now_ms() < deadline) {
		usleep((useconds_t)life_ms * 1000 / 8);
		run(fd, b, "RETURN 1");
		ok = expect(fd, M_SUCCESS, "code", code, sizeof code);
		if (ok) {
			pull(fd, b, M_PULL, -1);
			ok = records(fd, &more) == 1;
		}
	}
	uint64_t took = lora_now_ms() - t0;
	printf("the read transaction ended after %llu ms: %s\n",
	       (unsigned long long)took, code);
	check(!ok && !strcmp(code,
	                     "Neo.ClientError.Transaction.TransactionTimedOut"),
	      "a busy read transaction ends: TransactionTimedOut");
	check(took >= (uint64_t)life_ms, "not before its life limit");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_IGNORED, NULL, NULL, 0), "then COMMIT is IGNORED");
	simple(fd, b, M_RESET, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "RESET");
	begin_read(fd, b);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "a new read BEGIN");
	run(fd, b, "RETURN 1");
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "runs");
	pull(fd, b, M_PULL, -1);
	check(records(fd, &more) == 1, "its row");
	simple(fd, b, M_COMMIT, 0);
	check(expect(fd, M_SUCCESS, NULL, NULL, 0), "and commits");
	simple(fd, b, M_GOODBYE, 0);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5 && argc != 6) {
		fprintf(stderr, "usage: bolt_client HOST PORT LEADER_HOST "
		                "[follower | gone | life LIFE_MS]\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	user = getenv("LORA_USER") ? getenv("LORA_USER") : "admin";
	password = getenv("LORA_PASSWORD") ? getenv("LORA_PASSWORD") : "";
	struct lora_buf b = {0};
	if (argc == 6 && !strcmp(argv[4], "life")) {
		check_read_life(&b, atoll(argv[5]));
		lora_buf_free(&b);
		printf("%d check(s) failed\n", fails);
		return fails ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[4], "gone")) {
		leave_results_open(&b);
		lora_buf_free(&b);
		printf("%d check(s) failed\n", fails);
		return fails ? 1 : 0;
	}
	check_handshakes(&b);
	int fd = session54(&b);
	if (argc == 5) {
		check_follower(fd, &b, argv[3]);
	} else {
		check_values(fd, &b);
		check_graph(fd, &b);
		check_streaming(fd, &b);
		check_transactions(fd, &b);
		check_reset(fd, &b);
		check_logoff(session54(&b), &b);
	}
	check_route(fd, &b, argv[3]);
	simple(fd, &b, M_GOODBYE, 0);
	uint8_t x;
	check(read(fd, &x, 1) == 0, "GOODBYE closes the connection");
	close(fd);
	lora_buf_free(&b);
	printf("%d check(s) failed\n", fails);
	return fails ? 1 : 0;
}
