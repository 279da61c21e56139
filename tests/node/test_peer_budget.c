/* test_peer_budget.c - passed-on writes (NODE_FRAME_FWD) cannot crowd Raft
 * frames out of a peer's send queue (node/transport.c: their own budget,
 * NODE_PEER_FWD_SENDBUF_MSGS / _BYTES_MAX, beside the Raft one), over real
 * nng streams on 127.1.152.1-2: node 2 stops reading (its callback waits
 * at a gate on the first passed-on write), node 1 sends passed-on writes
 * until they are refused for a while (its queue full and the socket
 * stalled; 64 KiB ones, then heartbeat-sized ones into what room is
 * left), and then heartbeat-sized Raft frames are still taken, and
 * every one of them arrives once node 2 reads again. With one shared
 * budget the flood fills it and the Raft frames are refused (as a leader's
 * heartbeats to that follower would be, until it starts an election). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lora.h"
#include "transport.h"

#define T_ADDR_1      "127.1.152.1:5152"
#define T_ADDR_2      "127.1.152.2:5152"
#define T_WAIT_MS     20000       /* generous: the machine is shared */
#define T_FWD_BYTES   (64u << 10) /* one passed-on write */
#define T_FWD_MAX     16384       /* 1 GiB: the flood gives up after */
#define T_STALLED_MS  300 /* refused this long in a row: queue stalled */
#define T_RAFT_FRAMES 100 /* heartbeats sent during the stall */

/* What node 2 received, and its gate. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int open;
	unsigned long raft, fwd;
} g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void on_frame(void *arg, int kind, uint64_t from, const uint8_t *p,
                     size_t len)
{
	(void)arg;
	(void)from;
	(void)p;
	(void)len;
	pthread_mutex_lock(&g.mu);
	if (kind == NODE_FRAME_RAFT)
		g.raft++;
	else if (kind == NODE_FRAME_FWD)
		g.fwd++;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (kind == NODE_FRAME_FWD && !g.open && lora_now_ms() < until) {
		struct timespec ts;
		lora_deadline_after(&ts, 50);
		pthread_cond_timedwait(&g.cond, &g.mu, &ts);
	}
	pthread_mutex_unlock(&g.mu);
}

static unsigned long got(unsigned long *field)
{
	pthread_mutex_lock(&g.mu);
	unsigned long v = *field;
	pthread_mutex_unlock(&g.mu);
	return v;
}

static struct node_transport *open_node(uint64_t id, const char *addr)
{
	struct node_transport *t = NULL;
	char err[256] = "";
	int rc = node_transport_open(id, addr, NULL, on_frame, NULL, &t, err);
	ck_assert_msg(rc == 0, "open %s: %s", addr, err);
	return t;
}

/* Sends passed-on writes of len bytes to node 2 until they have been
 * refused for T_STALLED_MS in a row; the number taken. */
static unsigned long flood(struct node_transport *t, const uint8_t *w,
                           size_t len)
{
	unsigned long taken = 0;
	uint64_t refused_since = 0, until = lora_now_ms() + T_WAIT_MS;
	while (taken < T_FWD_MAX && lora_now_ms() < until) {
		int rc = node_transport_send(t, 2, NODE_FRAME_FWD, w, len);
		ck_assert_msg(rc == 0 || rc == LORA_EUNAVAILABLE, "send: %d",
		              rc);
		uint64_t now = lora_now_ms();
		if (rc == 0) {
			taken++;
			refused_since = 0;
		} else if (refused_since == 0) {
			refused_since = now;
		} else if (now - refused_since >= T_STALLED_MS) {
			return taken;
		} else {
			usleep(1000); /* the stall is the condition: poll */
		}
	}
	ck_abort_msg("passed-on writes never refused (%lu taken)", taken);
	return taken;
}

START_TEST(raft_frames_pass_a_full_forward_queue)
{
	struct node_transport *a = open_node(1, T_ADDR_1);
	struct node_transport *b = open_node(2, T_ADDR_2);
	char err[256] = "";
	ck_assert_int_eq(node_transport_set_peer(a, 2, T_ADDR_2, err), 0);
	uint8_t beat[16] = {0};
	ck_assert_int_eq(node_transport_send_wait(a, 2, NODE_FRAME_RAFT, beat,
	                                          sizeof beat, T_WAIT_MS),
	                 0);
	uint8_t *w = calloc(1, T_FWD_BYTES);
	ck_assert_ptr_nonnull(w);
	/* big ones until the socket and the queue are full, then small
	 * ones into whatever room the big ones left */
	unsigned long big = flood(a, w, T_FWD_BYTES);
	unsigned long small = flood(a, w, sizeof beat);
	unsigned long taken = big + small;
	printf("passed-on writes taken before the queue stalled: %lu of "
	       "%u KiB, then %lu of %zu bytes\n",
	       big, T_FWD_BYTES >> 10, small, sizeof beat);
	int refused = 0;
	for (int i = 0; i < T_RAFT_FRAMES; i++)
		refused += node_transport_send(a, 2, NODE_FRAME_RAFT, beat,
		                               sizeof beat) != 0;
	ck_assert_msg(refused == 0,
	              "%d of %d Raft frames refused behind the passed-on "
	              "writes",
	              refused, T_RAFT_FRAMES);
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (got(&g.raft) < 1 + T_RAFT_FRAMES && lora_now_ms() < until)
		usleep(1000);
	ck_assert_uint_eq(got(&g.raft), 1 + T_RAFT_FRAMES);
	ck_assert_uint_eq(got(&g.fwd), taken);
	node_transport_close(a);
	node_transport_close(b);
	free(w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_peer_budget");
	TCase *t = tcase_create("budget");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, raft_frames_pass_a_full_forward_queue);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
