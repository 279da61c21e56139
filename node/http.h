/*
 * http.h - the HTTP/1.1 server (http.c) on its own: a listener, one epoll
 * I/O thread, request framing and a pool of worker threads, driven by a
 * handler (struct node_http_ops) and knowing nothing of the node. The
 * node's routes, authorization and metrics sit on top (http_node.c); the
 * unit tests in tests/node/test_http.c drive it with their own handler.
 *
 * A request belongs to exactly one thread at a time: first the I/O thread
 * (ops.io; or a worker that read it on a connection it had just answered,
 * see node_http_on_io_thread), then perhaps a worker (ops.work), or
 * another thread that took it (node_http_async). Exactly one answer is
 * sent per request: node_http_reply* or node_http_stream_*.
 */
#ifndef LORA_NODE_HTTP_H
#define LORA_NODE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct node_tls;

#define NODE_HTTP_WORKERS_MAX 32 /* worker threads, and the default */
/* A client that closed with a FIN before its answer began is probed
 * (node_http_client_gone) once its request is this old (counted from its
 * parse, so time waiting for a worker counts): answers that begin sooner
 * never carry the probe's interim "100 Continue". */
#define NODE_HTTP_PROBE_MS       200
#define NODE_HTTP_QUEUE_MAX      4096       /* requests waiting for a worker */
#define NODE_HTTP_CONNS_MAX      1024       /* open connections */
#define NODE_HTTP_BODY_BYTES_MAX (4u << 20) /* request body */
#define NODE_HTTP_SEND_MS        10000      /* an answer must leave */
/* connections without a complete request yet, from one source address */
#define NODE_HTTP_PENDING_PER_SOURCE 128
/* How often ops.tick runs on the I/O thread. */
#define NODE_HTTP_TICK_MS   20
#define NODE_HTTP_LINGER_US 1000 /* a worker waits for the next request */

/* The server and one request (with its connection); both opaque. */
struct node_http;
struct node_http_ex;

/* Where and how big. Zero limits take the defaults above (and never more
 * than them). */
struct node_http_cfg {
	const char *addr;           /* "host:port", borrowed for the open */
	const struct node_tls *tls; /* NULL or mode off: plaintext; borrowed */
	int workers;                /* 1..NODE_HTTP_WORKERS_MAX */
	size_t queue_max;           /* requests waiting for a worker */
	size_t conns_max;           /* open connections; more are closed */
	size_t body_bytes_max;      /* larger Content-Length: 413 */
	/* connections without a complete request yet (in their TLS
	 * handshake or silent) from one source address (IPv6: one /64); a
	 * new one shuts down the oldest. 0: NODE_HTTP_PENDING_PER_SOURCE */
	size_t pending_per_source;
	/* 1: a connection stays pending (above) until the handler calls
	 * node_http_known on one of its requests (an authenticated one),
	 * not merely until its first complete request, so that connections
	 * answered 401 keep counting against their source's cap */
	int pending_until_known;
	/* how long a worker that answered waits on the connection for the
	 * next request (http.c conn_linger); 0: NODE_HTTP_LINGER_US, at
	 * most 1 s (tests) */
	unsigned linger_us;
	/* tests only (NULL in the node): called with linger_hook_arg
	 * (borrowed) by a worker that took one of the waits (conn_linger),
	 * right before it waits, with no lock held, so that a test can see
	 * each wait start and line up what it then finds. It may block; a
	 * stop waits for it. A field here, not a *_TESTING variable, since
	 * the server is tested alone, without a node */
	void (*linger_hook)(void *arg);
	void *linger_hook_arg;
};

/* What the handler's callbacks return. */
enum node_http_handled {
	NODE_HTTP_ANSWERED = 0,  /* x was answered (one node_http_reply*) */
	NODE_HTTP_HANDED_ON = 1, /* node_http_async(x) was called: another
	                          * thread answers; x is not touched again */
	NODE_HTTP_TO_WORKER = 2, /* (io only) run ops.work on a worker; 503
	                          * when the queue is full */
	NODE_HTTP_TO_IO = 3      /* (io on a worker only) run ops.io again on
	                          * the I/O thread; x left as it came */
};

/*
 * The handler; arg is passed back to every callback. io runs for each
 * complete request read by the I/O thread, and by a worker that waited on
 * the connection after answering (node_http_on_io_thread tells them
 * apart). It must not block (its answers are sent without waiting: what
 * the socket does not take is sent by a worker). work runs on a worker:
 * for requests io sent there, pipelined requests a worker reads on, and
 * node_http_async_rerun (a request a waiting worker reads while others
 * wait for a worker goes to the I/O thread, so through ops.io). A request left
 * unanswered gets 500. tick, stopping and stopped may be NULL.
 */
