/* test_queue.c - node/queue.c with real threads: order, capacity, deadlines
 * (waited out, never early), wake-ups by push, done, close and drain, items
 * removed and given back, and many producers against one consumer. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "lora.h"
#include "queue.h"

#define T_WAIT_MS      5000 /* generous: the machine is shared */
#define T_SHORT_MS     60   /* a deadline a test waits out */
#define T_PRODUCERS    4
#define T_ITEMS_EACH   20000
#define T_STRESS_CAP   16
#define T_STRESS_BATCH 7

struct item {
	struct nq_link link; /* first: a link is its item */
	int producer;
	int seq;
};

static struct item *item_of(struct nq_link *l)
{
	return (struct item *)l;
}

static uint64_t in_ms(int ms)
{
	return lora_now_ms() + (uint64_t)ms;
}

START_TEST(fifo_order_and_capacity)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 3), 0);
	struct item it[4] = {{.seq = 0}, {.seq = 1}, {.seq = 2}, {.seq = 3}};
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nq_push(&q, &it[i].link, NQ_NOW), 0);
	ck_assert_int_eq(nq_push(&q, &it[3].link, NQ_NOW), LORA_ELIMIT);
	ck_assert_int_eq(nq_push_lazy(&q, &it[3].link), LORA_ELIMIT);
	ck_assert_uint_eq(nq_len(&q), 3);
	size_t cnt;
	struct nq_link *l = nq_take(&q, 2, NQ_NOW, &cnt);
	ck_assert_uint_eq(cnt, 2);
	ck_assert_int_eq(item_of(l)->seq, 0);
	ck_assert_int_eq(item_of(l->next)->seq, 1);
	ck_assert_ptr_null(l->next->next);
	/* taken but not done: still counts against the capacity */
	ck_assert_int_eq(nq_push(&q, &it[3].link, NQ_NOW), LORA_ELIMIT);
	nq_done(&q, 2);
	ck_assert_int_eq(nq_push_lazy(&q, &it[3].link), 0);
	/* nq_take_done: room at once */
	l = nq_take_done(&q, SIZE_MAX, NQ_NOW, &cnt);
	ck_assert_uint_eq(cnt, 2);
	ck_assert_int_eq(item_of(l)->seq, 2);
	ck_assert_int_eq(item_of(l->next)->seq, 3);
	ck_assert_uint_eq(nq_len(&q), 0);
	ck_assert_ptr_null(nq_take(&q, SIZE_MAX, NQ_NOW, &cnt));
	ck_assert_uint_eq(cnt, 0);
	nq_destroy(&q);
}
END_TEST

START_TEST(deadlines_are_waited_out)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 1), 0);
	size_t cnt;
	uint64_t t0 = lora_now_ms();
	ck_assert_ptr_null(nq_take(&q, 1, in_ms(T_SHORT_MS), &cnt));
	ck_assert_uint_ge(lora_now_ms() - t0, T_SHORT_MS);
	struct item a = {0}, b = {0};
	ck_assert_int_eq(nq_push(&q, &a.link, NQ_NOW), 0);
	t0 = lora_now_ms();
	ck_assert_int_eq(nq_push(&q, &b.link, in_ms(T_SHORT_MS)), LORA_ELIMIT);
	ck_assert_uint_ge(lora_now_ms() - t0, T_SHORT_MS);
	nq_take(&q, 1, NQ_NOW, &cnt);
	t0 = lora_now_ms();
	ck_assert_int_eq(nq_drain(&q, in_ms(T_SHORT_MS)), LORA_ETIMEOUT);
	ck_assert_uint_ge(lora_now_ms() - t0, T_SHORT_MS);
	nq_done(&q, 1);
	ck_assert_int_eq(nq_drain(&q, NQ_NOW), 0);
	nq_destroy(&q);
}
END_TEST

/* ---- wake-ups from another thread ------------------------------------- */

enum op { OP_TAKE, OP_PUSH, OP_DRAIN };

struct waiter {
	struct nqueue *q;
	enum op op;
	struct item it;
	int rc;
	size_t cnt;
	struct nq_link *got;
	uint64_t waited_ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = lora_now_ms();
	if (w->op == OP_TAKE)
		w->got = nq_take(w->q, SIZE_MAX, NQ_FOREVER, &w->cnt);
	else if (w->op == OP_PUSH)
		w->rc = nq_push(w->q, &w->it.link, NQ_FOREVER);
	else
		w->rc = nq_drain(w->q, NQ_FOREVER);
	w->waited_ms = lora_now_ms() - t0;
	return NULL;
}

static void start(pthread_t *t, struct waiter *w)
{
	ck_assert_int_eq(pthread_create(t, NULL, waiter_main, w), 0);
}

