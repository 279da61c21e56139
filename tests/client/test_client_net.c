/* test_client_net.c - the client against fake lorad nodes: real nng rep
 * sockets on 127.0.35.x that answer as a script says (leader hints, unknown
 * outcomes, dropped connections, cursors). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "cli.h"

#define FAKE_IDS_MAX 32

enum fake_mode {
	FAKE_OK,           /* answers runs with one row [1] */
	FAKE_FOLLOWER,     /* NOT_LEADER with hint */
	FAKE_UNKNOWN_ONCE, /* first run: UNKNOWN_OUTCOME, then OK */
	FAKE_UNAVAILABLE,  /* always UNAVAILABLE */
	FAKE_UNKNOWN_HINT, /* always UNKNOWN_OUTCOME naming a leader */
	FAKE_PARSE_ERROR,  /* LORA_PARSE at 1:8 */
	FAKE_DROP,         /* closes its socket on the first run */
	FAKE_CURSOR,       /* 5 rows, 2 per batch */
	FAKE_TIMEOUT_ONCE, /* first run: LORA_TIMEOUT, then OK */
	FAKE_SLOW,         /* answers OK after FAKE_SLOW_MS */
};
#define FAKE_SLOW_MS 4000

struct fake {
	nng_socket sock;
	pthread_t th;
	char addr[64]; /* host:port */
	enum fake_mode mode;
	const char *hint;
	int runs, fetches, closes, statuses;
	uint64_t time_ms; /* the last run's */
	char ids[FAKE_IDS_MAX][LORA_CLIENT_REQUEST_ID_BYTES];
	int dropped;
};

static int port_base(void)
{
	return 20000 + (int)(getpid() % 20000);
}

static void answer_rows(Lora__Response *resp, int first, int count, int total)
{
	static char *cols[] = {"x"};
	static Lora__Value vals[8];
	static Lora__Value *pv[8][1];
	static Lora__Row rows[8];
	static Lora__Row *prow[8];
	resp->n_columns = 1;
	resp->columns = cols;
	for (int i = 0; i < count; i++) {
		lora__value__init(&vals[i]);
		vals[i].kind_case = LORA__VALUE__KIND_INT_VALUE;
		vals[i].int_value = first + i + 1;
		pv[i][0] = &vals[i];
		lora__row__init(&rows[i]);
		rows[i].n_values = 1;
		rows[i].values = pv[i];
		prow[i] = &rows[i];
	}
	resp->n_rows = (size_t)count;
	resp->rows = prow;
	resp->has_more = first + count < total;
	static uint8_t name[16] = {77};
	resp->cursor.data = resp->has_more ? name : NULL;
	resp->cursor.len = resp->has_more ? sizeof name : 0;
}

static void answer_run(struct fake *f, const Lora__RunRequest *run,
                       Lora__Response *resp, Lora__Error *err)
{
	if (f->runs < FAKE_IDS_MAX)
		snprintf(f->ids[f->runs], sizeof(f->ids[0]), "%s",
		         run->request_id);
	f->runs++;
	f->time_ms = run->time_ms;
	resp->bookmark = "7";
	switch (f->mode) {
	case FAKE_TIMEOUT_ONCE:
		if (f->runs == 1)
			err->code = "LORA_TIMEOUT";
		break;
	case FAKE_SLOW:
		usleep(FAKE_SLOW_MS * 1000);
		break;
	case FAKE_FOLLOWER:
		err->code = "LORA_NOT_LEADER";
		resp->leader_address = (char *)(f->hint ? f->hint : "");
		break;
	case FAKE_UNKNOWN_ONCE:
		if (f->runs == 1)
			err->code = "LORA_UNKNOWN_OUTCOME";
		break;
	case FAKE_UNAVAILABLE:
		err->code = "LORA_UNAVAILABLE";
		break;
	case FAKE_UNKNOWN_HINT:
		err->code = "LORA_UNKNOWN_OUTCOME";
		resp->leader_address = (char *)(f->hint ? f->hint : "");
		break;
	case FAKE_PARSE_ERROR:
		err->code = "LORA_PARSE", err->line = 1, err->column = 8;
		break;
	default:
		break;
	}
	if (err->code != protobuf_c_empty_string) {
		err->message = "scripted";
		resp->error = err;
		return;
	}
	answer_rows(resp, 0, f->mode == FAKE_CURSOR ? 2 : 1,
	            f->mode == FAKE_CURSOR ? 5 : 1);
}