struct node_http_ops {
	void *arg;
	int (*io)(void *arg, struct node_http_ex *x);
	int (*work)(void *arg, struct node_http_ex *x);
	/* every NODE_HTTP_TICK_MS on the I/O thread */
	void (*tick)(void *arg);
	/* on the I/O thread after each batch of events; may be NULL */
	void (*flush)(void *arg);
	/* 1 when streamed answers should stop waiting for slow readers (as
	 * when the server itself stops) */
	int (*stopping)(void *arg);
	/* during node_http_close, after every thread ended, before the
	 * connections close */
	void (*stopped)(void *arg);
	/* per-request room for the handler (node_http_req_ctx): zeroed
	 * before each request */
	size_t ctx_bytes;
};

/*
 * Listens on cfg->addr and starts the threads: 0 with *out (close it
 * with node_http_close), or LORA_EIO / LORA_ENOMEM / LORA_EINTERNAL (a
 * thread did not start) with errmsg; *out is then NULL. ops is copied.
 */
int node_http_open(const struct node_http_cfg *cfg,
                   const struct node_http_ops *ops, struct node_http **out,
                   char *errmsg);
/*
 * Stops: the listener and the I/O thread stop at once; the workers finish
 * the requests they run and those queued (every request read and queued
 * is answered), then ops.stopped runs and the connections close. NULL
 * is a no-op.
 */
void node_http_close(struct node_http *hs);
/* 1 once node_http_close began. */
int node_http_closing(const struct node_http *hs);
/* The listener's port (after an open on port 0). */
int node_http_port(const struct node_http *hs);

/* What the server holds now (tests and diagnostics). */
struct node_http_stats {
	size_t conns;      /* open connections */
	size_t queued;     /* requests waiting for a worker */
	uint64_t lingered; /* requests a worker read while it waited on
	                    * their connection (conn_linger in http.c) */
	size_t lingering;  /* workers waiting so now */
	size_t to_io;      /* requests workers gave back to the I/O thread,
	                    * not yet taken */
};
void node_http_stats(struct node_http *hs, struct node_http_stats *s);

/* ---- one request -------------------------------------------------------
 * Pointers returned are borrowed from x and valid while its handler runs.
 */

/* 1 when called on the server's I/O thread, 0 on any other (a worker,
 * also one running ops.io for a request it read itself): what only the
 * I/O thread may do (node_proxy_start) is then sent there
 * (NODE_HTTP_TO_IO). */
int node_http_on_io_thread(const struct node_http_ex *x);

/* The handler's room for this request (ops.ctx_bytes, zeroed). */
void *node_http_req_ctx(const struct node_http_ex *x);
/* The method and the request target (path and query string). */
const char *node_http_method(const struct node_http_ex *x);
const char *node_http_uri(const struct node_http_ex *x);
/* The request body (not NUL-terminated). */
void node_http_body(const struct node_http_ex *x, const char **data,
                    size_t *len);
/* The request's Authorization / X-Lora-Identity value, or NULL. */
const char *node_http_authz(const struct node_http_ex *x);
const char *node_http_ident(const struct node_http_ex *x);
/* Room the connection keeps for the authentication layer from one
 * request to the next (http_auth.c: the credentials it last accepted),
 * zeroed when the connection is made, wiped when it closes. Borrowed:
 * valid while x's request is handled, by the one thread that handles it
 * (a connection has one request at a time). */
#define NODE_HTTP_MEMO_BYTES 256
void *node_http_conn_memo(struct node_http_ex *x);
/* X-Lora-Forwarded hops (0: none), at most NODE_FORWARD_HOPS_MAX. */
#define NODE_FORWARD_HOPS_MAX 2
int node_http_forwarded(const struct node_http_ex *x);
/* X-Lora-Time-Ms (0: none): lowers the time limit of the statements the
 * request runs (/query and the like, /tx); a follower passing a request
 * on sends its own limit or the lower one the request came with, and a
 * batch's children take the batch's (node/proxy.c). */
uint64_t node_http_time_ms(const struct node_http_ex *x);
/* x's connection showed who sends it (pending_until_known: it no longer
 * counts against its source's pending_per_source; any thread). */
void node_http_known(struct node_http_ex *x);
/* 1 once x was answered (or its answer started). */
int node_http_replied(const struct node_http_ex *x);
/* Header lines (each ending in CRLF; static, borrowed) added to this
 * request's answer. */
void node_http_extra_head(struct node_http_ex *x, const char *lines);

/* Leaves p with the request for the worker that runs it (free_fn(p) if
 * nobody takes it); node_http_unstash returns it (or NULL) and hands it
 * over to the caller. */
void node_http_stash(struct node_http_ex *x, void *p, void (*free_fn)(void *));
void *node_http_unstash(struct node_http_ex *x);

/* ---- answers ---------------------------------------------------------- */

/* bookmark and location may be NULL or "". */
void node_http_reply(struct node_http_ex *x, int status, const char *ctype,
                     const char *body, size_t len, const char *bookmark,
                     const char *location);
