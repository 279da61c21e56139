/*
 * thread.h - starting the node's threads (raft loop, apply loop, writer,
 * gossip, snapshot senders, the servers' workers), with a fault hook so a test
 * can make pthread_create fail the way it does when the process is out of
 * threads or memory; and condition waits against a deadline on the
 * CLOCK_MONOTONIC clock (lora_now_ms time), which a change of the wall clock
 * cannot stretch or cut short.
 */
#ifndef LORA_NODE_THREAD_H
#define LORA_NODE_THREAD_H

#include <pthread.h>
#include <stdint.h>

#define NODE_DEADLINE_NONE UINT64_MAX /* node_cond_wait_until: no deadline */

/*
 * pthread_create(t, fn, arg): 0, or LORA_EINTERNAL with errmsg (may be
 * NULL) saying "cannot start the <what> thread: <reason>"; *t is then
 * not a thread and must not be joined.
 */
int node_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                      const char *what, char *errmsg);
/* For tests: the (n+1)th node_thread_start from now fails (as with
 * EAGAIN), and only it; n < 0 switches failures off. Thread-safe. */
void node_thread_fail_after(long n);
/* pthread_cond_init on the CLOCK_MONOTONIC clock: 0 or LORA_EINTERNAL. */
int node_cond_init(pthread_cond_t *c);
/* One wait on c (initialised by node_cond_init) with mu held, until
 * deadline_ms (lora_now_ms time): 0 when woken (the caller re-checks its
 * condition: wake-ups may be spurious), LORA_ETIMEOUT once it passed. */
int node_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu,
                         uint64_t deadline_ms);
/* node_thread_start calls since the process started (for tests). */
unsigned long node_thread_count(void);

#endif
