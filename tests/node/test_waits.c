/* test_waits.c - waits in node/ end on the event they wait for, not on a
 * period: a node in this process (127.1.51.1) serving an explicit
 * transaction wakes once for its idle limit (a 100 ms poll woke ten times
 * in a second) and ends it when the node stops. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lora.h"
#include "lora_pb.h"
#include "node_int.h"
#include "node_one.h"

#define T_HOST     "127.1.51.1"
#define T_WAIT_MS  20000 /* for a leader: generous, the machine is shared */
#define T_IDLE_MS  1000  /* ten periods of the old 100 ms poll */
#define T_QUIET_MS 400   /* four periods of it */

static char data_dir[] = "/tmp/lora-node-waits-XXXXXX";

static struct lnode *open_node(void)
{
	ck_assert_ptr_nonnull(mkdtemp(data_dir));
	struct node_config c;
	node_one_config(&c, T_HOST, 5151, 7151, data_dir);
	return node_one_open(&c, 1);
}

static void remove_dir(void)
{
	char cmd[sizeof data_dir + 16];
	snprintf(cmd, sizeof cmd, "rm -rf %s", data_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Waits (polling: the test's own look, with a deadline) until t ended. */
static uint64_t wait_ended(struct node_tx *t, uint64_t deadline_ms)
{
	while (!node_tx_ended(t)) {
		ck_assert_msg(lora_now_ms() < deadline_ms,
		              "the transaction did not end");
		usleep(1000);
	}
	return lora_now_ms();
}

START_TEST(idle_transaction_wakes_once)
{
	struct lnode *n = open_node();
	struct node_tx *t = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	uint64_t t0 = lora_now_ms();
	unsigned long waits0 = node_tx_test_waits();
	ck_assert_msg(node_tx_begin(n, T_IDLE_MS, 0, &t, err) == 0, "begin: %s",
	              err);
	uint64_t ended = wait_ended(t, t0 + T_IDLE_MS + T_WAIT_MS);
	unsigned long waits = node_tx_test_waits() - waits0;
	printf("idle %d ms: ended after %llu ms, %lu wake-ups\n", T_IDLE_MS,
	       (unsigned long long)(ended - t0), waits);
	ck_assert_uint_ge(ended - t0, T_IDLE_MS); /* never early */
	/* one for the deadline (a spurious wake-up or two allowed); the
	 * 100 ms poll woke T_IDLE_MS / 100 times */
	ck_assert_uint_le(waits, 3);
	node_tx_rollback(t); /* ended: lets go of it */
	lnode_close(n);
	remove_dir();
}
END_TEST

START_TEST(stop_ends_a_served_transaction)
{
	struct lnode *n = open_node();
	struct node_tx *t = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(node_tx_begin(n, 60000, 0, &t, err) == 0, "begin: %s",
	              err);
	unsigned long waits0 = node_tx_test_waits();
	/* the interval under test, not a wait for a condition: a served
	 * transaction sleeps through it (a 100 ms poll woke 3-4 times) */
	usleep(T_QUIET_MS * 1000);
	lnode_close(n); /* the writer is joined: the transaction ended */
	ck_assert(node_tx_ended(t));
	unsigned long waits = node_tx_test_waits() - waits0;
	printf("served %d ms, then stopped: %lu wake-ups\n", T_QUIET_MS, waits);
	ck_assert_uint_le(waits, 1); /* the stop's own */
	node_tx_rollback(t);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_waits");
	TCase *t = tcase_create("waits");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, idle_transaction_wakes_once);
	tcase_add_test(t, stop_ends_a_served_transaction);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
