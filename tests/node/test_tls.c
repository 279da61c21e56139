/* test_tls.c - the TLS settings (tls_config.c), TLS over our own
 * non-blocking sockets (tls_conn.c) on real socket pairs and the peer
 * port's TLS on memory buffers (tls_peer.c), with certificates from
 * deploy/gen-certs.sh (openssl): handshakes, a payload larger than the
 * socket buffers both ways, and the refusals a user relies on (another
 * CA, another node's name, no client certificate, plaintext). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "config.h"
#include "tls.h"

#define T_BIG_BYTES (1u << 20) /* more than a socket buffer holds */
#define T_STEPS_MAX 100000
#define T_SOCKBUF   4096 /* small buffers: WANT_WRITE really happens */

static char dir[64]; /* certificates: ca, node1, node2; other/ca */

static void certs_make(void)
{
	snprintf(dir, sizeof dir, "/tmp/lora-tls-test.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	char cmd[512];
	snprintf(cmd, sizeof cmd,
	         "%s/deploy/gen-certs.sh %s/c 1@127.0.0.1 2@127.0.0.2 "
	         ">/dev/null && %s/deploy/gen-certs.sh %s/other 1@127.0.0.1 "
	         ">/dev/null",
	         LORA_SOURCE_DIR, dir, LORA_SOURCE_DIR, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls: deploy/gen-certs.sh failed\n");
		exit(1);
	}
}

static void certs_remove(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_tls: cannot remove %s\n", dir);
}

/* A listener's settings with node id's files from sub (c or other). */
static struct node_tls tls_of(const char *sub, int id)
{
	struct node_tls t = {.mode = NODE_TLS_REQUIRED};
	snprintf(t.ca, sizeof t.ca, "%s/%s/ca.pem", dir, sub);
	if (id) {
		snprintf(t.cert, sizeof t.cert, "%s/%s/node%d.pem", dir, sub,
		         id);
		snprintf(t.key, sizeof t.key, "%s/%s/node%d.key", dir, sub, id);
	}
	return t;
}

static void pair(int fds[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	int b = T_SOCKBUF;
	for (int i = 0; i < 2; i++) {
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
	}
}

/* Steps both handshakes until each is done or fails: 0 both done, else
 * -1 (errno of the failing side: EPROTO for a refusal). */
static int handshake_both(struct node_tls_conn *a, struct node_tls_conn *b)
{
	int done_a = 0, done_b = 0;
	for (int i = 0; i < T_STEPS_MAX && !(done_a && done_b); i++) {
		if (!done_a) {
			if (node_tls_handshake(a) == 0)
				done_a = 1;
			else if (errno != EAGAIN)
				return -1;
		}
		if (!done_b) {
			if (node_tls_handshake(b) == 0)
				done_b = 1;
			else if (errno != EAGAIN)
				return -1;
		}
	}
	return done_a && done_b ? 0 : -1;
}

START_TEST(settings_apply_and_validate)
{
	char err[LORA_ERRMSG_BYTES];
	struct node_config c;
	node_config_defaults(&c);
	struct node_tls t = tls_of("c", 1);
	ck_assert_int_eq(node_config_set(&c, "tls", "required", err), 0);
	ck_assert_int_eq(node_config_set(&c, "tls_cert", t.cert, err), 0);
	ck_assert_int_eq(node_config_set(&c, "tls_key", t.key, err), 0);
	ck_assert_int_eq(node_config_set(&c, "tls_ca", t.ca, err), 0);
	ck_assert_int_eq(c.http_tls.mode, NODE_TLS_REQUIRED);
	ck_assert_int_eq(c.bolt_tls.mode, NODE_TLS_REQUIRED);
	ck_assert_str_eq(c.peer_tls.ca, t.ca);
	ck_assert_str_eq(c.native_tls.cert, t.cert);
	ck_assert_int_eq(node_config_validate_tls(&c, err), 0);
	/* one port alone */
	ck_assert_int_eq(node_config_set(&c, "http_tls", "optional", err), 0);
	ck_assert_int_eq(c.http_tls.mode, NODE_TLS_OPTIONAL);
	ck_assert_int_eq(c.native_tls.mode, NODE_TLS_REQUIRED);
	ck_assert_int_eq(node_config_validate_tls(&c, err), 0);
	/* nng ports cannot sniff: optional refused there ... */
	ck_assert_int_eq(node_config_set(&c, "native_tls", "optional", err), 0);
	ck_assert_int_eq(node_config_validate_tls(&c, err), LORA_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "native_tls"));
	/* ... and the shorthand's optional means required for them */
	ck_assert_int_eq(node_config_set(&c, "tls", "optional", err), 0);
	ck_assert_int_eq(c.native_tls.mode, NODE_TLS_REQUIRED);
	ck_assert_int_eq(c.peer_tls.mode, NODE_TLS_REQUIRED);
	ck_assert_int_eq(c.bolt_tls.mode, NODE_TLS_OPTIONAL);
	ck_assert_int_eq(node_config_validate_tls(&c, err), 0);
	/* peers need a CA; files must be readable; bad modes refused */
	ck_assert_int_eq(node_config_set(&c, "peer_tls_ca", "", err), 0);
	ck_assert_int_eq(node_config_validate_tls(&c, err), LORA_ECONFIG);
	ck_assert_int_eq(node_config_set(&c, "peer_tls_ca", t.ca, err), 0);
	ck_assert_int_eq(
	    node_config_set(&c, "http_tls_key", "/nonexistent.key", err), 0);
	ck_assert_int_eq(node_config_validate_tls(&c, err), LORA_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent.key"));
	ck_assert_int_eq(node_config_set(&c, "tls", "maybe", err),
	                 LORA_ECONFIG);
	ck_assert_int_eq(node_config_set(&c, "off_tls", "on", err),
	                 LORA_ECONFIG); /* unknown setting */
}
END_TEST

/* Sends all of buf on a (non-blocking), reading b's side into out as it
 * goes, until out holds len bytes. */
static void pump(struct node_tls_conn *a, struct node_tls_conn *b,
                 const char *buf, char *out, size_t len)
{
	size_t sent = 0, got = 0;
	for (int i = 0; i < T_STEPS_MAX * 10 && got < len; i++) {
		if (sent < len || node_tls_flush(a) != 0) {
			ssize_t w = sent < len ? node_tls_send(a, buf + sent,
			                                       len - sent)
			                       : 0;
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0)
				ck_assert_int_eq(errno, EAGAIN);
		}
		ssize_t r = node_tls_recv(b, out + got, len - got);
		if (r > 0)
			got += (size_t)r;
		else
			ck_assert(r < 0 && errno == EAGAIN);
	}
	ck_assert_uint_eq(got, len);
	ck_assert_int_eq(node_tls_flush(a), 0);
	ck_assert(memcmp(buf, out, len) == 0);
}

START_TEST(handshake_and_big_payload_both_ways)
{
	char err[LORA_ERRMSG_BYTES];
	struct node_tls st = tls_of("c", 1), ct = tls_of("c", 0);
	struct node_tls_ctx *sx, *cx;
	ck_assert_int_eq(node_tls_ctx_new(&st, 1, &sx, err), 0);
	ck_assert_int_eq(node_tls_ctx_new(&ct, 0, &cx, err), 0);
	int fds[2];
	pair(fds);
	struct node_tls_conn *s, *c;
	ck_assert_int_eq(node_tls_conn_new(sx, fds[0], NULL, &s), 0);
	ck_assert_int_eq(node_tls_conn_new(cx, fds[1], "lora-node-1", &c), 0);
	ck_assert_int_eq(handshake_both(s, c), 0);
	char *buf = malloc(T_BIG_BYTES), *out = malloc(T_BIG_BYTES);
	ck_assert(buf && out);
	for (size_t i = 0; i < T_BIG_BYTES; i++)
		buf[i] = (char)(i * 7 + 3);
	pump(c, s, buf, out, T_BIG_BYTES);
	memset(out, 0, T_BIG_BYTES);
	pump(s, c, buf, out, T_BIG_BYTES);
	/* close_notify reads as the end of the stream */
	node_tls_close_notify(c);
	char one;
	ssize_t r;
	for (int i = 0; i < 100 && (r = node_tls_recv(s, &one, 1)) < 0; i++)
		ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(r, 0);
	free(buf);
	free(out);
	node_tls_conn_free(s);
	node_tls_conn_free(c);
	close(fds[0]);
	close(fds[1]);
	node_tls_ctx_free(sx);
	node_tls_ctx_free(cx);
}
END_TEST

/* A client of trust (sub, name) against node 1's server: 0 or -1. */
static int try_client(const char *sub, const char *name)
{
	char err[LORA_ERRMSG_BYTES];
	struct node_tls st = tls_of("c", 1), ct = tls_of(sub, 0);
	struct node_tls_ctx *sx, *cx;
	ck_assert_int_eq(node_tls_ctx_new(&st, 1, &sx, err), 0);
	ck_assert_int_eq(node_tls_ctx_new(&ct, 0, &cx, err), 0);
	int fds[2];
	pair(fds);
	struct node_tls_conn *s, *c;
	ck_assert_int_eq(node_tls_conn_new(sx, fds[0], NULL, &s), 0);
	ck_assert_int_eq(node_tls_conn_new(cx, fds[1], name, &c), 0);
	int rc = handshake_both(s, c);
	int e = errno;
	node_tls_conn_free(s);
	node_tls_conn_free(c);
	close(fds[0]);
	close(fds[1]);
	node_tls_ctx_free(sx);
	node_tls_ctx_free(cx);
	errno = e;
	return rc;
}

START_TEST(refusals)
{
	/* the right CA and name: the control */
	ck_assert_int_eq(try_client("c", "lora-node-1"), 0);
	/* a client that trusts another CA */
	ck_assert_int_eq(try_client("other", "lora-node-1"), -1);
	ck_assert_int_eq(errno, EPROTO);
	/* node 1's certificate where node 2 was expected */
	ck_assert_int_eq(try_client("c", "lora-node-2"), -1);
	ck_assert_int_eq(errno, EPROTO);
	/* plaintext to a TLS server: the handshake fails, with a reason */
	char err[LORA_ERRMSG_BYTES];
	struct node_tls st = tls_of("c", 1);
	struct node_tls_ctx *sx;
	ck_assert_int_eq(node_tls_ctx_new(&st, 1, &sx, err), 0);
	int fds[2];
	pair(fds);
	struct node_tls_conn *s;
	ck_assert_int_eq(node_tls_conn_new(sx, fds[0], NULL, &s), 0);
	static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(write(fds[1], get, sizeof get - 1),
	                 (ssize_t)sizeof get - 1);
	ck_assert_int_eq(node_tls_handshake(s), -1);
	ck_assert_int_eq(errno, EPROTO);
	char why[128] = "";
	node_tls_error(s, why, sizeof why);
	ck_assert(why[0] != '\0');
	node_tls_conn_free(s);
	close(fds[0]);
	close(fds[1]);
	node_tls_ctx_free(sx);
	/* a listener without a key, a client without a CA */
	struct node_tls nokey = tls_of("c", 1), noca = tls_of("c", 0);
	nokey.key[0] = '\0';
	noca.ca[0] = '\0';
	ck_assert_int_eq(node_tls_ctx_new(&nokey, 1, &sx, err), LORA_ECONFIG);
	ck_assert_int_eq(node_tls_ctx_new(&noca, 0, &sx, err), LORA_ECONFIG);
}
END_TEST

/* Our engine stays nng's TLS engine when our configuration is the
 * process's first nng call (review finding 5: nng's initialisation then
 * put its own engine back, and no peer could be identified). */
START_TEST(engine_survives_nng_init)
{
	char err[LORA_ERRMSG_BYTES];
	struct node_tls t = tls_of("c", 1);
	nng_tls_config *cfg;
	ck_assert_int_eq(node_tls_nng_config(&t, 1, 1, NULL, &cfg, err), 0);
	ck_assert_str_eq(nng_tls_engine_name(), "lora-mbedtls");
	nng_tls_config_free(cfg);
	nng_stream_listener *l;
	ck_assert_int_eq(nng_stream_listener_alloc(&l, "tls+tcp://127.0.0.1:0"),
	                 0);
	nng_stream_listener_free(l);
	ck_assert_str_eq(nng_tls_engine_name(), "lora-mbedtls");
}
END_TEST

/* One end of a memory TLS session (tls_peer.c): what it made for the
 * other end waits in out. */
struct mem_end {
	struct node_tls_mem *m;
	struct node_tls_ctx *x;
	unsigned char *out;
	size_t len, cap;
};

static int mem_sink(void *arg, const uint8_t *p, size_t n)
{
	struct mem_end *e = arg;
	if (e->len + n > e->cap) {
		size_t cap = (e->len + n) * 2;
		unsigned char *q = realloc(e->out, cap);
		if (q == NULL)
			return LORA_ENOMEM;
		e->out = q, e->cap = cap;
	}
	memcpy(e->out + e->len, p, n);
	e->len += n;
	return 0;
}

/* A server (cert_of 0: none) or client end with peer contexts from the
 * files of node cert_of in sub; name: what the server must name. */
static void mem_open(struct mem_end *e, int server, const char *sub,
                     int cert_of, const char *name)
{
	char err[LORA_ERRMSG_BYTES];
	memset(e, 0, sizeof *e);
	struct node_tls t = tls_of(sub, cert_of);
	ck_assert_msg(node_tls_ctx_new_peer(&t, server, &e->x, err) == 0, "%s",
	              err);
	ck_assert_int_eq(node_tls_mem_new(e->x, name, mem_sink, e, &e->m), 0);
}

static void mem_close(struct mem_end *e)
{
	node_tls_mem_free(e->m);
	node_tls_ctx_free(e->x);
	free(e->out);
}

/* Moves what `from` made into `to`, at most what `to` has room for. */
static void mem_move(struct mem_end *from, struct mem_end *to)
{
	size_t room;
	unsigned char *p = node_tls_mem_in_room(to->m, &room);
	size_t n = from->len < room ? from->len : room;
	memcpy(p, from->out, n);
	node_tls_mem_in_put(to->m, n);
	memmove(from->out, from->out + n, from->len - n);
	from->len -= n;
}

/* Steps both handshakes, moving the bytes between them: 0 when both are
 * done, else the first refusal (LORA_ETIMEOUT: stuck). */
static int mem_handshake(struct mem_end *c, struct mem_end *s)
{
	int rc_c = LORA_ETIMEOUT, rc_s = LORA_ETIMEOUT;
	for (int i = 0; i < 100 && (rc_c || rc_s); i++) {
		rc_c = node_tls_mem_handshake(c->m);
		mem_move(c, s);
		if (rc_c != 0 && rc_c != LORA_ETIMEOUT)
			return rc_c;
		rc_s = node_tls_mem_handshake(s->m);
		mem_move(s, c);
		if (rc_s != 0 && rc_s != LORA_ETIMEOUT)
			return rc_s;
	}
	return rc_c ? rc_c : rc_s;
}

/* len bytes from a to b through records, in room-sized steps. */
static void mem_pump(struct mem_end *a, struct mem_end *b, const char *buf,
                     char *out, size_t len)
{
	ck_assert_int_eq(node_tls_mem_write(a->m, buf, len), 0);
	size_t got = 0;
	while (got < len) {
		size_t before = a->len, n;
		mem_move(a, b);
		ck_assert_int_eq(
		    node_tls_mem_read(b->m, out + got, len - got, &n), 0);
		ck_assert(n > 0 || a->len < before); /* progress */
		got += n;
	}
	ck_assert_int_eq(memcmp(buf, out, len), 0);
}

/* The peer port's TLS on memory buffers: mutual handshake, each end
 * learns the node id the other's certificate names, 1 MiB both ways,
 * and a close_notify reads as closed. */
START_TEST(mem_session_both_ways)
{
	struct mem_end s, c;
	mem_open(&s, 1, "c", 1, NULL);
	mem_open(&c, 0, "c", 2, "lora-node-1");
	ck_assert_int_eq(node_tls_mem_peer_id(s.m), 0); /* not yet */
	ck_assert_int_eq(mem_handshake(&c, &s), 0);
	ck_assert(node_tls_mem_done(s.m) && node_tls_mem_done(c.m));
	ck_assert_uint_eq(node_tls_mem_peer_id(s.m), 2);
	ck_assert_uint_eq(node_tls_mem_peer_id(c.m), 1);
	char *buf = malloc(T_BIG_BYTES), *out = malloc(T_BIG_BYTES);
	ck_assert(buf && out);
	for (size_t i = 0; i < T_BIG_BYTES; i++)
		buf[i] = (char)(i * 7 + 3);
	mem_pump(&c, &s, buf, out, T_BIG_BYTES);
	memset(out, 0, T_BIG_BYTES);
	mem_pump(&s, &c, buf, out, T_BIG_BYTES);
	node_tls_mem_close_notify(c.m);
	mem_move(&c, &s);
	size_t n;
	ck_assert_int_eq(node_tls_mem_read(s.m, out, 1, &n), LORA_ECLOSED);
	free(buf);
	free(out);
	mem_close(&s);
	mem_close(&c);
}
END_TEST

/* A server (node 1, cluster CA) against a client from sub with the
 * certificate of node cert_of (0: none) expecting name: the result. */
static int mem_try(const char *sub, int cert_of, const char *name)
{
	struct mem_end s, c;
	mem_open(&s, 1, "c", 1, NULL);
	mem_open(&c, 0, sub, cert_of, name);
	int rc = mem_handshake(&c, &s);
	mem_close(&s);
	mem_close(&c);
	return rc;
}

/* What the peer port refuses: a server that does not name the id dialed,
 * a client without a certificate, and both ends of another CA; a
 * garbled record after the handshake. */
START_TEST(mem_session_refusals)
{
	ck_assert_int_eq(mem_try("c", 2, "lora-node-1"), 0); /* the control */
	ck_assert_int_eq(mem_try("c", 2, "lora-node-3"), LORA_EUNAUTHORIZED);
	ck_assert_int_ne(mem_try("c", 0, "lora-node-1"), 0);
	ck_assert_int_eq(mem_try("other", 1, "lora-node-1"),
	                 LORA_EUNAUTHORIZED);
	struct mem_end s, c;
	mem_open(&s, 1, "c", 1, NULL);
	mem_open(&c, 0, "c", 2, "lora-node-1");
	ck_assert_int_eq(mem_handshake(&c, &s), 0);
	ck_assert_int_eq(node_tls_mem_write(c.m, "hello", 5), 0);
	c.out[c.len - 1] ^= 1; /* the record's tag no longer matches */
	mem_move(&c, &s);
	char out[8];
	size_t n;
	ck_assert_int_ne(node_tls_mem_read(s.m, out, sizeof out, &n), 0);
	mem_close(&s);
	mem_close(&c);
	/* a peer server context needs a CA */
	char err[LORA_ERRMSG_BYTES];
	struct node_tls noca = tls_of("c", 1);
	noca.ca[0] = '\0';
	struct node_tls_ctx *x;
	ck_assert_int_eq(node_tls_ctx_new_peer(&noca, 1, &x, err),
	                 LORA_ECONFIG);
}
END_TEST

/* node_tls_name_id: canonical names only (review finding 8). */
START_TEST(name_id_canonical)
{
	static const struct {
		const char *name;
		uint64_t id;
	} cases[] = {
	    {"lora-node-1", 1},
	    {"lora-node-42", 42},
	    {"lora-node-18446744073709551615", UINT64_MAX},
	    {"lora-node-18446744073709551616", 0}, /* overflows */
	    {"lora-node-99999999999999999999", 0},
	    {"lora-node-01", 0}, /* leading zero: a second name for 1 */
	    {"lora-node-0", 0},
	    {"lora-node-", 0},
	    {"lora-node-1x", 0},
	    {"lora-node--1", 0},
	    {"Lora-node-1", 0},
	    {"lora-node-1.example", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(
		    node_tls_name_id((const unsigned char *)cases[i].name,
		                     strlen(cases[i].name)) == cases[i].id,
		    "%s", cases[i].name);
}
END_TEST

/* A self-signed certificate with subject /CN=cn and, when san, that
 * subjectAltName: its id by node_tls_cert_pem_id. */
static uint64_t id_of_cert(const char *cn, const char *san)
{
	char cmd[1024], path[128];
	snprintf(path, sizeof path, "%s/t.pem", dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey ec -pkeyopt "
	         "ec_paramgen_curve:P-256 -nodes -keyout %s/t.key -out %s "
	         "-days 1 -subj /CN=%s %s%s 2>/dev/null",
	         dir, path, cn, san ? "-addext subjectAltName=" : "",
	         san ? san : "");
	ck_assert_int_eq(system(cmd), 0);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	static char pem[8192];
	size_t n = fread(pem, 1, sizeof pem - 1, f);
	fclose(f);
	pem[n] = '\0';
	return node_tls_cert_pem_id(pem);
}

/* The id a peer certificate names: exactly one canonical DNS SAN
 * "lora-node-<id>", never the CN (review finding 8). */
START_TEST(cert_id_one_canonical_san)
{
	ck_assert_uint_eq(id_of_cert("x", "DNS:lora-node-7,DNS:localhost"), 7);
	ck_assert_uint_eq(id_of_cert("lora-node-9", "DNS:lora-node-7"), 7);
	ck_assert_uint_eq(id_of_cert("x", "DNS:lora-node-07"), 0);
	ck_assert_uint_eq(id_of_cert("x", "DNS:lora-node-7,DNS:lora-node-8"),
	                  0);
	ck_assert_uint_eq(id_of_cert("x", "DNS:lora-node-7,DNS:lora-node-7"),
	                  0);
	/* the CN alone names nobody, with or without SANs */
	ck_assert_uint_eq(id_of_cert("lora-node-7", "DNS:localhost"), 0);
	ck_assert_uint_eq(id_of_cert("lora-node-7", NULL), 0);
	/* an IP SAN is not a DNS name */
	ck_assert_uint_eq(id_of_cert("x", "IP:127.0.0.1,DNS:lora-node-3"), 3);
	ck_assert_uint_eq(node_tls_cert_pem_id("not a certificate"), 0);
}
END_TEST

int main(void)
{
	certs_make();
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, settings_apply_and_validate);
	tcase_add_test(tc, handshake_and_big_payload_both_ways);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, engine_survives_nng_init);
	tcase_add_test(tc, name_id_canonical);
	tcase_add_test(tc, cert_id_one_canonical_san);
	tcase_add_test(tc, mem_session_both_ways);
	tcase_add_test(tc, mem_session_refusals);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	certs_remove();
	return failed ? 1 : 0;
}
