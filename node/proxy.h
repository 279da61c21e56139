/*
 * proxy.h - the HTTP proxy (proxy.c) on its own: a follower passes an HTTP
 * write to the leader's HTTP API over a kept-alive connection and relays
 * the leader's answer unchanged, knowing nothing of the node. It is given
 * a way to learn the leader and its HTTP address, a leader-change wait,
 * when the leader was last heard from, the TLS client context and its
 * limits (struct node_proxy_ops / node_proxy_cfg); the node's side is
 * node/proxy_node.c, and tests/node/test_proxy.c drives it against a
 * leader stub of its own on the HTTP server of http.h.
 *
 * The rules a write follows (kept from the node's first proxy):
 *  - until the request is written whole, nothing was executed: it is
 *    tried again (following leader changes, every retry_ms) until send_ms,
 *    then answered LORA_UNAVAILABLE;
 *  - once written, a write with NODE_PROXY_RESEND (a requestId: dedupe
 *    applies it once) is written again to a new leader as soon as one is
 *    known before the answer came; one without answers LORA_UNKNOWN_OUTCOME
 *    when its connection breaks, when its leader was silent for silent_ms
 *    (node_proxy_verdict), or at the request's deadline;
 *  - a 503 LORA_UNAVAILABLE answer after an attempt in doubt is never
 *    relayed (it speaks for its own attempt only), on a worker or on the
 *    I/O thread: the write is sent again after retry_ms (a worker: or at
 *    a leader change), and the deadline answers LORA_UNKNOWN_OUTCOME.
 *
 * A request waiting for its answer on a worker sleeps in poll(2) on its
 * connection and on an eventfd of its own that node_proxy_kick writes: it
 * wakes for the answer, a leader change, the stop, or the moment its
 * leader would have been silent for silent_ms; never on a period
 * (node_proxy_stats.wakeups counts the wake-ups).
 */
#ifndef LORA_NODE_PROXY_H
#define LORA_NODE_PROXY_H

#include <stddef.h>
#include <stdint.h>

struct node_http_ex;
struct node_tls_ctx;

/* Defaults of struct node_proxy_cfg's limits (0 takes them). */
#define NODE_PROXY_SEND_MS 3000 /* until a leader takes the request */
/* an unanswered SYN is retried by the kernel only after 1 s: a fresh
 * attempt (to whoever leads then) comes sooner */
#define NODE_PROXY_CONNECT_MS     200
#define NODE_PROXY_HANDSHAKE_MS   2000  /* a TLS handshake with the leader */
#define NODE_PROXY_RETRY_MS       50    /* no leader took it, none new */
#define NODE_PROXY_IDLE_MS        30000 /* pooled connections older: closed */
#define NODE_PROXY_POOL_MAX       256   /* idle connections kept */
#define NODE_PROXY_BATCH_INFLIGHT 4     /* requests in flight per leader */
/* an answer's body (the node passes NODE_PEER_MSG_BYTES_MAX, the same) */
#define NODE_PROXY_REPLY_BYTES_MAX (72u << 20)

/* ops.ident's room: the X-Lora-Identity line (NODE_HTTP_IDENT_BYTES) */
#define NODE_PROXY_IDENT_BYTES 3072

/* node_proxy_write's flags and results. */
#define NODE_PROXY_RESEND           1 /* carries a requestId: resent */
#define NODE_PROXY_HOLD_UNAVAILABLE 2 /* a 503 LORA_UNAVAILABLE: held back */
/* node_proxy_start: may wait for a batch (a write whose answer comes as
 * soon as any other's: not IN TRANSACTIONS) */
#define NODE_PROXY_BATCH 4
#define NODE_PROXY_SELF  (-1) /* this node leads (as FORWARD_SELF) */
#define NODE_PROXY_HELD  (-2) /* the 503 was held: unanswered */

/* What a forwarder waiting for leader `to`'s answer does now
 * (node_proxy_verdict; forward.c's node_forward_check too). */
enum { NODE_WAIT_ON = 0, NODE_WAIT_RESEND, NODE_WAIT_GIVE_UP };

/* Every callback gets arg. All but ident and answered are required; they
 * are called from workers, the HTTP I/O thread and dial threads. */
struct node_proxy_ops {
	void *arg;
	/* The leader known now (0: none) and its HTTP address into addr
	 * (size bytes; "" when unknown). */
	uint64_t (*leader)(void *arg, char *addr, size_t size);
	/* The count of leader changes so far, and a wait until it differs
	 * from seen or deadline_ms (lora_now_ms time): 0 when it changed,
	 * else an error code (timed out, stopping). */
	uint64_t (*leader_seq)(void *arg);
	int (*leader_wait)(void *arg, uint64_t seen, uint64_t deadline_ms);
	/* When this node last heard from `leader` as the leader, or since
	 * when it has not heard from it after that (node_leader_heard). */
	uint64_t (*heard)(void *arg, uint64_t leader, uint64_t since);
	/* 1 once the node stops: waits end, nothing new is sent. */
	int (*stopping)(void *arg);
	/* The X-Lora-Identity line (with its CRLF) for x into out, or "";
	 * NULL: none. */
	void (*ident)(void *arg, const struct node_http_ex *x, char *out,
	              size_t size);
	/* A write node_proxy_start took was answered (metrics); may be
	 * NULL. */
	void (*answered)(void *arg, const char *api, int ok,
	                 uint64_t elapsed_ns);
};

