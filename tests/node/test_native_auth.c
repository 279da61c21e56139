/* test_native_auth.c - the native port's limits on connections that have
 * not authenticated (node/native.c), on a single node in this process
 * with authentication on (127.1.150.1), over real nng sockets dialled
 * from chosen source addresses (127.1.150.2-4): a connection that never
 * authenticates is closed after auth_timeout_ms while an authenticated
 * one stays; at most pending_per_source unauthenticated connections from
 * one source and native_pending_max in all are kept, other sources and
 * authenticated connections are not held up by them; a connection that
 * carried the cluster secret (a member's forwarded write) is not held to
 * the deadline, while another one from the same address is. */
#include <arpa/inet.h>
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lora.h"
#include "lora_pb.h"
#include "node_int.h"

#define T_HOST        "127.1.150.1"
#define T_URL         "tcp://" T_HOST ":7151"
#define T_SRC_A       "127.1.150.2"
#define T_SRC_B       "127.1.150.3"
#define T_SRC_C       "127.1.150.4"
#define T_PASSWORD    "native-auth-test-secret"
#define T_WAIT_MS     30000 /* generous: the machine is shared (argon2id) */
#define T_REFUSED_MS  1500  /* a refused connection stays unanswered */
#define T_DEADLINE_MS 1000  /* auth_timeout_ms of the deadline test */
#define T_PER_SOURCE  2     /* pending_per_source of the caps test */
#define T_PENDING     3     /* native_pending_max of the caps test */

static char data_dir[] = "/tmp/lora-native-auth-XXXXXX";

