/* test_raftloop.c - the raft loop (node/raftloop.c) without a transport:
 * three nodes in this process (lnode_open_raft_only: state store, apply
 * loop and raft loop, no writer or servers) whose frames go through an
 * in-memory network the test controls. One leader is elected and its
 * proposals apply on every node; a leader cut off is replaced, steps down,
 * and catches up once back; a transfer moves leadership. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../storage/sto_helpers.h"
#include "node_int.h"

#define T_NODES   3
#define T_WAIT_MS 20000 /* generous: the machine is shared */

/* ---- the network -----------------------------------------------------
 * A frame is delivered at once from the sender's raft loop into the
 * receiver's inbox (node_raft_on_frame never blocks), unless either end
 * is cut off or the receiver is not (or no longer) in the network. */
static struct {
	pthread_mutex_t mu;
	struct lnode *node[T_NODES + 1]; /* by id */
	int cut[T_NODES + 1];
} net = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int net_send(void *arg, uint64_t from, uint64_t to, int kind,
                    const uint8_t *buf, size_t len)
{
	(void)arg;
	pthread_mutex_lock(&net.mu);
	int up = to >= 1 && to <= T_NODES && from >= 1 && from <= T_NODES &&
	         net.node[to] && !net.cut[from] && !net.cut[to];
	if (up)
		node_raft_on_frame(net.node[to], kind, from, buf, len);
	pthread_mutex_unlock(&net.mu);
	return up ? 0 : LORA_EUNAVAILABLE;
}

static void net_cut(uint64_t id, int cut)
{
	pthread_mutex_lock(&net.mu);
	net.cut[id] = cut;
	pthread_mutex_unlock(&net.mu);
}

/* ---- the nodes -------------------------------------------------------- */

static char *dirs[T_NODES + 1];
static uint64_t next_id = 1; /* graph node ids created */

static struct lnode *node(uint64_t id)
{
	return net.node[id]; /* written only by setup and teardown */
}

static void setup(void)
{
	const struct node_raft_net rn = {.send = net_send};
	for (uint64_t id = 1; id <= T_NODES; id++) {
		dirs[id] = tmpdir_new();
		struct node_config c;
		node_config_defaults(&c);
		char err[LORA_ERRMSG_BYTES] = "";
		c.id = id;
		c.checkpoint_entries = 1000000; /* no snapshots here */
		snprintf(c.data_dir, sizeof c.data_dir, "%s", dirs[id]);
		snprintf(c.peer_addr, sizeof c.peer_addr, "127.1.52.%llu:5152",
		         (unsigned long long)id);
		ck_assert_int_eq(node_config_parse_peers(
		                     &c,
		                     "1@127.1.52.1:5152,2@127.1.52.2:5152,"
		                     "3@127.1.52.3:5152",
		                     err),
		                 0);
		struct lnode *n = NULL;
		ck_assert_msg(lnode_open_raft_only(&c, &rn, &n, err) == 0,
		              "open %llu: %s", (unsigned long long)id, err);
		pthread_mutex_lock(&net.mu);
		net.node[id] = n;
		net.cut[id] = 0;
		pthread_mutex_unlock(&net.mu);
	}
}

static void teardown(void)
{
	/* followers first: a leader closing hands over to a live node */
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t id = 1; id <= T_NODES; id++) {
			struct lnode *n = net.node[id];
			if (n == NULL || (pass == 0 && node_is_leader(n)))
				continue;
			pthread_mutex_lock(&net.mu);
			net.node[id] = NULL; /* no frame reaches it from now */
			pthread_mutex_unlock(&net.mu);
			lnode_close(n);
			tmpdir_free(dirs[id]);
		}
}

/* The one leader all nodes not cut off agree on, waited for (polled
 * with a deadline); `not` (0: none) is never taken. */
static uint64_t wait_leader(uint64_t not )
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	for (;;) {
		uint64_t leader = 0;
		int agreed = 1;
		for (uint64_t id = 1; id <= T_NODES; id++) {
			if (net.cut[id])
				continue;
			uint64_t l = node_leader_id(node(id));
			if (leader == 0)
				leader = l;
			agreed &= l != 0 && l == leader;
		}
		if (agreed && leader != not &&node_is_leader(node(leader)))
			return leader;
		ck_assert_msg(lora_now_ms() < until, "no leader agreed on");
		usleep(1000);
	}
}

