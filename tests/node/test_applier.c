/* test_applier.c - the apply loop (node/apply.c, applier.h) alone, on a
 * real RocksDB state store in a temporary directory: entries applied in
 * order with their request ids remembered, node_wait_applied waiters woken
 * from other threads, an entry whose bytes do not decode rejected while it
 * still takes its index, deadlines waited out, drain; and the status JSON
 * (status.h) of such a node. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/sto_helpers.h"
#include "node_int.h"

#define T_ENTRIES  40
#define T_WAITERS  4
#define T_WAIT_MS  10000 /* generous: the machine is shared */
#define T_SHORT_MS 60
#define T_TERM     3

static char *dir;
static struct lnode *n;

static void setup(void)
{
	dir = tmpdir_new();
	struct node_config c;
	node_config_defaults(&c);
	c.id = 1;
	snprintf(c.data_dir, sizeof c.data_dir, "%s", dir);
	c.checkpoint_entries = 1000000; /* none during the test */
	char err[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(lnode_open_apply_only(&c, &n, err) == 0, "open: %s", err);
}

static void teardown(void)
{
	lnode_close(n);
	n = NULL;
	tmpdir_free(dir);
}

/* Entry `index` creating node `index` labelled T, with request id
 * "r<index>"; data lora_malloc'ed. */
static struct rep_entry entry(uint64_t index)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, index, "T", 1, "i", v_int((int64_t)index));
	char rid[32];
	snprintf(rid, sizeof rid, "r%llu", (unsigned long long)index);
	b->request_ids = lora_calloc(1, sizeof *b->request_ids);
	b->request_ids[0] = lora_strdup(rid);
	b->n_request_ids = 1;
	struct rep_entry e = {
	    .index = index, .term = T_TERM, .type = REP_ENTRY_NORMAL};
	e.len = lora__mutation_batch__get_packed_size(b);
	e.data = lora_malloc(e.len);
	lora__mutation_batch__pack(b, e.data);
	batch_free(b);
	return e;
}

static uint64_t count_t(void)
{
	struct sto_store *s = node_store_acquire(n);
	struct sto_view *v = NULL;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	uint64_t c = 0;
	ck_assert_int_eq(sto_view_count_nodes(v, "T", &c), 0);
	sto_view_close(v);
	node_store_release(n);
	return c;
}

struct waiter {
	uint64_t index;
	int rc;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	w->rc = node_wait_applied(n, w->index, T_WAIT_MS);
	return NULL;
}

START_TEST(applies_in_order_and_wakes_waiters)
{
	uint64_t base = node_applied_index(n);
	ck_assert_uint_eq(base, 0);
	pthread_t t[T_WAITERS];
	struct waiter w[T_WAITERS];
	for (int i = 0; i < T_WAITERS; i++) {
		w[i] = (struct waiter){.index = (uint64_t)(i + 1) * T_ENTRIES /
		                                T_WAITERS,
		                       .rc = -1};
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
	}
	/* handed over in batches of several entries, as the raft loop does */
	for (uint64_t i = 1; i <= T_ENTRIES; i += 4) {
		struct rep_entry es[4];
		for (int k = 0; k < 4; k++)
			es[k] = entry(i + (uint64_t)k);
		ck_assert_int_eq(node_apply_enqueue(n, es, 4), 0);
		for (int k = 0; k < 4; k++)
			lora_free(es[k].data); /* the queue copied them */
	}
	for (int i = 0; i < T_WAITERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(w[i].rc == 0, "waiter for %llu: %d",
		              (unsigned long long)w[i].index, w[i].rc);
	}
	ck_assert_int_eq(node_apply_drain(n), 0);
	ck_assert_uint_eq(node_applied_index(n), T_ENTRIES);
	ck_assert_uint_eq(count_t(), T_ENTRIES);
	uint64_t idx = 0;
	int rc = -1;
	ck_assert_int_eq(node_dedup_lookup(n, NULL, "r7", &idx, &rc), 1);
	ck_assert_uint_eq(idx, 7);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(node_dedup_lookup(n, NULL, "r999", &idx, &rc), 0);
}
END_TEST

START_TEST(undecodable_entry_takes_its_index)
{
	struct rep_entry e1 = entry(1);
	ck_assert_int_eq(node_apply_enqueue(n, &e1, 1), 0);
	lora_free(e1.data);
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	struct rep_entry bad = {.index = 2,
	                        .term = T_TERM,
	                        .type = REP_ENTRY_NORMAL,
	                        .data = junk,
	                        .len = sizeof junk};
	ck_assert_int_eq(node_apply_enqueue(n, &bad, 1), 0);
	struct rep_entry e3 = entry(3);
	ck_assert_int_eq(node_apply_enqueue(n, &e3, 1), 0);
	lora_free(e3.data);
	ck_assert_int_eq(node_wait_applied(n, 3, T_WAIT_MS), 0);
	ck_assert_uint_eq(count_t(), 2);
	uint64_t idx;
	int rc;
	ck_assert_int_eq(node_dedup_lookup(n, NULL, "r3", &idx, &rc), 1);
	ck_assert_uint_eq(idx, 3);
}
END_TEST

START_TEST(wait_applied_deadline_is_waited_out)
{
	uint64_t t0 = lora_now_ms();
	ck_assert_int_eq(node_wait_applied(n, 5, T_SHORT_MS), LORA_ETIMEOUT);
	ck_assert_uint_ge(lora_now_ms() - t0, T_SHORT_MS);
	ck_assert_int_eq(node_wait_applied(n, 0, 0), 0); /* already there */
	ck_assert_int_eq(node_apply_drain(n), 0);        /* nothing queued */
}
END_TEST

/* /cluster/status of a node with no raft loop: no leader, itself listed
 * with the applied index the apply loop reached. */
START_TEST(status_json_shows_the_applied_index)
{
	for (uint64_t i = 1; i <= 3; i++) {
		struct rep_entry e = entry(i);
		ck_assert_int_eq(node_apply_enqueue(n, &e, 1), 0);
		lora_free(e.data);
	}
	ck_assert_int_eq(node_wait_applied(n, 3, T_WAIT_MS), 0);
	char *js = node_status_json(n);
	ck_assert_ptr_nonnull(js);
	json_error_t jerr;
	json_t *o = json_loads(js, 0, &jerr);
	ck_assert_msg(o != NULL, "not JSON: %s", js);
	ck_assert(json_is_null(json_object_get(o, "leader")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "self")), 1);
	json_t *nodes = json_object_get(o, "nodes");
	ck_assert_uint_eq(json_array_size(nodes), 1);
	json_t *me = json_array_get(nodes, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(me, "id")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(me, "appliedIndex")), 3);
	json_decref(o);
	lora_free(js);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("applier");
	TCase *t = tcase_create("applier");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, applies_in_order_and_wakes_waiters);
	tcase_add_test(t, undecodable_entry_takes_its_index);
	tcase_add_test(t, wait_applied_deadline_is_waited_out);
	tcase_add_test(t, status_json_shows_the_applied_index);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