struct node_proxy_cfg {
	uint64_t self_id;   /* the leader id that means "this node leads" */
	uint32_t silent_ms; /* a leader silent this long lost the write */
	/* TLS to the leaders: tls on, every connection is TLS with tls_ctx
	 * (a client context: the leader's certificate must name
	 * lora-node-<id>); a NULL tls_ctx then fails every dial. tls_ctx is
	 * taken by node_proxy_new on success (freed by node_proxy_free). */
	int tls;
	struct node_tls_ctx *tls_ctx;
	uint32_t send_ms, connect_ms, handshake_ms, retry_ms, idle_ms;
	int pool_max;
	size_t reply_bytes_max;
	/* node_proxy_start's writes with NODE_PROXY_BATCH: at most
	 * batch_inflight requests of them in flight per leader, each one
	 * write or a batch of up to batch_max (NODE_BATCH_MAX at most; 1:
	 * every write alone, at once, as without the flag), sent to
	 * NODE_BATCH_PATH (batch.h) */
	int batch_max, batch_inflight;
	/* sent as X-Lora-Time-Ms with every request passed on (0: not sent),
	 * or the lower value the request came with: the node's statement
	 * time limit, so that the leader stops a statement (/query and /tx
	 * read it) before this node stops waiting for its answer */
	uint64_t time_ms;
};

struct node_proxy;

/* 0 with *out, or LORA_ENOMEM / LORA_EINTERNAL (*out NULL). Both structs
 * are copied. */
int node_proxy_new(const struct node_proxy_cfg *cfg,
                   const struct node_proxy_ops *ops, struct node_proxy **out);
/* Waits for the dials it started (each ends within its bounds), closes
 * the pooled connections and frees p; after node_proxy_drop and once no
 * thread calls p. NULL is a no-op. */
void node_proxy_free(struct node_proxy *p);

/*
 * On a worker: passes the write in body to the leader's HTTP API (POST
 * path, marked X-Lora-Forwarded: hops of x + 1) and relays the answer
 * into x, waiting until wait_ms after the request was written. flags:
 * NODE_PROXY_RESEND, NODE_PROXY_HOLD_UNAVAILABLE. Returns 0 (answered),
 * an error code (answered with it: LORA_EUNAVAILABLE when no leader took
 * it, LORA_EUNKNOWN_OUTCOME once sent and not answered), NODE_PROXY_SELF
 * when this node leads (x unanswered), or NODE_PROXY_HELD (x unanswered).
 * path and body are borrowed for the call.
 */
int node_proxy_write(struct node_proxy *p, struct node_http_ex *x,
                     const char *path, const char *body, size_t len, int flags,
                     uint64_t wait_ms);

/*
 * On the HTTP I/O thread only (ops.io may also run on a worker: there
 * node_http_on_io_thread is 0, and the caller returns NODE_HTTP_TO_IO
 * instead): passes x's body on to the leader without any
 * thread waiting for the answer (the I/O thread reads it:
 * node_http_watch). Without NODE_PROXY_BATCH in flags it is written at
 * once on an idle pooled connection; with it, queued for
 * node_proxy_flush, which sends it alone or in a batch (batch.h), or
 * hands it to a worker (node_http_async_rerun) when it cannot send it
 * from here. flags: NODE_PROXY_RESEND, NODE_PROXY_BATCH. 0 when started:
 * x was handed on (node_http_async) and will be answered, at the latest
 * wait_ms later; -1 when it cannot start that way (no idle connection;
 * with NODE_PROXY_BATCH, no leader known: x untouched, node_proxy_write
 * on a worker). path and api (a metrics label) must outlive x.
 */
int node_proxy_start(struct node_proxy *p, struct node_http_ex *x,
                     const char *path, const char *api, int flags,
                     uint64_t wait_ms);
/* The I/O thread, after each batch of events (and every tick): sends
 * the writes node_proxy_start queued, up to batch_inflight requests in
 * flight to the leader, several writes per request when more wait. */
void node_proxy_flush(struct node_proxy *p);
/* The I/O thread, every tick: passes started writes with a requestId on
 * to a new leader (resend), answers the others whose leader went silent,
 * and those out of time; closes idle connections past idle_ms. */
void node_proxy_tick(struct node_proxy *p);
/* After the I/O thread stopped: forgets the started writes (their
 * connections are closed by the HTTP server). */
void node_proxy_drop(struct node_proxy *p);

/* Wakes every request waiting on a worker to look again at the leader and
 * at ops.stopping: call on each leader change and when the node stops. */
void node_proxy_kick(struct node_proxy *p);

/* What the proxy did so far (tests and diagnostics). */
struct node_proxy_stats {
	uint64_t dials;         /* connections dialed */
	uint64_t reused;        /* requests sent on a pooled connection */
	uint64_t sent;          /* requests written whole */
	uint64_t wakeups;       /* returns from a waiting request's poll */
	uint64_t kicks;         /* node_proxy_kick calls */
	uint64_t batches;       /* batches sent (batch.h) */
	uint64_t batched;       /* writes in them */
	uint64_t batch_refused; /* batches a leader refused whole */
	/* writes to the current leader go alone: 0 no; 1 for a wait after a
	 * transient refusal; 2 after a lasting one, whenever that node leads,
	 * until another leader refuses a batch */
	int batching_off;
	int pooled; /* idle connections in the pool now */
};
void node_proxy_stats(struct node_proxy *p, struct node_proxy_stats *s);

/*
 * Pure: what a forwarder waiting for leader `to`'s answer does now, given
 * the leader known now (leader), whether the write may be sent again
 * (resend: it was not sent, or it carries a requestId), when `to` was
 * last heard from (heard_ms) and the time now: NODE_WAIT_RESEND when
 * resend and another leader is known, NODE_WAIT_GIVE_UP when not resend
 * and `to` was silent for silent_ms, else NODE_WAIT_ON.
 */
int node_proxy_verdict(uint64_t leader, uint64_t to, int resend,
                       uint64_t heard_ms, uint64_t now_ms, uint64_t silent_ms);

#endif
