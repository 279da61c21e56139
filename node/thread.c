/* thread.c - the node's thread starts and their fault hook (thread.h). */
#include "thread.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "lora.h"

static atomic_long fail_countdown = -1; /* < 0: failures off */
static atomic_ulong starts;

void node_thread_fail_after(long n)
{
	atomic_store(&fail_countdown, n);
}

unsigned long node_thread_count(void)
{
	return atomic_load(&starts);
}

/* Whether this start fails on purpose (the countdown reached 0). */
static int should_fail(void)
{
	atomic_fetch_add(&starts, 1);
	long n = atomic_load(&fail_countdown);
	while (n >= 0) {
		long next = n == 0 ? -1 : n - 1;
		if (atomic_compare_exchange_weak(&fail_countdown, &n, next))
			return n == 0;
	}
	return 0;
}

int node_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return LORA_EINTERNAL;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
	return rc ? LORA_EINTERNAL : 0;
}

int node_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu,
                         uint64_t deadline_ms)
{
	if (deadline_ms == NODE_DEADLINE_NONE) {
		pthread_cond_wait(c, mu);
		return 0;
	}
	if (lora_now_ms() >= deadline_ms)
		return LORA_ETIMEOUT;
	struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
	                      .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
	return pthread_cond_timedwait(c, mu, &ts) == ETIMEDOUT ? LORA_ETIMEOUT
	                                                       : 0;
}

int node_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                      const char *what, char *errmsg)
{
	int err = should_fail() ? EAGAIN : pthread_create(t, NULL, fn, arg);
	if (err == 0)
		return 0;
	if (errmsg == NULL)
		return LORA_EINTERNAL;
	return lora_errf(LORA_EINTERNAL, errmsg,
	                 "cannot start the %s thread: %s", what, strerror(err));
}