/* Proposes `count` entries on `leader`, each creating a node labelled T:
 * the last one's index. */
static uint64_t propose(uint64_t leader, int count)
{
	uint64_t index = 0;
	for (int i = 0; i < count; i++) {
		Lora__MutationBatch *b = batch_new();
		uint64_t gid = next_id++;
		add_create_node(b, gid, "T", 1, "i", v_int((int64_t)gid));
		size_t len = lora__mutation_batch__get_packed_size(b);
		uint8_t *data = lora_malloc(len);
		lora__mutation_batch__pack(b, data);
		batch_free(b);
		uint64_t term = 0, at = 0;
		int rc = node_raft_propose(node(leader), data, len, 0, &term,
		                           &index, &at);
		lora_free(data);
		ck_assert_msg(rc == 0, "propose on %llu: %d",
		              (unsigned long long)leader, rc);
	}
	return index;
}

static uint64_t count_t(uint64_t id)
{
	struct sto_store *s = node_store_acquire(node(id));
	struct sto_view *v = NULL;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	uint64_t c = 0;
	ck_assert_int_eq(sto_view_count_nodes(v, "T", &c), 0);
	sto_view_close(v);
	node_store_release(node(id));
	return c;
}

/* Every node not cut off applied index and holds `nodes` T nodes. */
static void expect_applied(uint64_t index, uint64_t nodes)
{
	for (uint64_t id = 1; id <= T_NODES; id++) {
		if (net.cut[id])
			continue;
		ck_assert_int_eq(node_wait_applied(node(id), index, T_WAIT_MS),
		                 0);
		ck_assert_uint_eq(count_t(id), nodes);
	}
}

START_TEST(one_leader_and_its_entries_everywhere)
{
	uint64_t leader = wait_leader(0);
	int leaders = 0;
	for (uint64_t id = 1; id <= T_NODES; id++)
		leaders += node_is_leader(node(id));
	ck_assert_int_eq(leaders, 1);
	uint64_t index = propose(leader, 20);
	expect_applied(index, 20);
	/* a follower refuses to propose and names the leader */
	uint64_t f = leader % T_NODES + 1, term, at = 0, idx;
	static const uint8_t none[] = {0};
	ck_assert_int_ne(
	    node_raft_propose(node(f), none, sizeof none, 0, &term, &idx, &at),
	    0);
	ck_assert_uint_eq(at, leader);
}
END_TEST

START_TEST(cut_off_leader_is_replaced_and_catches_up)
{
	uint64_t old = wait_leader(0);
	uint64_t index = propose(old, 5);
	expect_applied(index, 5);
	net_cut(old, 1);
	uint64_t leader = wait_leader(old);
	/* the old leader hears nobody: it steps down (check-quorum) */
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (node_is_leader(node(old))) {
		ck_assert(lora_now_ms() < until);
		usleep(1000);
	}
	index = propose(leader, 7);
	expect_applied(index, 12);
	ck_assert_uint_eq(count_t(old), 5);
	net_cut(old, 0);
	ck_assert_int_eq(node_wait_applied(node(old), index, T_WAIT_MS), 0);
	ck_assert_uint_eq(count_t(old), 12);
	ck_assert_uint_eq(wait_leader(0), leader);
}
END_TEST

START_TEST(transfer_moves_leadership)
{
	uint64_t old = wait_leader(0);
	uint64_t to = old % T_NODES + 1;
	(void)propose(old, 3);
	char err[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(node_raft_transfer(node(old), to, err) == 0,
	              "transfer: %s", err);
	/* woken by each published change of role, leader or term */
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	for (;;) {
		uint64_t seq = node_status_seq(node(old));
		if (node_leader_id(node(old)) == to)
			break;
		ck_assert_int_eq(node_status_wait(node(old), seq, until), 0);
	}
	ck_assert_uint_eq(wait_leader(0), to);
	uint64_t index = propose(to, 4);
	expect_applied(index, 7);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_raftloop");
	TCase *t = tcase_create("raftloop");
	tcase_set_timeout(t, 120);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, one_leader_and_its_entries_everywhere);
	tcase_add_test(t, cut_off_leader_is_replaced_and_catches_up);
	tcase_add_test(t, transfer_moves_leadership);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
