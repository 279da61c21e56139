/*
 * bolt_int.h - private to node/bolt*.c: one Bolt connection and the calls
 * between the server (bolt.c: sockets, handshake, chunking, threads) and
 * the session (bolt_session.c: messages and their state machine).
 *
 * A connection is served by its own thread from the handshake to the
 * close; everything in struct bolt_conn belongs to that thread, except
 * `fd` (the server shuts it down to stop the thread) and the server's
 * cursor epoch, read atomically.
 */
#ifndef LORA_NODE_BOLT_INT_H
#define LORA_NODE_BOLT_INT_H

#include <stdint.h>

#include "auth.h"
#include "node_int.h"
#include "packstream.h"

/* ---- limits ---------------------------------------------------------------
 */
#define BOLT_PORT_DEFAULT            7687
#define BOLT_MESSAGE_BYTES_MAX       (16u << 20) /* one request, unchunked */
#define BOLT_CHUNKS_MAX              65536       /* chunks in one request */
#define BOLT_CONNECTIONS_DEFAULT     256         /* bolt_connections_max */
#define BOLT_RESULTS_MAX             16          /* open results in one tx */
#define BOLT_FLUSH_BYTES             (64u << 10) /* answers buffered before a send */
#define BOLT_HANDSHAKE_MS            10000       /* magic and versions */
#define BOLT_LOGIN_MS                10000       /* HELLO / LOGON after that */
#define BOLT_LOGIN_MESSAGE_BYTES_MAX (64u << 10) /* a request before it */
#define BOLT_IDLE_MS                 600000 /* no request, nothing open: closed */
#define BOLT_SEND_TIMEOUT_MS         60000 /* a client that stops reading */
#define BOLT_POLL_MS                 100 /* checks for idle or dropped results */
#define BOLT_ROUTE_TTL_S             10  /* routing table lifetime */
#define BOLT_MEMBER_STALE_MS         3000 /* no gossip for this long: not routed */
/* a follower's write transaction relayed to the leader (bolt_relay.c) */
#define BOLT_RELAY_CONNECT_MS 3000 /* connect, TLS, handshake, login */
#define BOLT_RELAY_ANSWER_MS                                                   \
	(NODE_TX_LIFE_MS_MAX + 5000) /* each answer message */
#define BOLT_AUTH_SCHEME_BYTES_MAX 16
#define BOLT_RELAY_AGENT           "LoraDB-C follower relay"

/* Versions (major << 8 | minor). */
#define BOLT_V(major, minor) (((major) << 8) | (minor))

/* Message tags. */
enum {
	BOLT_HELLO = 0x01,
	BOLT_GOODBYE = 0x02,
	BOLT_RESET = 0x0F,
	BOLT_RUN = 0x10,
	BOLT_BEGIN = 0x11,
	BOLT_COMMIT = 0x12,
	BOLT_ROLLBACK = 0x13,
	BOLT_DISCARD = 0x2F,
	BOLT_PULL = 0x3F,
	BOLT_TELEMETRY = 0x54,
	BOLT_ROUTE = 0x66,
	BOLT_LOGON = 0x6A,
	BOLT_LOGOFF = 0x6B,
	BOLT_SUCCESS = 0x70,
	BOLT_RECORD = 0x71,
	BOLT_IGNORED = 0x7E,
	BOLT_FAILURE = 0x7F,
};

enum bolt_state {
	BOLT_S_CONNECTED = 0, /* waiting for HELLO */
	BOLT_S_AUTH,          /* 5.1+: waiting for LOGON */
	BOLT_S_READY,
	BOLT_S_STREAMING, /* an auto-commit result is open */
	BOLT_S_TX,        /* in an explicit transaction (results may be open) */
	BOLT_S_FAILED,    /* until RESET, everything but GOODBYE is IGNORED */
	BOLT_S_DEFUNCT,   /* closing */
};

/* An open result: a live read cursor (auto-commit), a cursor on the
 * transaction's view, or the rows of a write (all made before RUN
 * answered). */
enum { BOLT_R_NONE = 0, BOLT_R_NODE, BOLT_R_TX, BOLT_R_ROWS };
struct bolt_result {
	int kind;
	int64_t qid;
	struct node_cursor *nc; /* BOLT_R_NODE */
	struct qry_cursor *qc;  /* BOLT_R_TX */
	Lora__Response *resp;   /* BOLT_R_ROWS */
	size_t next_row;        /* BOLT_R_ROWS */
	size_t ncols;
	int write;         /* type "w" */
	uint64_t bookmark; /* auto-commit: the state it reflects */
	uint64_t t0_ms;
};

struct node_bolt;
struct bolt_relay;

