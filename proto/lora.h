/*
 * lora.h - the shared base of LoraDB: error codes, assertions, allocation
 * hooks and growable byte buffers.
 *
 * Every folder may include this header; it depends on nothing but libc, so
 * replication/ can use it without seeing protobuf-c, RocksDB or nng.
 *
 * Conventions (see ../shared/STYLE.md):
 *   - A fallible function returns an int from enum lora_err; 0 is success and
 *     results come back through out-parameters.
 *   - Memory that crosses a header is allocated with lora_malloc() and
 *     friends, so that tests can make allocation fail on purpose.
 */
#ifndef LORA_H
#define LORA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- error codes ------------------------------------------------------- */

/*
 * One project-wide error enum. The numeric values are internal; the stable
 * names on the wire come from lora_err_code() ("LORA_PARSE", ...).
 */
enum lora_err {
	LORA_OK = 0,
	/* operating errors */
	LORA_ENOMEM,   /* allocation failed */
	LORA_EIO,      /* disk or OS I/O failed */
	LORA_ENOSPC,   /* disk full */
	LORA_ECORRUPT, /* bytes from disk or a peer do not decode */
	LORA_ECLOSED,  /* handle or connection already closed */
	LORA_ETIMEOUT, /* a deadline passed */
	LORA_ELIMIT,   /* a named limit was exceeded */
	/* caller errors */
	LORA_EINVAL,        /* invalid argument or mutation */
	LORA_ENOTFOUND,     /* named entity does not exist */
	LORA_EEXIST,        /* entity already exists */
	LORA_EPARSE,        /* Cypher syntax error */
	LORA_ESEMANTIC,     /* Cypher semantic error (unknown variable, type) */
	LORA_EPARAMS,       /* a query parameter is missing or malformed */
	LORA_ECONSTRAINT,   /* a constraint would be violated */
	LORA_EREADONLY,     /* write in a read-only context */
	LORA_EVECTOR,       /* vector dimension / coordinate type mismatch */
	LORA_ETYPE,         /* runtime type error in an expression */
	LORA_EARITH,        /* arithmetic error: overflow, division by zero */
	LORA_EMEMORY,       /* a statement's memory budget was exceeded */
	LORA_EUNAUTHORIZED, /* no or wrong credentials (HTTP 401) */
	LORA_EFORBIDDEN,    /* the user's role does not allow it (HTTP 403) */
	/* cluster errors */
	LORA_ENOTLEADER,       /* this node is not the leader (hint attached) */
	LORA_EUNAVAILABLE,     /* not executed: no leader reachable, retry */
	LORA_EUNKNOWN_OUTCOME, /* proposed, answer lost: retry same requestId */
	LORA_ECONFIG,          /* configuration missing or malformed */
	LORA_EINTERNAL,        /* a bug: should not happen */
	LORA_ERR_COUNT
};

/* Human-readable sentence for err. Never NULL; static storage. */
const char *lora_strerror(int err);

/* Stable wire code for err, e.g. "LORA_PARSE". Never NULL; static storage. */
const char *lora_err_code(int err);

/* "client" for caller-visible mistakes, "server" otherwise. Static. */
const char *lora_err_category(int err);

/* HTTP status LoraDB's server uses for err (400, 401, 403, 404, 408, 409,
 * 422, 500, 503). */
int lora_err_http_status(int err);

/* Lists and maps nested inside one value, wherever a value is built,
 * decoded or copied (the engine, JSON, protobuf, apply). Past it: an error
 * (LORA_ELIMIT), never a crash. */
#define LORA_VALUE_DEPTH_MAX 64

/* Bytes for an error message buffer carried beside an error code. */
#define LORA_ERRMSG_BYTES 512

/*
 * Formats a message into buf (LORA_ERRMSG_BYTES long, may be NULL) and
 * returns err, so callers can write `return lora_errf(err, msg, "...")`.
 */