static struct lnode *open_node(const char *timeout_ms, const char *per_source,
                               const char *total)
{
	struct node_config c;
	char err[LORA_ERRMSG_BYTES] = "";
	node_config_defaults(&c);
	c.id = 1;
	snprintf(data_dir, sizeof data_dir, "/tmp/lora-native-auth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(data_dir));
	snprintf(c.data_dir, sizeof c.data_dir, "%s", data_dir);
	snprintf(c.peer_addr, sizeof c.peer_addr, T_HOST ":5151");
	snprintf(c.http_addr, sizeof c.http_addr, T_HOST ":7150");
	snprintf(c.client_addr, sizeof c.client_addr, T_HOST ":7151");
	ck_assert_int_eq(node_config_set(&c, "bolt_addr", "off", err), 0);
	ck_assert_int_eq(node_config_set(&c, "auth", "on", err), 0);
	ck_assert_int_eq(node_config_set(&c, "admin_password", T_PASSWORD, err),
	                 0);
	ck_assert_int_eq(
	    node_config_set(&c, "auth_timeout_ms", timeout_ms, err), 0);
	ck_assert_int_eq(
	    node_config_set(&c, "pending_per_source", per_source, err), 0);
	ck_assert_int_eq(node_config_set(&c, "native_pending_max", total, err),
	                 0);
	ck_assert_int_eq(node_config_parse_peers(&c, "1@" T_HOST ":5151", err),
	                 0);
	ck_assert_msg(node_config_validate(&c, err) == 0, "config: %s", err);
	struct lnode *n = NULL;
	ck_assert_msg(lnode_open(&c, &n, err) == 0, "lnode_open: %s", err);
	return n;
}

static void close_node(struct lnode *n)
{
	lnode_close(n);
	char cmd[sizeof data_dir + 16];
	snprintf(cmd, sizeof cmd, "rm -rf %s", data_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A client socket and the connections the node closed under it. */
struct client {
	nng_socket s;
	atomic_int removed; /* pipes gone (nng's callback) */
};

static void on_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	atomic_fetch_add(&((struct client *)arg)->removed, 1);
}

/* Dials the node from source address src (a req socket that redials). */
static void c_dial(struct client *c, const char *src)
{
	nng_dialer d;
	nng_sockaddr la;
	memset(&la, 0, sizeof la);
	la.s_in.sa_family = NNG_AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, src, &la.s_in.sa_addr), 1);
	atomic_store(&c->removed, 0);
	ck_assert_int_eq(nng_req0_open(&c->s), 0);
	nng_socket_set_ms(c->s, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->s, NNG_OPT_RECONNMAXT, 100);
	ck_assert_int_eq(
	    nng_pipe_notify(c->s, NNG_PIPE_EV_REM_POST, on_removed, c), 0);
	ck_assert_int_eq(nng_dialer_create(&d, c->s, T_URL), 0);
	ck_assert_int_eq(nng_dialer_set_addr(d, NNG_OPT_LOCADDR, &la), 0);
	ck_assert_int_eq(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
}

/* Sends req and waits up to ms for the answer: 0 and *out (free with
 * lora__response__free_unpacked), or nng's error. */
static int c_call(struct client *c, const Lora__Request *req, int ms,
                  Lora__Response **out)
{
	uint8_t buf[1024];
	size_t len = lora__request__get_packed_size(req);
	ck_assert_uint_le(len, sizeof buf);
	lora__request__pack(req, buf);
	nng_socket_set_ms(c->s, NNG_OPT_SENDTIMEO, ms);
	nng_socket_set_ms(c->s, NNG_OPT_RECVTIMEO, ms);
	void *ans = NULL;
	size_t alen = 0;
	int rv = nng_send(c->s, buf, len, 0);
	if (rv == 0)
		rv = nng_recv(c->s, &ans, &alen, NNG_FLAG_ALLOC);
	if (rv != 0)
		return rv;
	*out = lora__response__unpack(NULL, alen, ans);
	nng_free(ans, alen);
	ck_assert_ptr_nonnull(*out);
	return 0;
}

/* A status request: 0 when answered (any answer: refused unauthenticated
 * is one), else nng's error. *ok: answered without an error. */
static int c_status(struct client *c, int ms, int *ok)
{
	Lora__StatusRequest st = LORA__STATUS_REQUEST__INIT;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_STATUS;
	req.status = &st;
	Lora__Response *r = NULL;
	int rv = c_call(c, &req, ms, &r);
	if (rv == 0) {
		*ok = r->error == NULL;
		lora__response__free_unpacked(r, NULL);
	}
	return rv;
}

/* The handshake as the admin, retried while the admin is not written
 * yet (the node bootstraps it once it leads). */
static void c_login(struct client *c)
{
	Lora__AuthRequest a = LORA__AUTH_REQUEST__INIT;
	a.user = "admin";
	a.password = T_PASSWORD;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_AUTH;
	req.auth = &a;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	for (;;) {
		Lora__Response *r = NULL;
		int rv = c_call(c, &req, T_WAIT_MS, &r);
		int ok = rv == 0 && r->error == NULL;
		if (rv == 0)
			lora__response__free_unpacked(r, NULL);
		if (ok)
			return;
		ck_assert_msg(lora_now_ms() < until, "login: %d", rv);
		usleep(50 * 1000); /* poll: the bootstrap has no signal here */
	}
}

/* A connection that never authenticates is closed once auth_timeout_ms
 * has passed (not before), and an authenticated one from the same source
 * stays and is served. Without the deadline the first stays for good. */
START_TEST(unauthenticated_connection_closed_at_deadline)
{
	struct lnode *n = open_node("1000", "8", "8");
	struct client authed, silent;
	c_dial(&authed, T_SRC_A);
	c_login(&authed);
	int ok = 0;
	uint64_t t0 = lora_now_ms();
	c_dial(&silent, T_SRC_A);
	ck_assert_int_eq(c_status(&silent, T_WAIT_MS, &ok), 0);
	ck_assert_int_eq(ok, 0); /* answered: authenticate first */
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (atomic_load(&silent.removed) == 0 && lora_now_ms() < until)
		usleep(10 * 1000);
	uint64_t took = lora_now_ms() - t0;
	printf("unauthenticated connection closed after %llu ms "
	       "(auth_timeout_ms %d)\n",
	       (unsigned long long)took, T_DEADLINE_MS);
	ck_assert_msg(atomic_load(&silent.removed) > 0,
	              "still open after %llu ms", (unsigned long long)took);
	ck_assert_uint_ge(took, T_DEADLINE_MS - 50);
	/* the authenticated one outlived the deadline and still works */
	ck_assert_int_eq(atomic_load(&authed.removed), 0);
	ck_assert_int_eq(c_status(&authed, T_WAIT_MS, &ok), 0);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(atomic_load(&authed.removed), 0);
	nng_close(silent.s);
	nng_close(authed.s);
	close_node(n);
}
END_TEST

/* One source holds at most T_PER_SOURCE unauthenticated connections,
 * all sources T_PENDING: a connection over either cap is closed as it
 * comes (never answered); another source, or room made by a handshake,
 * gets in. Without the caps every one of them is answered. */
START_TEST(unauthenticated_connections_capped)
{
	struct lnode *n = open_node("600000", "2", "3");
	struct client a[T_PER_SOURCE + 1], b, c, c2;
	int ok = 0;
	for (int i = 0; i < T_PER_SOURCE; i++) {
		c_dial(&a[i], T_SRC_A);
		ck_assert_int_eq(c_status(&a[i], T_WAIT_MS, &ok), 0);
	}
	c_dial(&a[T_PER_SOURCE], T_SRC_A); /* over the per-source cap */
	ck_assert_int_eq(c_status(&a[T_PER_SOURCE], T_REFUSED_MS, &ok),
	                 NNG_ETIMEDOUT);
	c_dial(&b, T_SRC_B); /* another source: the third pending */
	ck_assert_int_eq(c_status(&b, T_WAIT_MS, &ok), 0);
	c_dial(&c, T_SRC_C); /* over the total */
	ck_assert_int_eq(c_status(&c, T_REFUSED_MS, &ok), NNG_ETIMEDOUT);
	/* a handshake makes room: one of A's is no longer pending, so C's
	 * redials get in (A's refused one is gone: it would race C) */
	nng_close(a[T_PER_SOURCE].s);
	c_login(&a[0]);
	ck_assert_int_eq(c_status(&a[0], T_WAIT_MS, &ok), 0);
	ck_assert_int_eq(ok, 1);
	int answered = 0;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (answered == 0 && lora_now_ms() < until)
		answered = c_status(&c, 500, &ok) == 0;
	ck_assert_msg(answered, "source C still refused after a login");
	/* total full again (A 1, B 1, C 1 pending) */
	c_dial(&c2, T_SRC_C);
	ck_assert_int_eq(c_status(&c2, T_REFUSED_MS, &ok), NNG_ETIMEDOUT);
	for (int i = 0; i < T_PER_SOURCE; i++)
		nng_close(a[i].s);
	nng_close(b.s);
	nng_close(c.s);
	nng_close(c2.s);
	close_node(n);
}
END_TEST

/* A connection that carried a member's forwarded request or hello (the
 * cluster secret as proof) is not held to the deadline, as members keep
 * their connection to the leader open idle; another connection from the same
 * address that never sent a proof (a neighbour on the member's host) is
 * closed at the deadline like one from any other source. Keyed by source
 * address, member_idle would stay open for good. */
START_TEST(member_connection_not_held_to_deadline)
{
	struct lnode *n = open_node("1000", "8", "8");
	struct client admin, member, hello, member_idle, other;
	c_dial(&admin, T_SRC_A);
	c_login(&admin);
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t plen = 0;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	int rc; /* the cluster secret exists once the bootstrap is applied */
	while ((rc = node_auth_peer_proof(n, 0, proof, &plen)) != 0 &&
	       lora_now_ms() < until)
		usleep(10 * 1000);
	ck_assert_int_eq(rc, 0);
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	run.query = "RETURN 1";
	run.peer_proof.data = proof;
	run.peer_proof.len = plen;
	run.as_user = "admin";
	run.as_role = NODE_ROLE_ADMIN;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_RUN;
	req.run = &run;
	Lora__Response *r = NULL;
	c_dial(&member, T_SRC_C);
	ck_assert_int_eq(c_call(&member, &req, T_WAIT_MS, &r), 0);
	ck_assert_msg(r->error == NULL, "forwarded: %s", r->error->message);
	lora__response__free_unpacked(r, NULL);
	/* a member's hello (forward.c, right after it dials): the proof
	 * alone, answered empty, and the connection is a member's */
	Lora__RunRequest hello_run = LORA__RUN_REQUEST__INIT;
	hello_run.query = "";
	hello_run.as_user = "";
	hello_run.peer_proof.data = proof;
	hello_run.peer_proof.len = plen;
	Lora__Request hello_req = LORA__REQUEST__INIT;
	hello_req.kind_case = LORA__REQUEST__KIND_RUN;
	hello_req.run = &hello_run;
	c_dial(&hello, T_SRC_C);
	ck_assert_int_eq(c_call(&hello, &hello_req, T_WAIT_MS, &r), 0);
	ck_assert_msg(r->error == NULL, "hello: %s", r->error->message);
	lora__response__free_unpacked(r, NULL);
	int ok = 0;
	c_dial(&member_idle, T_SRC_C); /* never sends a proof */
	ck_assert_int_eq(c_status(&member_idle, T_WAIT_MS, &ok), 0);
	ck_assert_int_eq(ok, 0); /* answered: authenticate first */
	c_dial(&other, T_SRC_B);
	ck_assert_int_eq(c_status(&other, T_WAIT_MS, &ok), 0);
	until = lora_now_ms() + T_WAIT_MS;
	while ((atomic_load(&other.removed) == 0 ||
	        atomic_load(&member_idle.removed) == 0) &&
	       lora_now_ms() < until)
		usleep(10 * 1000);
	ck_assert_int_gt(atomic_load(&other.removed), 0);
	ck_assert_msg(atomic_load(&member_idle.removed) > 0,
	              "a connection from a member's address that never sent "
	              "a proof outlived the deadline");
	/* the member's own connections outlived both deadlines, still work */
	ck_assert_int_eq(atomic_load(&hello.removed), 0);
	ck_assert_int_eq(atomic_load(&member.removed), 0);
	ck_assert_int_eq(c_call(&member, &req, T_WAIT_MS, &r), 0);
	ck_assert_msg(r->error == NULL, "forwarded: %s", r->error->message);
	lora__response__free_unpacked(r, NULL);
	ck_assert_int_eq(atomic_load(&member.removed), 0);
	nng_close(other.s);
	nng_close(member_idle.s);
	nng_close(hello.s);
	nng_close(member.s);
	nng_close(admin.s);
	close_node(n);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_native_auth");
	TCase *t = tcase_create("native_auth");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, unauthenticated_connection_closed_at_deadline);
	tcase_add_test(t, unauthenticated_connections_capped);
	tcase_add_test(t, member_connection_not_held_to_deadline);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
