/*
 * tls.h - TLS settings of one listener and the nng TLS configurations
 * built from them (docs/security.md "TLS").
 *
 * Every listener (HTTP, native, Bolt, peer) has its own node_tls: a mode,
 * a certificate chain, its private key and the CA that client (or peer)
 * certificates must chain to. The settings are file paths; the files are
 * read when a listener or dialer is made, so a restart picks up rotated
 * certificates.
 *
 * The native port uses nng's tls+tcp transport and the peer port TLS of
 * its own over nng's tcp streams; neither looks at a connection's first
 * byte: there `optional` is refused by
 * node_tls_validate (a port speaks TLS or it does not). HTTP and Bolt
 * sniff the first byte (0x16, a TLS handshake record) for `optional`.
 *
 * Peers use mutual TLS: both ends present a certificate chaining to the
 * peer CA. A node's certificate names it as DNS "lora-node-<id>" (CN and
 * subjectAltName; deploy/gen-certs.sh), and a dialer checks that name
 * against the id it dials (NODE_TLS_PEER_NAME_FMT), and a listener takes
 * frames only from the node the dialer's certificate names
 * (node_tls_mem_peer_id, transport.c): a node holding another node's
 * certificate can take that node's place neither way. The peer transport
 * does its TLS itself on memory buffers (tls_peer.c); nng's tls+tcp
 * serves the native port.
 */
#ifndef LORA_NODE_TLS_H
#define LORA_NODE_TLS_H

#include <stdint.h>
#include <sys/types.h>

#include "lora.h"

#define NODE_TLS_PATH_BYTES_MAX 1024
/* the DNS name in a node's certificate, from its id */
#define NODE_TLS_PEER_NAME_FMT "lora-node-%llu"

enum node_tls_mode {
	NODE_TLS_OFF = 0,  /* plaintext only */
	NODE_TLS_OPTIONAL, /* both, told apart by the first byte (HTTP, Bolt) */
	NODE_TLS_REQUIRED, /* TLS only: plaintext connections are closed */
};

/* One listener's TLS settings (owned arrays: the struct copies freely). */
struct node_tls {
	int mode;                           /* enum node_tls_mode */
	char cert[NODE_TLS_PATH_BYTES_MAX]; /* PEM chain, ours first */
	char key[NODE_TLS_PATH_BYTES_MAX];  /* PEM private key, unencrypted */
	char ca[NODE_TLS_PATH_BYTES_MAX];   /* PEM CA (peers: the cluster CA) */
};

/* "off" / "optional" / "required" into *mode, else LORA_ECONFIG. */
int node_tls_parse_mode(const char *v, int *mode, const char *key,
                        char *errmsg);
const char *node_tls_mode_name(int mode);

/* Checks that a listener with TLS has a certificate and key (and, when
 * need_ca, a CA), that `optional` is used only where allow_optional, and
 * that the files can be read. what names the listener in errmsg. */
int node_tls_validate(const struct node_tls *t, const char *what,
                      int allow_optional, int need_ca, char *errmsg);

struct nng_tls_config;

/*
 * An nng TLS configuration for a listener (server) or a dialer (client)
 * from t: our certificate and key when t has them, t->ca as trust anchor.
 * A server with verify_peer requires a client certificate chaining to
 * t->ca (mutual TLS); a client always verifies the server against t->ca
 * and server_name (NULL: no name check, only the chain). On success *out
 * is the caller's: nng_tls_config_free() it (a listener or dialer given
 * it holds its own reference).
 */
int node_tls_nng_config(const struct node_tls *t, int server, int verify_peer,
                        const char *server_name, struct nng_tls_config **out,
                        char *errmsg);

/* nng's TLS engine on mbedtls with our key exchange order
 * (tls_engine.c); registered once (idempotent), by
 * node_tls_nng_config before its first configuration. 0 or LORA_EIO. */
int node_tls_engine_register(void);
/* 1 when nng's TLS engine is ours (nng_tls_engine_name), else 0. */
int node_tls_engine_ours(void);
/* The id in the name "lora-node-<id>" (len bytes at p; canonical decimal,
 * no leading zero), else 0. */
uint64_t node_tls_name_id(const unsigned char *p, size_t len);
/* The id the first certificate in PEM text names as above, else 0 (also
 * when it does not parse). */