int lora_errf(int err, char *buf, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to the message already in buf. Returns err. */
int lora_errwrap(int err, char *buf, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- assertions -------------------------------------------------------- */

/*
 * LORA_ASSERT catches programmer errors and stays on in release builds.
 * Never assert on bytes that came from a disk, a peer or a client.
 */
_Noreturn void lora_panic(const char *file, int line, const char *expr);

#define LORA_ASSERT(cond)                                                      \
	((cond) ? (void)0 : lora_panic(__FILE__, __LINE__, #cond))

#define LORA_UNREACHABLE() lora_panic(__FILE__, __LINE__, "unreachable")

/* ---- allocation hooks -------------------------------------------------- */

/*
 * Allocation functions used by every LoraDB module. They behave like their
 * libc counterparts, except that a test may arrange for them to fail.
 * lora_free(NULL) is a no-op. Memory from these must go back to lora_free.
 */
void *lora_malloc(size_t size);
void *lora_calloc(size_t count, size_t size);
void *lora_realloc(void *ptr, size_t size);
void lora_free(void *ptr);
/* Copy of s (NUL-terminated), or NULL when allocation fails. */
char *lora_strdup(const char *s);
/* Copy of the first len bytes of s plus a NUL, or NULL. */
char *lora_strndup(const char *s, size_t len);

/*
 * Fault injection, for tests: the (n+1)th allocation from now fails, and
 * every one after it too while `sticky` is set. n < 0 switches failures off.
 * Thread-safe.
 */
void lora_alloc_fail_after(long n, int sticky);
/* Number of allocations made through the hooks since start (for tests). */
unsigned long lora_alloc_count(void);

/* ---- the process's memory (mem.c) ------------------------------------- */

/* Resident set of this process in bytes (/proc/self/statm; 0 if unknown). */
uint64_t lora_mem_resident(void);
/* Returns malloc's free pages to the system (malloc_trim(0)), for after
 * large one-off work; counted in lora_mem_process. At most one trim per
 * 10 s in the process (LORA_MEM_TRIM_INTERVAL_MS): a call within that of
 * the last trim does nothing and is counted as skipped. Returns how much
 * the resident set shrank, bytes (0 when skipped). Thread-safe. */
uint64_t lora_mem_trim(void);
/* What glibc malloc holds over all its arenas, and the trims so far:
 * in_use (handed out, mmapped chunks included), free (kept in the arenas'
 * free lists, resident or not), mmapped (chunks malloc mmapped apart),
 * arenas (how many), trims / trimmed (lora_mem_trim's trims and the bytes
 * they gave back), trims_skipped (its calls within the interval). The
 * malloc figures walk every arena under its lock: they are read at most
 * once per 10 s (LORA_MEM_FIGURES_MS) and are otherwise the last ones
 * read (figure_reads counts the reads); resident is always current.
 * Under a sanitizer malloc is not glibc's: the malloc figures then
 * describe only what glibc still serves. Thread-safe. */
struct lora_mem_process {
	uint64_t resident, in_use, free, mmapped;
	unsigned arenas;
	uint64_t trims, trimmed, trims_skipped, figure_reads;
};
void lora_mem_process(struct lora_mem_process *out);

/* ---- byte buffers ------------------------------------------------------ */

/* Largest buffer a lora_buf may grow to: 1 GiB. */
#define LORA_BUF_BYTES_MAX ((size_t)1 << 30)

/*
 * A growable byte buffer. Zero-initialise it ({0}) before use; data is
 * owned by the buffer and freed by lora_buf_free. data is NUL-terminated
 * after any append (the NUL is not counted in len).
 *
 * Errors are sticky: the first append that fails (LORA_ENOMEM, LORA_ELIMIT,
 * or LORA_EINVAL when vsnprintf cannot format) is remembered in err, and every
 * later append does nothing and returns it, so a builder may append freely and
 * check lora_buf_error() once before it uses the contents. lora_buf_take() of a
 * failed buffer frees the data and returns NULL; lora_buf_reset() and
 * lora_buf_free() clear the error. (LORA_EINVAL from lora_buf_put_utf8 is not
 * sticky: nothing is lost, the caller decides.)
 */
struct lora_buf {
	char *data;
	size_t len;
	size_t cap;
	int err;
};

int lora_buf_reserve(struct lora_buf *b, size_t extra_bytes);
int lora_buf_append(struct lora_buf *b, const void *p, size_t n);
int lora_buf_putc(struct lora_buf *b, char c);
int lora_buf_puts(struct lora_buf *b, const char *s);
int lora_buf_printf(struct lora_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int lora_buf_vprintf(struct lora_buf *b, const char *fmt, va_list ap);
/* Appends code point cp encoded as UTF-8. LORA_EINVAL (nothing appended)
 * for a value above U+10FFFF or a surrogate half. */
int lora_buf_put_utf8(struct lora_buf *b, uint32_t cp);
/* Empties the buffer but keeps its memory. */
void lora_buf_reset(struct lora_buf *b);
void lora_buf_free(struct lora_buf *b);
/* Hands the data to the caller (free with lora_free); the buffer is empty.
 * NULL when an append failed (the data is freed) or nothing was appended. */
char *lora_buf_take(struct lora_buf *b);
/* The first append error since the buffer was last empty, or LORA_OK. */
static inline int lora_buf_error(const struct lora_buf *b)
{
	return b->err;
}

/* ---- small helpers ----------------------------------------------------- */

/* Big-endian fixed-width encoding, used for ordered keys and on the wire. */
static inline void lora_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t lora_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void lora_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t lora_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Monotonic clock in milliseconds / nanoseconds (node/ and tests only:
 * replication/ must never call these). */
uint64_t lora_now_ms(void);
uint64_t lora_now_ns(void);
/* *ts = the wall clock (CLOCK_REALTIME, what pthread_cond_timedwait
 * takes) plus ms milliseconds. */
struct timespec;
void lora_deadline_after(struct timespec *ts, int ms);

/*
 * Opens path for reading when it is a regular file, without ever waiting
 * on it (a FIFO without a writer would block open(2) for good): the file
 * descriptor (close-on-exec, blocking again), its stat in *st when st is
 * not NULL; or -1 with errno, EINVAL for anything that is not a regular
 * file (FIFO, socket, device, directory). LOAD CSV and lora-import read
 * only regular files.
 */
struct stat;
int lora_open_regular(const char *path, struct stat *st);

/* The lower of two limits where 0 means "none". */
static inline uint64_t lora_min_limit(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/* Whether bytes hold the word TRANSACTIONS, in any case: a cheap look
 * for a CALL { ... } IN TRANSACTIONS statement (also true of a label or
 * a string with the word: callers only treat such statements more
 * carefully, never wrongly). */
int lora_says_transactions(const char *bytes, size_t len);

/* FNV-1a of n bytes, for in-memory hash tables (never stored). */
uint32_t lora_hash32(const void *p, size_t n);

#endif /* LORA_H */
