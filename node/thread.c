/* thread.c - the node's thread starts and their fault hook (thread.h). */
#include "thread.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

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
