/* test_node_faults.c - a single node in this process (127.0.170.1) under
 * injected faults: every core thread start failing in turn (the node
 * refuses to start, naming the thread, and leaks nothing), and the n-th
 * allocation failing over a sequence of writes (no crash, a clear error,
 * no leak, and the graph holds exactly what was acknowledged or
 * possibly-applied, with the node still serving afterwards). */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lora.h"
#include "lora_pb.h"
#include "node_int.h"
#include "thread.h"

#define T_HOST       "127.0.170.1"
#define T_WAIT_MS    20000 /* for a leader: generous, the machine is shared */
#define T_WRITES_MAX 400   /* allocation failure points tried */
#define T_CONNS_CAP  4     /* native connections, lowered for the test */
#define T_REFUSED_MS 1500  /* a connection over the cap stays unanswered */

static char data_dir[] = "/tmp/lora-node-faults-XXXXXX";

static void config(struct node_config *c)
{
	node_config_defaults(c);
	char err[LORA_ERRMSG_BYTES];
	c->id = 1;
	snprintf(c->data_dir, sizeof c->data_dir, "%s", data_dir);
	snprintf(c->peer_addr, sizeof c->peer_addr, T_HOST ":5170");
	snprintf(c->http_addr, sizeof c->http_addr, T_HOST ":7170");
	snprintf(c->client_addr, sizeof c->client_addr, T_HOST ":7171");
	ck_assert_int_eq(node_config_set(c, "bolt_addr", "off", err), 0);
	ck_assert_int_eq(node_config_set(c, "auth", "off", err), 0);
	ck_assert_int_eq(node_config_parse_peers(c, "1@" T_HOST ":5170", err),
	                 0);
	ck_assert_msg(node_config_validate(c, err) == 0, "config: %s", err);
}

static struct lnode *open_node(void)
{
	struct node_config c;
	config(&c);
	struct lnode *n = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	int rc = lnode_open(&c, &n, err);
	ck_assert_msg(rc == 0, "lnode_open: %s", err);
	uint64_t deadline = lora_now_ms() + T_WAIT_MS;
	for (;;) { /* woken by each role or leader change */
		uint64_t seq = node_status_seq(n);
		if (node_is_leader(n) ||
		    node_status_wait(n, seq, deadline) != 0)
			break;
	}
	ck_assert_msg(node_is_leader(n), "no leader within %d ms", T_WAIT_MS);
	return n;
}

/* Runs q as admin: 0 and *resp, or the error code (resp freed). */
static char last_err[LORA_ERRMSG_BYTES];

static int run(struct lnode *n, const char *q, Lora__Response **out)
{
	struct node_exec_req req = {.query = q,
	                            .mode = QRY_RUN,
	                            .redirect = 1,
	                            .role = NODE_ROLE_ADMIN};
	Lora__Response *resp = NULL;
	node_exec(n, &req, &resp, NULL, NULL);
	if (resp == NULL)
		return LORA_ENOMEM;
	int rc = resp->error ? node_err_from_code(resp->error->code) : 0;
	if (rc)
		snprintf(last_err, sizeof last_err, "%s", resp->error->message);
	if (rc || out == NULL)
		lora__response__free_unpacked(resp, &lora_pb_allocator);
	else
		*out = resp;
	return rc;
}

static int64_t count_nodes(struct lnode *n)
{
	Lora__Response *r = NULL;
	ck_assert_int_eq(run(n, "MATCH (x:T) RETURN count(x)", &r), 0);
	ck_assert_uint_eq(r->n_rows, 1);
	int64_t v = r->rows[0]->values[0]->int_value;
	lora__response__free_unpacked(r, &lora_pb_allocator);
	return v;
}

START_TEST(thread_start_failure_fails_the_start)
{
	unsigned long before = node_thread_count();
	struct lnode *n = open_node();
	unsigned long starts = node_thread_count() - before;
	lnode_close(n);
	/* raft loop, apply loop, writer, gossip at least */
	ck_assert_uint_ge(starts, 4);
	printf("thread starts in lnode_open: %lu\n", starts);
	for (unsigned long k = 0; k < starts; k++) {
		struct node_config c;
		config(&c);
		char err[LORA_ERRMSG_BYTES] = "";
		node_thread_fail_after((long)k);
		n = NULL;
		int rc = lnode_open(&c, &n, err);
		node_thread_fail_after(-1);
		ck_assert_msg(rc == LORA_EINTERNAL,
		              "start %lu failing: lnode_open said %d (%s)", k,
		              rc, err);
		ck_assert_ptr_null(n);
		ck_assert_msg(strstr(err, "cannot start the ") &&
		                  strstr(err, " thread: "),
		              "unclear error: %s", err);
		printf("start %lu failing: %s\n", k, err);
	}
	/* nothing was harmed: the node starts and serves */
	n = open_node();
	int64_t was = count_nodes(n);
	ck_assert_int_eq(run(n, "CREATE (:T)", NULL), 0);
	ck_assert_int_eq(count_nodes(n), was + 1);
	lnode_close(n);
}
END_TEST