/* Answers one request; returns 0 to stop serving. */
static int fake_serve_one(struct fake *f, const Lora__Request *req,
                          Lora__Response *resp, Lora__Error *err)
{
	if (req->kind_case == LORA__REQUEST__KIND_RUN) {
		if (f->mode == FAKE_DROP) {
			f->runs++;
			f->dropped = 1;
			return 0;
		}
		answer_run(f, req->run, resp, err);
	} else if (req->kind_case == LORA__REQUEST__KIND_FETCH) {
		f->fetches++;
		int first = 2 * f->fetches;
		answer_rows(resp, first, first + 2 <= 5 ? 2 : 5 - first, 5);
	} else if (req->kind_case == LORA__REQUEST__KIND_CLOSE) {
		f->closes++;
	} else if (req->kind_case == LORA__REQUEST__KIND_STATUS) {
		f->statuses++;
		resp->status_json = "{\"leader\":1,\"term\":1,\"nodes\":[]}";
	}
	return 1;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (;;) {
		nng_msg *m = NULL;
		if (nng_recvmsg(f->sock, &m, 0))
			return NULL;
		Lora__Request *req = lora__request__unpack(
		    &lora_pb_allocator, nng_msg_len(m), nng_msg_body(m));
		nng_msg_free(m);
		if (req == NULL)
			return NULL;
		Lora__Response resp = LORA__RESPONSE__INIT;
		Lora__Error err = LORA__ERROR__INIT;
		int go_on = fake_serve_one(f, req, &resp, &err);
		lora__request__free_unpacked(req, &lora_pb_allocator);
		if (!go_on) {
			nng_close(f->sock);
			return NULL;
		}
		size_t len = lora__response__get_packed_size(&resp);
		ck_assert_int_eq(nng_msg_alloc(&m, len), 0);
		lora__response__pack(&resp, nng_msg_body(m));
		if (nng_sendmsg(f->sock, m, 0))
			nng_msg_free(m);
	}
}