/* Waits until cnt threads are parked in a wait on q: a wake-up then
 * really wakes someone (the waiter is not merely about to wait). */
static void wait_parked(struct nqueue *q, size_t cnt)
{
	uint64_t deadline = in_ms(T_WAIT_MS);
	while (nq_waiting(q) < cnt && lora_now_ms() < deadline)
		sched_yield();
	ck_assert_msg(nq_waiting(q) >= cnt, "%zu of %zu waiters parked",
	              nq_waiting(q), cnt);
}

/* Joins t within T_WAIT_MS (it must have been woken). */
static void join_woken(pthread_t t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += T_WAIT_MS / 1000;
	ck_assert_msg(pthread_timedjoin_np(t, NULL, &ts) == 0,
	              "a waiter was not woken");
}

START_TEST(push_wakes_taker_and_done_wakes_pusher)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 1), 0);
	pthread_t t;
	struct waiter taker = {.q = &q, .op = OP_TAKE};
	start(&t, &taker);
	wait_parked(&q, 1);
	struct item a = {.seq = 7};
	ck_assert_int_eq(nq_push(&q, &a.link, NQ_FOREVER), 0);
	join_woken(t);
	ck_assert_ptr_eq(taker.got, &a.link);
	ck_assert_uint_eq(taker.cnt, 1);

	/* full while a is busy: the pusher waits for nq_done */
	struct waiter pusher = {.q = &q, .op = OP_PUSH};
	start(&t, &pusher);
	struct waiter drainer = {.q = &q, .op = OP_DRAIN};
	pthread_t td;
	start(&td, &drainer);
	wait_parked(&q, 2);
	ck_assert_uint_eq(nq_len(&q), 1);
	nq_done(&q, 1);
	join_woken(t);
	ck_assert_int_eq(pusher.rc, 0);
	size_t cnt;
	ck_assert_ptr_eq(nq_take(&q, 1, NQ_NOW, &cnt), &pusher.it.link);
	nq_done(&q, 1);
	join_woken(td);
	ck_assert_int_eq(drainer.rc, 0);
	nq_destroy(&q);
}
END_TEST

START_TEST(close_wakes_everyone)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 1), 0);
	pthread_t t1, t2, t3;
	struct waiter taker = {.q = &q, .op = OP_TAKE};
	start(&t1, &taker);
	wait_parked(&q, 1);
	nq_close(&q);
	join_woken(t1);
	ck_assert_ptr_null(taker.got);
	nq_destroy(&q);

	ck_assert_int_eq(nq_init(&q, 1), 0);
	struct item a = {.seq = 1};
	ck_assert_int_eq(nq_push(&q, &a.link, NQ_NOW), 0);
	struct waiter pusher = {.q = &q, .op = OP_PUSH};
	struct waiter drainer = {.q = &q, .op = OP_DRAIN};
	start(&t2, &pusher);
	start(&t3, &drainer);
	wait_parked(&q, 2);
	nq_close(&q);
	join_woken(t2);
	join_woken(t3);
	ck_assert_int_eq(pusher.rc, LORA_ECLOSED);
	ck_assert_int_eq(drainer.rc, LORA_ECLOSED);
	/* a closed queue refuses pushes, still hands out what it holds, and
	 * then answers at once */
	struct item b = {0};
	ck_assert_int_eq(nq_push(&q, &b.link, NQ_FOREVER), LORA_ECLOSED);
	ck_assert_int_eq(nq_push_lazy(&q, &b.link), LORA_ECLOSED);
	size_t cnt;
	ck_assert_ptr_eq(nq_take(&q, SIZE_MAX, NQ_FOREVER, &cnt), &a.link);
	nq_done(&q, cnt);
	ck_assert_ptr_null(nq_take(&q, SIZE_MAX, NQ_FOREVER, &cnt));
	nq_destroy(&q);
}
END_TEST

static int keep_even(struct nq_link *l, void *arg)
{
	(void)arg;
	return item_of(l)->seq % 2 == 0;
}