uint64_t node_tls_cert_pem_id(const char *pem);

/*
 * The key exchange groups every TLS configuration of ours offers, in this
 * order: X25519, P-256, then the other curves mbedtls has (P-384, P-521,
 * ...). mbedtls 2.28's own order starts with P-521, whose ECDHE made a
 * handshake cost 10.4 ms of CPU (both ends) against 6.1 ms with X25519
 * (docs/benchmarks.md "TLS and authentication"). Every curve stays
 * accepted (also for certificate keys); only the preference changes.
 */
struct mbedtls_ssl_config;
void node_tls_conf_curves(struct mbedtls_ssl_config *conf);

/* What a node trusts when it dials another member's listener whose
 * settings are listener (its own of the same kind: HTTP, native, Bolt):
 * those settings, its certificate and key included, with the peer CA
 * peer_ca when listener names no CA of its own. */
struct node_tls node_tls_member_trust(const struct node_tls *listener,
                                      const char *peer_ca);

/* "tls+tcp://addr" when t's mode is not off, else "tcp://addr". */
void node_tls_url(const struct node_tls *t, const char *addr, char *out,
                  size_t bytes);

/*
 * TLS on our own sockets (HTTP server and proxy, Bolt), with mbedtls:
 * a node_tls_ctx holds the configuration (certificates, key, RNG) and is
 * shared by every connection made from it; a node_tls_conn is one
 * connection over a socket it borrows (the caller closes the fd).
 *
 * node_tls_recv / node_tls_send behave like recv / send on a non-blocking
 * socket: > 0 bytes, 0 at the end of the stream (recv), -1 with errno
 * EAGAIN (wait for node_tls_wants: POLLIN or POLLOUT) or ECONNRESET /
 * EPROTO. A send that returns n has handed n bytes to TLS: they may still
 * sit in the connection's output until node_tls_flush returns 0 (a caller
 * that stops writing must flush). A connection is used by one thread at a
 * time; contexts are thread-safe.
 */
struct node_tls_ctx;
struct node_tls_conn;

/* A server context from t (our certificate and key; client certificates
 * are not asked for), or, with server 0, a client context trusting t->ca
 * and presenting our certificate when t has one. *out:
 * node_tls_ctx_free(). */
int node_tls_ctx_new(const struct node_tls *t, int server,
                     struct node_tls_ctx **out, char *errmsg);
void node_tls_ctx_free(struct node_tls_ctx *x);

/* A connection over fd (borrowed); server_name (clients only; NULL: no
 * name check) is what the server's certificate must name. *out:
 * node_tls_conn_free(), which does not close fd. LORA_ENOMEM. */
int node_tls_conn_new(struct node_tls_ctx *x, int fd, const char *server_name,
                      struct node_tls_conn **out);
void node_tls_conn_free(struct node_tls_conn *c);

/* One step of the handshake: 0 when done, -1 with errno EAGAIN (wait for
 * node_tls_wants) or EPROTO (refused: node_tls_error tells why). */
int node_tls_handshake(struct node_tls_conn *c);
ssize_t node_tls_recv(struct node_tls_conn *c, void *buf, size_t len);
ssize_t node_tls_send(struct node_tls_conn *c, const void *buf, size_t len);
/* Like node_tls_send for the bytes of iov[0..cnt), gathered into records
 * of up to NODE_TLS_GATHER_BYTES (a head and a small body leave as one
 * record and one send, not two). */
#define NODE_TLS_GATHER_BYTES 16384
struct iovec;
ssize_t node_tls_sendv(struct node_tls_conn *c, const struct iovec *iov,
                       int cnt);
/* Sends what TLS still holds: 0 when nothing is left, else -1 / errno. */
int node_tls_flush(struct node_tls_conn *c);
/* 1 when TLS holds received bytes the socket no longer shows (a reader
 * must call node_tls_recv again before it waits for the socket). */
int node_tls_pending(const struct node_tls_conn *c);
/* POLLIN or POLLOUT: what the last EAGAIN waits for. */
int node_tls_wants(const struct node_tls_conn *c);
/* Why the last call failed (mbedtls's text), into out. */
void node_tls_error(const struct node_tls_conn *c, char *out, size_t bytes);
/* Sends a close_notify (best effort, never waits). */
void node_tls_close_notify(struct node_tls_conn *c);