static void fake_start(struct fake *f, int host, enum fake_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->addr, sizeof(f->addr), "127.0.35.%d:%d", host, port_base());
	char url[80];
	snprintf(url, sizeof(url), "tcp://%s", f->addr);
	ck_assert_int_eq(nng_rep0_open(&f->sock), 0);
	ck_assert_int_eq(nng_listen(f->sock, url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	if (!f->dropped)
		nng_close(f->sock);
	pthread_join(f->th, NULL);
}

static struct lora_client *client_for(const char *addrs, int budget_ms)
{
	struct lora_client_opts o = {0};
	o.addresses = addrs;
	o.retry_budget_ms = budget_ms;
	o.call_timeout_ms = 3000;
	o.seed = 1234;
	struct lora_client *c = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(lora_client_open(&c, &o, &e), 0);
	return c;
}

static int run(struct lora_client *c, struct lora_result **r,
               struct lora_client_error *e)
{
	struct lora_query q = {0};
	q.query = "CREATE (:T)";
	return lora_client_run(c, &q, r, e);
}

static int run_q(struct lora_client *c, const char *text, uint64_t time_ms,
                 struct lora_result **r, struct lora_client_error *e)
{
	struct lora_query q = {0};
	q.query = text;
	q.time_ms = time_ms;
	return lora_client_run(c, &q, r, e);
}

#define LOAD                                                                   \
	"LOAD CSV FROM 'file:///x.csv' AS r CALL { CREATE (:T) } "             \
	"IN TRANSACTIONS"

/* A node's LORA_TIMEOUT: a read is asked again (a node answers it for a
 * bookmark or leader wait, before running anything); an IN TRANSACTIONS
 * statement, which ran and kept what it committed, is not. */
START_TEST(timeout_answers_and_statements_sent_once)
{
	struct fake a;
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	fake_start(&a, 1, FAKE_TIMEOUT_ONCE);
	struct lora_client *c = client_for(a.addr, 3000);
	ck_assert_int_eq(run_q(c, "MATCH (n) RETURN n", 0, &r, &e), 0);
	ck_assert_int_eq(a.runs, 2);
	lora_result_free(r);
	lora_client_close(c);
	fake_stop(&a);

	fake_start(&a, 1, FAKE_TIMEOUT_ONCE);
	c = client_for(a.addr, 3000);
	ck_assert_int_eq(run_q(c, LOAD, 0, &r, &e), LORA_ETIMEOUT);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_uint_eq(a.time_ms, LORA_CLIENT_LOAD_TIME_MS_DEFAULT);
	lora_client_close(c);
	fake_stop(&a);

	fake_start(&a, 1, FAKE_UNKNOWN_ONCE); /* may have run: not again */
	c = client_for(a.addr, 3000);
	ck_assert_int_eq(run_q(c, LOAD, 0, &r, &e), LORA_EUNKNOWN_OUTCOME);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_ptr_nonnull(strstr(e.message, "not sent again"));
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

/* A statement sent once waits as long as the node may run it, past the
 * call timeout (3 s here, the node answering after 4 s), and carries its
 * own time limit. */
START_TEST(statement_sent_once_waits_for_its_answer)
{
	struct fake a;
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	fake_start(&a, 1, FAKE_SLOW);
	struct lora_client *c = client_for(a.addr, 3000);
	ck_assert_int_eq(run_q(c, LOAD, 2500, &r, &e), 0);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_uint_eq(a.time_ms, 2500);
	lora_result_free(r);
	/* anything else keeps the call timeout: timed out after 3 s */
	ck_assert_int_ne(run_q(c, "CREATE (:T)", 0, &r, &e), 0);
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

START_TEST(follows_leader_hint)
{
	struct fake a, b;
	fake_start(&a, 1, FAKE_FOLLOWER);
	fake_start(&b, 2, FAKE_OK);
	a.hint = b.addr;
	struct lora_client *c = client_for(a.addr, 3000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_str_eq(lora_result_node(r), b.addr);
	ck_assert_str_eq(lora_client_leader(c), b.addr);
	ck_assert_str_eq(lora_client_bookmark(c), "7");
	ck_assert_str_eq(a.ids[0], b.ids[0]); /* one logical call, one id */
	lora_result_free(r);
	/* the next call goes straight to the leader */
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_int_eq(b.runs, 2);
	ck_assert_str_ne(b.ids[0], b.ids[1]); /* a new call, a new id */
	lora_result_free(r);
	lora_client_close(c);
	fake_stop(&a);
	fake_stop(&b);
}
END_TEST

START_TEST(unknown_outcome_retries_with_same_id)
{
	struct fake a;
	fake_start(&a, 1, FAKE_UNKNOWN_ONCE);
	struct lora_client *c = client_for(a.addr, 3000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_int_eq(a.runs, 2);
	ck_assert_int_eq(e.attempts, 2);
	ck_assert_int_eq(lora_result_attempts(r), 2);
	ck_assert_uint_gt(lora_result_sent_ms(r), 0);
	ck_assert_uint_le(lora_result_sent_ms(r), lora_now_ms());
	ck_assert_str_eq(a.ids[0], a.ids[1]);
	lora_result_free(r);
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

/* A node that answers UNKNOWN_OUTCOME and names the new leader (its own
 * leader went silent): the retry, same id, goes to that leader at once. */
START_TEST(unknown_outcome_follows_named_leader)
{
	struct fake a, b;
	fake_start(&a, 1, FAKE_UNKNOWN_HINT);
	fake_start(&b, 2, FAKE_OK);
	a.hint = b.addr;
	struct lora_client *c = client_for(a.addr, 3000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_str_eq(lora_result_node(r), b.addr);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_int_eq(b.runs, 1);
	ck_assert_int_eq(lora_result_attempts(r), 2);
	ck_assert_str_eq(a.ids[0], b.ids[0]);
	ck_assert_str_eq(lora_client_leader(c), b.addr);
	lora_result_free(r);
	lora_client_close(c);
	fake_stop(&a);
	fake_stop(&b);
}
END_TEST

START_TEST(unavailable_gives_up_after_budget)
{
	struct fake a;
	fake_start(&a, 1, FAKE_UNAVAILABLE);
	struct lora_client *c = client_for(a.addr, 300);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	uint64_t t0 = lora_now_ms();
	ck_assert_int_eq(run(c, &r, &e), LORA_EUNAVAILABLE);
	ck_assert_str_eq(e.code, "LORA_UNAVAILABLE");
	ck_assert_int_gt(a.runs, 1);
	ck_assert_uint_lt(lora_now_ms() - t0, 2000);
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

START_TEST(query_errors_are_not_retried)
{
	struct fake a;
	fake_start(&a, 1, FAKE_PARSE_ERROR);
	struct lora_client *c = client_for(a.addr, 3000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), LORA_EPARSE);
	ck_assert_str_eq(e.code, "LORA_PARSE");
	ck_assert_str_eq(e.message, "scripted");
	ck_assert_uint_eq(e.line, 1);
	ck_assert_uint_eq(e.column, 8);
	ck_assert_int_eq(a.runs, 1);
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

START_TEST(dropped_connection_fails_over_fast_with_same_id)
{
	struct fake a, b;
	fake_start(&a, 1, FAKE_DROP);
	fake_start(&b, 2, FAKE_OK);
	char addrs[160];
	snprintf(addrs, sizeof(addrs), "%s,%s", a.addr, b.addr);
	struct lora_client *c = client_for(addrs, 5000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	uint64_t t0 = lora_now_ms();
	ck_assert_int_eq(run(c, &r, &e), 0);
	/* well under the 3 s call timeout: the drop is noticed at once */
	ck_assert_uint_lt(lora_now_ms() - t0, 1500);
	ck_assert_int_eq(a.runs, 1);
	ck_assert_int_eq(b.runs, 1);
	ck_assert_str_eq(lora_result_node(r), b.addr);
	lora_result_free(r);
	lora_client_close(c);
	fake_stop(&a);
	fake_stop(&b);
}
END_TEST

START_TEST(unreachable_cluster_is_unavailable)
{
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.35.9:%d", port_base());
	struct lora_client *c = client_for(addr, 200);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), LORA_EUNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(e.message, "not connected"));
	lora_client_close(c);
}
END_TEST

START_TEST(cursors_fetch_batches_and_close)
{
	struct fake a;
	fake_start(&a, 1, FAKE_CURSOR);
	struct lora_client *c = client_for(a.addr, 3000);
	struct lora_result *r = NULL;
	struct lora_client_error e = {0};
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_uint_eq(lora_result_columns(r), 1);
	ck_assert_str_eq(lora_result_column(r, 0), "x");
	Lora__Value *const *row = NULL;
	for (int i = 1; i <= 5; i++) {
		ck_assert_int_eq(lora_result_next(r, &row, &e), 0);
		ck_assert_ptr_nonnull(row);
		ck_assert_int_eq(row[0]->int_value, i);
	}
	ck_assert_int_eq(lora_result_next(r, &row, &e), 0);
	ck_assert_ptr_null(row);
	ck_assert_int_eq(a.fetches, 2);
	lora_result_free(r);
	ck_assert_int_eq(a.closes, 0); /* exhausted: nothing to close */
	/* stopping early closes the cursor */
	ck_assert_int_eq(run(c, &r, &e), 0);
	ck_assert_int_eq(lora_result_next(r, &row, &e), 0);
	lora_result_free(r);
	ck_assert_int_eq(a.closes, 1);
	char *json = NULL;
	ck_assert_int_eq(lora_client_status(c, &json, &e), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"leader\":1"));
	lora_free(json);
	lora_client_close(c);
	fake_stop(&a);
}
END_TEST

Suite *client_net_suite(void)
{
	Suite *s = suite_create("client_net");
	TCase *tc = tcase_create("fake_nodes");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, follows_leader_hint);
	tcase_add_test(tc, unknown_outcome_retries_with_same_id);
	tcase_add_test(tc, unknown_outcome_follows_named_leader);
	tcase_add_test(tc, unavailable_gives_up_after_budget);
	tcase_add_test(tc, query_errors_are_not_retried);
	tcase_add_test(tc, dropped_connection_fails_over_fast_with_same_id);
	tcase_add_test(tc, unreachable_cluster_is_unavailable);
	tcase_add_test(tc, cursors_fetch_batches_and_close);
	tcase_add_test(tc, timeout_answers_and_statements_sent_once);
	tcase_add_test(tc, statement_sent_once_waits_for_its_answer);
	suite_add_tcase(s, tc);
	return s;
}