START_TEST(remove_if_and_push_front_keep_order)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 6), 0);
	struct item it[8];
	for (int i = 0; i < 8; i++)
		it[i] = (struct item){.seq = i};
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(nq_push(&q, &it[i].link, NQ_NOW), 0);
	size_t cnt;
	struct nq_link *odd = nq_remove_if(&q, keep_even, NULL, &cnt);
	ck_assert_uint_eq(cnt, 3);
	for (int s = 1; s <= 5; s += 2, odd = odd->next)
		ck_assert_int_eq(item_of(odd)->seq, s);
	ck_assert_ptr_null(odd);
	/* the tail is the last kept item: a push goes after it */
	ck_assert_int_eq(nq_push(&q, &it[6].link, NQ_NOW), 0);
	struct nq_link *l = nq_take(&q, 2, NQ_NOW, &cnt);
	nq_done(&q, cnt);
	ck_assert_int_eq(item_of(l)->seq, 0);
	/* given back to the front, over the capacity */
	ck_assert_int_eq(nq_push(&q, &it[7].link, NQ_NOW), 0);
	nq_push_front(&q, l, 2);
	ck_assert_uint_eq(nq_len(&q), 5);
	int want[] = {0, 2, 4, 6, 7};
	l = nq_take(&q, SIZE_MAX, NQ_NOW, &cnt);
	ck_assert_uint_eq(cnt, 5);
	for (int i = 0; i < 5; i++, l = l->next)
		ck_assert_int_eq(item_of(l)->seq, want[i]);
	nq_done(&q, cnt);
	nq_destroy(&q);
}
END_TEST

START_TEST(kick_ends_a_wait_once)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, 1), 0);
	pthread_t t;
	struct waiter taker = {.q = &q, .op = OP_TAKE};
	start(&t, &taker);
	wait_parked(&q, 1);
	nq_kick(&q);
	join_woken(t);
	ck_assert_ptr_null(taker.got);
	ck_assert_uint_eq(taker.cnt, 0);
	/* a kick with nobody waiting ends the next wait at once, only it */
	nq_kick(&q);
	size_t cnt;
	uint64_t t0 = lora_now_ms();
	ck_assert_ptr_null(nq_take(&q, 1, in_ms(T_WAIT_MS), &cnt));
	ck_assert_uint_lt(lora_now_ms() - t0, T_WAIT_MS);
	t0 = lora_now_ms();
	ck_assert_ptr_null(nq_take(&q, 1, in_ms(T_SHORT_MS), &cnt));
	ck_assert_uint_ge(lora_now_ms() - t0, T_SHORT_MS);
	nq_destroy(&q);
}
END_TEST

/* ---- many producers, one consumer ------------------------------------- */

struct producer {
	struct nqueue *q;
	int id;
	struct item *items; /* T_ITEMS_EACH, the test's */
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < T_ITEMS_EACH; i++) {
		p->items[i] = (struct item){.producer = p->id, .seq = i};
		/* alternate blocking and lazy pushes (retried when full) */
		while (i % 3 == 0 ? nq_push(p->q, &p->items[i].link,
		                            in_ms(T_WAIT_MS)) != 0
		                  : nq_push_lazy(p->q, &p->items[i].link) != 0)
			if (i % 3 != 0)
				sched_yield();
	}
	return NULL;
}

START_TEST(producers_against_one_consumer)
{
	struct nqueue q;
	ck_assert_int_eq(nq_init(&q, T_STRESS_CAP), 0);
	struct producer p[T_PRODUCERS];
	pthread_t t[T_PRODUCERS];
	for (int i = 0; i < T_PRODUCERS; i++) {
		p[i] = (struct producer){.q = &q, .id = i};
		p[i].items = calloc(T_ITEMS_EACH, sizeof *p[i].items);
		ck_assert_ptr_nonnull(p[i].items);
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, producer_main, &p[i]), 0);
	}
	int next[T_PRODUCERS] = {0};
	size_t total = 0, max_seen = 0;
	while (total < (size_t)T_PRODUCERS * T_ITEMS_EACH) {
		size_t cnt;
		struct nq_link *l =
		    nq_take(&q, T_STRESS_BATCH, in_ms(T_WAIT_MS), &cnt);
		ck_assert_msg(l != NULL, "no item within %d ms", T_WAIT_MS);
		ck_assert_uint_le(cnt, T_STRESS_BATCH);
		size_t len = nq_len(&q);
		max_seen = len > max_seen ? len : max_seen;
		for (; l; l = l->next) {
			struct item *it = item_of(l);
			ck_assert_int_eq(it->seq, next[it->producer]);
			next[it->producer]++;
			total++;
		}
		nq_done(&q, cnt);
	}
	ck_assert_uint_le(max_seen, T_STRESS_CAP);
	for (int i = 0; i < T_PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(next[i], T_ITEMS_EACH);
		free(p[i].items);
	}
	ck_assert_uint_eq(nq_len(&q), 0);
	nq_destroy(&q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("queue");
	TCase *t = tcase_create("queue");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, fifo_order_and_capacity);
	tcase_add_test(t, deadlines_are_waited_out);
	tcase_add_test(t, push_wakes_taker_and_done_wakes_pusher);
	tcase_add_test(t, close_wakes_everyone);
	tcase_add_test(t, remove_if_and_push_front_keep_order);
	tcase_add_test(t, kick_ends_a_wait_once);
	tcase_add_test(t, producers_against_one_consumer);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