/* A context for the peer port (tls_peer.c): like node_tls_ctx_new, and a
 * server also requires a client certificate chaining to t->ca (mutual
 * TLS; t must have a CA). *out: node_tls_ctx_free(). */
int node_tls_ctx_new_peer(const struct node_tls *t, int server,
                          struct node_tls_ctx **out, char *errmsg);
/* x's mbedtls configuration (borrowed while x lives). */
struct mbedtls_ssl_config *node_tls_ctx_conf(struct node_tls_ctx *x);
struct mbedtls_x509_crt;
/* The node id a certificate names: its one DNS subjectAltName
 * "lora-node-<id>" (node_tls_name_id), else 0 (none, or several). */
uint64_t node_tls_crt_id(const struct mbedtls_x509_crt *crt);

/*
 * TLS on memory buffers (tls_peer.c), for the peer transport, which moves
 * the bytes with nng streams itself: ciphertext received goes in through
 * node_tls_mem_in_room / node_tls_mem_in_put; every record made (handshake
 * flights, data, alerts) is handed to the sink at once. No call does I/O
 * or blocks. A session is used by one thread at a time (the caller's
 * lock); its context must outlive it.
 */
struct node_tls_mem;
/* Appends n bytes of ciphertext to the caller's send buffer: 0, or an
 * error (LORA_ENOMEM) that fails the call that made the record. */
typedef int (*node_tls_sink_fn)(void *arg, const uint8_t *p, size_t n);
/* Unread ciphertext a session holds at most (a full record is ~16.7 KiB) */
#define NODE_TLS_MEM_IN_BYTES (32u << 10)
/* A session from x (client when x is a client context: server_name, if
 * not NULL, is what the server's certificate must name). *out:
 * node_tls_mem_free(). LORA_ENOMEM. */
int node_tls_mem_new(struct node_tls_ctx *x, const char *server_name,
                     node_tls_sink_fn sink, void *sink_arg,
                     struct node_tls_mem **out);
void node_tls_mem_free(struct node_tls_mem *m);
/* Where received ciphertext goes: *len bytes of room (0 when the session
 * holds NODE_TLS_MEM_IN_BYTES unread: read or step the handshake first).
 * Borrowed until the next call on m. */
unsigned char *node_tls_mem_in_room(struct node_tls_mem *m, size_t *len);
/* n bytes were written at node_tls_mem_in_room (n <= its *len). */
void node_tls_mem_in_put(struct node_tls_mem *m, size_t n);
/* Steps the handshake on the bytes put in: 0 when done (also every call
 * after), LORA_ETIMEOUT while more bytes are needed, else refused:
 * LORA_EUNAUTHORIZED (a certificate that does not verify), LORA_ECLOSED,
 * LORA_ENOMEM or LORA_ECORRUPT (node_tls_mem_error says why). */
int node_tls_mem_handshake(struct node_tls_mem *m);
int node_tls_mem_done(const struct node_tls_mem *m);
/* Decrypts up to len bytes of the records put in: 0 with *got (0: more
 * ciphertext needed), or LORA_ECLOSED / LORA_ECORRUPT / LORA_ENOMEM. */
int node_tls_mem_read(struct node_tls_mem *m, void *buf, size_t len,
                      size_t *got);
/* Encrypts all len bytes into records for the sink (one per 16 KiB): 0,
 * or an error (the session is then unusable). Handshake done first. */
int node_tls_mem_write(struct node_tls_mem *m, const void *p, size_t len);
/* The node id the verified peer certificate names (node_tls_crt_id), or
 * 0 (handshake not done, no certificate, none named). */
uint64_t node_tls_mem_peer_id(const struct node_tls_mem *m);
/* Why the last call failed (mbedtls's text). */
void node_tls_mem_error(const struct node_tls_mem *m, char *out, size_t bytes);
/* A close_notify alert to the sink (best effort). */
void node_tls_mem_close_notify(struct node_tls_mem *m);

/* The first byte of a TLS connection (a handshake record), for optional
 * listeners that tell TLS from plaintext by it. */
#define NODE_TLS_RECORD_HANDSHAKE 0x16

#endif /* LORA_NODE_TLS_H */