/*
 * A streamed answer (workers only, never with node_http_async): the head
 * with Transfer-Encoding: chunked and the first chunk leave in
 * node_http_stream_start, each node_http_stream_write is one more chunk,
 * node_http_stream_end sends its data and the last chunk. An HTTP/1.0
 * client gets the bytes unframed and the connection closes after them.
 * Each call returns once its bytes are in the socket: while the client
 * does not read, the worker waits, at most NODE_HTTP_SEND_MS without
 * progress and never past deadline_ms, and not at all once the server
 * stops (or ops.stopping says so), so a slow reader holds one chunk of
 * ours plus the kernel's socket buffer. 0, or LORA_ECLOSED (the client
 * reset or closed), LORA_ETIMEOUT or LORA_EUNAVAILABLE (stopping): the
 * connection is then closed after the handler returns and further calls
 * return LORA_ECLOSED. data is borrowed for the call.
 */
int node_http_stream_start(struct node_http_ex *x, int status,
                           const char *ctype, const char *bookmark,
                           uint64_t deadline_ms, const char *data, size_t len);
int node_http_stream_write(struct node_http_ex *x, const char *data,
                           size_t len);
int node_http_stream_end(struct node_http_ex *x, const char *data, size_t len);
/* Cuts a started answer: the connection closes when the handler returns
 * (a chunked answer without its last chunk tells the client so). */
void node_http_abort(struct node_http_ex *x);
/* 1 when the client certainly left (an earlier send failed, or the
 * connection was reset or closed both ways); one poll(2), no waiting. A
 * half-closed client (FIN after its request) still counts as present. */
int node_http_client_gone(struct node_http_ex *x);
/* the same as the engine's client-gone callback (qry_limits.gone), x
 * the exchange */
int node_http_gone(void *x);

/* Consumes j. */
void node_http_reply_json(struct node_http_ex *x, int status, json_t *j,
                          const char *bookmark, const char *location);
json_t *node_http_error_json(int code, const char *msg, uint32_t line,
                             uint32_t column);
/* {"error":{...}} with the status of lora_err_http_status(code). */
void node_http_reply_error(struct node_http_ex *x, int code, const char *msg);

/* ---- answering from another thread ----------------------------------- */

/* Before handing x to another thread: its answer will be sent from there
 * without blocking; that thread calls node_http_async_done(x) after the
 * node_http_reply* call, and must not touch x afterwards. */
void node_http_async(struct node_http_ex *x);
void node_http_async_done(struct node_http_ex *x);
/* Instead of answering: x runs again in ops.work on a worker, which gets
 * stash from node_http_unstash (free_fn(stash) if nobody takes it). The
 * caller must not touch x afterwards. */
void node_http_async_rerun(struct node_http_ex *x, void *stash,
                           void (*free_fn)(void *));

/* A socket of another part watched by the I/O thread: once added, fn(w)
 * runs on that thread whenever fd is readable or closed (level-triggered,
 * no arming). The watcher owns w and fd; closing fd ends the watch, but an
 * event fetched in the same epoll batch may still call fn(w): w must stay
 * valid until the I/O thread's next ops.tick. */
struct node_http_watch {
	int kind; /* first: tells watches from connections */
	int fd;
	struct node_http *hs;
	void (*fn)(struct node_http_watch *w);
};
void node_http_watch_init(struct node_http_watch *w, struct node_http_ex *x,
                          int fd, void (*fn)(struct node_http_watch *));
int node_http_watch_add(struct node_http_watch *w);

/* ---- requests carried inside another (a batch of writes)
 *
 * A route may run several requests that came in one request's body (the
 * leader's side of a follower's batch of passed-on writes, http_api.c)
 * as children: each is a request of its own to the routes (its body,
 * credentials, hop count), whose answer is kept instead of sent;
 * node_http_async_done on a child calls `done` (on the answering
 * thread); node_http_async_rerun must not be used on one. Free each with
 * node_http_child_free once its answer was read. */
struct node_http_child_req {
	const char *uri;   /* the route's path */
	const char *authz; /* Authorization value, or NULL */
	const char *ident; /* X-Lora-Identity value, or NULL */
	const char *body;
	size_t authz_len, ident_len, body_len;
	int forwarded; /* X-Lora-Forwarded */
};
/* NULL when out of memory. */
struct node_http_ex *
node_http_child_new(struct node_http_ex *parent,
                    const struct node_http_child_req *r,
                    void (*done)(struct node_http_ex *, void *), void *arg);
/* The kept answer: its status (0: not answered, or left untaken) with
 * body and bookmark ("" if none), valid until the child is freed. */
int node_http_child_answer(const struct node_http_ex *x, const char **body,
                           size_t *len, const char **bookmark);
/* Answers the child "not taken": nothing of it ran, the batch's sender
 * sends it again on its own. */
void node_http_child_untaken(struct node_http_ex *x);
int node_http_is_child(const struct node_http_ex *x);
void node_http_child_free(struct node_http_ex *x);

#endif