/*
 * The n-th allocation from now fails, once, for every n over a write and
 * a read. Each write is acknowledged (0) or fails with a code; a write
 * refused before it was proposed changes nothing, one that failed later
 * (LORA_ENOMEM answering it) may have been applied: the count lies
 * between the two. The node serves a normal write afterwards.
 */
START_TEST(allocation_failures_over_writes)
{
	struct lnode *n = open_node();
	int64_t base = count_nodes(n);
	/* the failure points must cover a whole write (other threads
	 * allocate meanwhile too: a rough count) */
	unsigned long a0 = lora_alloc_count();
	ck_assert_int_eq(run(n, "CREATE (:T {k: 0})", NULL), 0);
	unsigned long per_write = lora_alloc_count() - a0;
	printf("allocations in one write: %lu\n", per_write);
	ck_assert_uint_lt(per_write, T_WRITES_MAX);
	base++;
	int acked = 0, failed = 0, points = 0;
	for (int i = 0; i < T_WRITES_MAX; i++) {
		lora_alloc_fail_after(i, 0);
		int rc = run(n, "CREATE (:T {k: 1})", NULL);
		lora_alloc_fail_after(-1, 0);
		if (rc == 0) {
			acked++;
		} else {
			failed++;
			ck_assert_msg(rc == LORA_ENOMEM ||
			                  rc == LORA_EUNAVAILABLE ||
			                  rc == LORA_EUNKNOWN_OUTCOME ||
			                  rc == LORA_EINTERNAL,
			              "failure %d: unexpected code %d (%s): %s",
			              i, rc, lora_strerror(rc), last_err);
		}
		points++;
	}
	/* every write waits until applied when acknowledged; the others may
	 * still be on their way: the next write orders after them */
	ck_assert_int_eq(run(n, "CREATE (:T {k: 2})", NULL), 0);
	int64_t got = count_nodes(n) - base - 1;
	printf("allocation failures: %d points, %d acked, %d failed, %lld "
	       "applied\n",
	       points, acked, failed, (long long)got);
	ck_assert_int_ge(got, acked);
	ck_assert_int_le(got, acked + failed);
	ck_assert_int_gt(failed, 0); /* the failures did reach node/ */
	lnode_close(n);
}
END_TEST

/* Sends a request that does not decode on s and waits up to ms for the
 * node's answer (an error, which is enough): 0 answered, else nng's
 * error. */
static int native_ask(nng_socket s, int ms)
{
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, ms);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms);
	int rv = nng_send(s, "x", 1, 0);
	void *p = NULL;
	size_t sz = 0;
	if (rv == 0)
		rv = nng_recv(s, &p, &sz, NNG_FLAG_ALLOC);
	if (rv == 0)
		nng_free(p, sz);
	return rv;
}

static nng_socket native_dial(void)
{
	nng_socket s;
	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 100);
	ck_assert_int_eq(
	    nng_dial(s, "tcp://" T_HOST ":7171", NULL, NNG_FLAG_NONBLOCK), 0);
	return s;
}

/* The native port closes connections beyond its cap as they come (review
 * finding 6: no cap, each TLS pipe ~70 KB, descriptors without end), and
 * takes one again once another closed. */
START_TEST(native_connection_cap)
{
	node_native_test_conns_cap(T_CONNS_CAP);
	struct lnode *n = open_node();
	nng_socket in[T_CONNS_CAP];
	for (int i = 0; i < T_CONNS_CAP; i++) {
		in[i] = native_dial();
		ck_assert_int_eq(native_ask(in[i], T_WAIT_MS), 0);
	}
	nng_socket over = native_dial();
	ck_assert_int_eq(native_ask(over, T_REFUSED_MS), NNG_ETIMEDOUT);
	nng_close(in[0]);
	int rv = NNG_ETIMEDOUT;
	uint64_t deadline = lora_now_ms() + T_WAIT_MS;
	while (rv != 0 && lora_now_ms() < deadline)
		rv = native_ask(over, 500);
	ck_assert_int_eq(rv, 0);
	nng_close(over);
	for (int i = 1; i < T_CONNS_CAP; i++)
		nng_close(in[i]);
	lnode_close(n);
	node_native_test_conns_cap(0);
}
END_TEST

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	Suite *su = suite_create("node_faults");
	TCase *t = tcase_create("node_faults");
	tcase_set_timeout(t, 300);
	tcase_add_test(t, thread_start_failure_fails_the_start);
	tcase_add_test(t, allocation_failures_over_writes);
	tcase_add_test(t, native_connection_cap);
	suite_add_tcase(su, t);
	SRunner *sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	sto_rm_rf(data_dir);
	return nfailed ? 1 : 0;
}