struct bolt_conn {
	struct lnode *n;
	struct node_bolt *server;
	int fd;
	struct node_tls_conn *tls; /* NULL: plaintext */
	uint64_t id;
	int version; /* BOLT_V */
	struct ps_enc enc;
	enum bolt_state state;
	int routing; /* HELLO had a routing context */
	char user[NODE_USER_BYTES_MAX + 1];
	int role;            /* enum node_role of user (auth.h) */
	struct lora_buf out; /* chunked answers not yet sent */
	struct lora_buf msg; /* scratch: one answer before chunking */
	/* open results: one in auto-commit, up to BOLT_RESULTS_MAX in a tx */
	struct bolt_result results[BOLT_RESULTS_MAX];
	int n_results;
	int64_t next_qid;
	uint64_t results_epoch; /* server epoch when the first one opened */
	uint64_t last_use_ms;
	/* explicit transaction: a read one holds a view (and the store), a
	 * write one is the writer's (txn.c) */
	struct sto_view *tx_view;
	struct node_tx *wtx;
	uint64_t tx_life_end_ms; /* a read one's: begin + node_tx_life_ms() */
	int tx_failed_closed;    /* results or tx closed under the client
	                          * (idle, snapshot): say so at next use */
	int tx_expired;          /* ... and it was a read tx past its life */
	/* a follower's write transaction runs on the leader through relay
	 * (bolt_relay.c) while relay_tx; relay stays for the next one */
	struct bolt_relay *relay;
	int relay_tx;
	int from_relay; /* this connection is another node's relay (HELLO's
	                 * user_agent): never relayed on, so no loop */
	/* what the client logged in with, for the relay's login (wiped at
	 * LOGOFF and at the end) */
	char auth_scheme[BOLT_AUTH_SCHEME_BYTES_MAX];
	char auth_credentials[NODE_PASSWORD_BYTES_MAX + 1];
	/* the request being handled, unchunked (borrowed for the call) */
	const uint8_t *req;
	size_t req_len;
};

/* bolt.c: appends one message (structure tag, fields already encoded in
 * c->msg after the header ps_put_struct_header wrote) to c->out as
 * chunks, and sends when BOLT_FLUSH_BYTES are waiting. 0 or an error
 * (the connection is then closed). */
int bolt_send_msg(struct bolt_conn *c);
int bolt_flush(struct bolt_conn *c);
/* The server's epoch of forced result closes (snapshot installs). */
uint64_t bolt_server_epoch(const struct bolt_conn *c);

/* The version to speak for the 16 bytes of proposals after the magic;
 * 0: none in common. */
int bolt_handshake_pick(const uint8_t *v);

/* bolt_session.c */
/* Handles one message. 0: go on; else close the connection (after
 * sending what is buffered): LORA_ECLOSED when a send failed (the client
 * left), another non-zero value otherwise. */
int bolt_session_handle(struct bolt_conn *c, const uint8_t *p, size_t len);
/* Frees the results and the transaction (connection end, idle results,
 * a snapshot install); `why` is told to the client at its next use of
 * them (NULL: nothing to tell). */
void bolt_session_drop(struct bolt_conn *c, const char *why);
/* Drops a read transaction begun node_tx_life_ms() or longer before
 * now_ms, as HTTP's /tx ends one (docs/transactions.md): its next request
 * fails with LORA_ETIMEOUT (Neo.ClientError.Transaction.TransactionTimedOut),
 * so a client that keeps it busy cannot hold its view forever. */
void bolt_session_expire(struct bolt_conn *c, uint64_t now_ms);
/* The client left (closed the connection, stopped taking answers, or said
 * GOODBYE): each statement it left open is counted in
 * lora_statements_client_gone_total{api="bolt"}, as the other protocols
 * count theirs, then dropped as by bolt_session_drop(c, NULL). */
void bolt_session_client_left(struct bolt_conn *c);
/* The Neo4j status code for a LoraDB error code. Static. */
const char *bolt_neo4j_code(int lora_err);
/* A FAILURE with a Neo4j code (bolt_send_failure) or the code of a
 * LoraDB error (bolt_fail; msg NULL: its strerror); the session is then
 * FAILED. 0 or the connection's error. */
int bolt_send_failure(struct bolt_conn *c, const char *code, const char *msg);
int bolt_fail(struct bolt_conn *c, int lora_err, const char *msg);

/* bolt_relay.c: on a follower, a write transaction on the leader.
 * bolt_relay_begin relays the BEGIN in c->req (opening or reusing
 * c->relay) and sets relay_tx when the leader began it; while relay_tx,
 * bolt_relay_request relays every request but RESET and GOODBYE with its
 * answers, and ends the transaction at COMMIT, ROLLBACK or a FAILURE.
 * Both answer the client (a FAILURE when the leader cannot be reached or
 * is lost: retryable unless COMMIT went out) and return 0 or the
 * client's connection error. bolt_relay_end rolls the relayed
 * transaction back (RESET on the leader; the connection goes when that
 * fails); bolt_relay_free closes the relay; bolt_relay_logout closes it
 * and wipes the credentials. */
int bolt_relay_begin(struct bolt_conn *c);
int bolt_relay_request(struct bolt_conn *c, uint8_t tag);
void bolt_relay_end(struct bolt_conn *c);
void bolt_relay_free(struct bolt_conn *c);
void bolt_relay_logout(struct bolt_conn *c);

#endif
