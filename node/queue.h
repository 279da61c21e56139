/*
 * queue.h - a bounded FIFO between threads (node/): the raft loop's inbox,
 * the apply queue and the writer queue.
 *
 * Items are intrusive: the caller embeds a struct nq_link in its own item
 * and gets it back from nq_take (container_of style), so a push never
 * allocates and cannot run out of memory. The queue never owns an item:
 * whoever pushed one owns it until it is taken, then the taker does.
 *
 * Waits are condition waits on the CLOCK_MONOTONIC clock against a deadline
 * in lora_now_ms() time (NQ_NOW: do not wait, NQ_FOREVER: until it happens
 * or the queue is closed); nothing polls.
 *
 * The capacity counts items queued plus items taken and not yet finished
 * (nq_done), so a consumer that keeps a batch in hand while it works on it
 * (the apply loop) still bounds what is outstanding; nq_drain waits for
 * both to reach zero. A consumer that forgets items once taken calls
 * nq_done right after nq_take.
 */
#ifndef LORA_NODE_QUEUE_H
#define LORA_NODE_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define NQ_NOW     0          /* deadline: do not wait */
#define NQ_FOREVER UINT64_MAX /* deadline: until done or closed */

struct nq_link {
	struct nq_link *next;
};

struct nqueue {
	pthread_mutex_t mu;
	pthread_cond_t items; /* an item arrived, or closed */
	pthread_cond_t room;  /* room, idle (for nq_drain), or closed */
	struct nq_link *head, *tail;
	size_t len;  /* queued */
	size_t busy; /* taken, not yet nq_done */
	size_t cap;  /* len + busy stays at or below it for nq_push */
	int closed;
	int kicked;     /* nq_kick: the next nq_take returns even when empty */
	size_t waiting; /* threads parked in a wait, for nq_waiting */
};

/* 0, or LORA_EINTERNAL when the mutex or conditions cannot be made. */
int nq_init(struct nqueue *q, size_t cap);
/* Items still queued stay their pusher's: take them first. */
void nq_destroy(struct nqueue *q);

/*
 * Appends it, waiting until deadline_ms for room: 0 (the queue took it),
 * LORA_ELIMIT (still full at the deadline) or LORA_ECLOSED. On error it
 * stays the caller's.
 */
int nq_push(struct nqueue *q, struct nq_link *it, uint64_t deadline_ms);
/* The same without waiting and without waking a taker: for items that
 * may wait for the consumer's next turn. */
int nq_push_lazy(struct nqueue *q, struct nq_link *it);
/* Puts a list of cnt items (first..NULL, in order) back at the front,
 * over the capacity and even when closed (items given back by a taker,
 * who called nq_done for them already). */
void nq_push_front(struct nqueue *q, struct nq_link *first, size_t cnt);

/*
 * Takes up to max items (SIZE_MAX: all) in order, waiting until deadline_ms
 * for the first (or until nq_kick): the list (linked by next, NULL-ended; the
 * caller's) and *cnt, or NULL with *cnt 0 at the deadline or once the queue is
 * closed and empty (a closed queue still hands out what it holds). Taken items
 * count as busy until nq_done.
 */
struct nq_link *nq_take(struct nqueue *q, size_t max, uint64_t deadline_ms,
                        size_t *cnt);
/* nq_take and nq_done in one: for a consumer that forgets items once
 * taken (the raft inbox, the writer); one lock instead of two. */
struct nq_link *nq_take_done(struct nqueue *q, size_t max, uint64_t deadline_ms,
                             size_t *cnt);
/* cnt taken items are finished: room for pushers, and nq_drain may end. */
void nq_done(struct nqueue *q, size_t cnt);
/* Removes every queued item keep() says no to (0), in order: the list and
 * *cnt (the caller's; not busy). */
struct nq_link *nq_remove_if(struct nqueue *q,
                             int (*keep)(struct nq_link *, void *), void *arg,
                             size_t *cnt);

/* Waits until nothing is queued or busy: 0, LORA_ETIMEOUT at the deadline,
 * or LORA_ECLOSED once closed (the consumer may be gone). */
int nq_drain(struct nqueue *q, uint64_t deadline_ms);
/* Refuses further pushes and wakes every waiter; idempotent. */
void nq_close(struct nqueue *q);
/* Makes the taker's wait end now (or its next one at once), with or
 * without items: a consumer with other work to look at (the writer's
 * proposals after a role change). */
void nq_kick(struct nqueue *q);
/* Items queued plus busy. */
size_t nq_len(struct nqueue *q);
/* Threads parked in a condition wait on q right now (pushers, takers,
 * drainers): lets a test wake a waiter only once it really waits. */
size_t nq_waiting(struct nqueue *q);

#endif
