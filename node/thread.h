/*
 * thread.h - starting the node's core threads (raft loop, apply loop,
 * writer, gossip, snapshot senders), with a fault hook so a test can make
 * pthread_create fail the way it does when the process is out of threads
 * or memory.
 */
#ifndef LORA_NODE_THREAD_H
#define LORA_NODE_THREAD_H

#include <pthread.h>

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
/* node_thread_start calls since the process started (for tests). */
unsigned long node_thread_count(void);

#endif
