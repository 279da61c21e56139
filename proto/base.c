/* base.c - error table, panics, allocation hooks with fault injection. */
#define _POSIX_C_SOURCE 200809L
#include "lora.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct err_info {
	const char *code;
	const char *text;
	int client; /* 1: caller-visible mistake, 0: server-side failure */
	int http;
};

static const struct err_info err_table[LORA_ERR_COUNT] = {
    [LORA_OK] = {"LORA_OK", "success", 1, 200},
    [LORA_ENOMEM] = {"LORA_INTERNAL", "out of memory", 0, 500},
    [LORA_EIO] = {"LORA_IO", "I/O error", 0, 500},
    [LORA_ENOSPC] = {"LORA_NO_SPACE", "no space left on device", 0, 507},
    [LORA_ECORRUPT] = {"LORA_CORRUPTION", "corrupt data", 0, 500},
    [LORA_ECLOSED] = {"LORA_CLOSED", "closed", 0, 503},
    [LORA_ETIMEOUT] = {"LORA_TIMEOUT", "timed out", 1, 408},
    [LORA_ELIMIT] = {"LORA_LIMIT", "limit exceeded", 1, 413},
    [LORA_EINVAL] = {"LORA_INVALID", "invalid argument", 1, 400},
    [LORA_ENOTFOUND] = {"LORA_NOT_FOUND", "not found", 1, 404},
    [LORA_EEXIST] = {"LORA_EXISTS", "already exists", 1, 409},
    [LORA_EPARSE] = {"LORA_PARSE", "syntax error", 1, 400},
    [LORA_ESEMANTIC] = {"LORA_SEMANTIC", "semantic error", 1, 400},
    [LORA_EPARAMS] = {"LORA_INVALID_PARAMS", "invalid parameters", 1, 422},
    [LORA_ECONSTRAINT] = {"LORA_CONSTRAINT", "constraint violation", 1, 409},
    [LORA_EREADONLY] = {"LORA_READ_ONLY", "write in read-only context", 1, 400},
    [LORA_EVECTOR] = {"LORA_INVALID_VECTOR", "invalid vector", 1, 400},
    [LORA_ETYPE] = {"LORA_TYPE", "type error", 1, 400},
    [LORA_EARITH] = {"LORA_ARITHMETIC", "arithmetic error", 1, 400},
    [LORA_EMEMORY] = {"LORA_MEMORY_LIMIT", "memory budget exceeded", 1, 413},
    [LORA_EUNAUTHORIZED] = {"LORA_UNAUTHORIZED",
                            "authentication required or failed", 1, 401},
    [LORA_EFORBIDDEN] = {"LORA_FORBIDDEN", "not allowed for this user's role",
                         1, 403},
    [LORA_ENOTLEADER] = {"LORA_NOT_LEADER", "not the leader", 0, 503},
    [LORA_EUNAVAILABLE] = {"LORA_UNAVAILABLE",
                           "unavailable: not executed, safe to retry", 0, 503},
    [LORA_EUNKNOWN_OUTCOME] = {"LORA_UNKNOWN_OUTCOME",
                               "outcome unknown: retry with the same requestId",
                               0, 503},
    [LORA_ECONFIG] = {"LORA_CONFIG", "configuration error", 1, 400},
    [LORA_EINTERNAL] = {"LORA_INTERNAL", "internal error", 0, 500},
};

static const struct err_info *err_lookup(int err)
{
	if (err < 0 || err >= LORA_ERR_COUNT)
		return &err_table[LORA_EINTERNAL];
	return &err_table[err];
}

const char *lora_strerror(int err)
{
	return err_lookup(err)->text;
}
const char *lora_err_code(int err)
{
	return err_lookup(err)->code;
}
int lora_err_http_status(int err)
{
	return err_lookup(err)->http;
}

const char *lora_err_category(int err)
{
	return err_lookup(err)->client ? "client" : "server";
}

int lora_errf(int err, char *buf, const char *fmt, ...)
{
	if (buf == NULL)
		return err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, LORA_ERRMSG_BYTES, fmt, ap);
	va_end(ap);
	return err;
}

int lora_errwrap(int err, char *buf, const char *fmt, ...)
{
	if (buf == NULL)
		return err;
	char prefix[LORA_ERRMSG_BYTES];
	char old[LORA_ERRMSG_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(old, sizeof old, "%s", buf);
	/* Build in a larger scratch buffer, then cut to the message size. */
	char both[2 * LORA_ERRMSG_BYTES + 4];
	snprintf(both, sizeof both, "%s: %s", prefix,
	         old[0] ? old : lora_strerror(err));
	memcpy(buf, both, LORA_ERRMSG_BYTES - 1);
	buf[LORA_ERRMSG_BYTES - 1] = '\0';
	return err;
}

_Noreturn void lora_panic(const char *file, int line, const char *expr)
{
	fprintf(stderr, "lora: assertion failed at %s:%d: %s\n", file, line,
	        expr);
	fflush(stderr);
	abort();
}

/* ---- allocation hooks -------------------------------------------------- */

static atomic_long fail_countdown = -1; /* < 0: failures off */
static atomic_int fail_sticky;
static atomic_ulong alloc_total;

void lora_alloc_fail_after(long n, int sticky)
{
	atomic_store(&fail_sticky, sticky);
	atomic_store(&fail_countdown, n);
}

unsigned long lora_alloc_count(void)
{
	return atomic_load(&alloc_total);
}

/* Decides whether this allocation should fail on purpose. */
static int alloc_should_fail(void)
{
	atomic_fetch_add(&alloc_total, 1);
	long n = atomic_load(&fail_countdown);
	if (n < 0)
		return 0;
	if (n == 0) {
		if (!atomic_load(&fail_sticky))
			atomic_store(&fail_countdown, -1);
		return 1;
	}
	atomic_fetch_sub(&fail_countdown, 1);
	return 0;
}

void *lora_malloc(size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(size ? size : 1);
}

void *lora_calloc(size_t count, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return calloc(count ? count : 1, size ? size : 1);
}

void *lora_realloc(void *ptr, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return realloc(ptr, size ? size : 1);
}

void lora_free(void *ptr)
{
	free(ptr);
}

char *lora_strndup(const char *s, size_t len)
{
	char *p = lora_malloc(len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *lora_strdup(const char *s)
{
	return lora_strndup(s, strlen(s));
}

/* ---- clocks ------------------------------------------------------------ */

uint64_t lora_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lora_now_ms(void)
{
	return lora_now_ns() / 1000000u;
}

uint32_t lora_hash32(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

void lora_deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int lora_open_regular(const char *path, struct stat *st)
{
	struct stat own;
	if (st == NULL)
		st = &own;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENXIO) /* a socket */
			errno = EINVAL;
		return -1;
	}
	int fl = -1;
	if (fstat(fd, st) == 0 && !S_ISREG(st->st_mode))
		errno = EINVAL;
	else if ((fl = fcntl(fd, F_GETFL)) != -1 &&
	         fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != -1)
		return fd;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

int lora_says_transactions(const char *bytes, size_t len)
{
	static const char word[] = "transactions";
	size_t wl = sizeof word - 1;
	for (size_t i = 0; bytes && i + wl <= len; i++) {
		size_t k = 0;
		while (k < wl && (bytes[i + k] | 0x20) == word[k])
			k++;
		if (k == wl)
			return 1;
	}
	return 0;
}
