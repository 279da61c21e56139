/*
 * config.h - lorad configuration: a `key = value` file, LORA_* environment
 * variables and command-line flags, in increasing order of precedence.
 *
 * All strings inside struct node_config are owned by it (fixed arrays), so
 * the struct can be copied freely.
 */
#ifndef LORA_NODE_CONFIG_H
#define LORA_NODE_CONFIG_H

#include <stdint.h>

#include "lora.h"
#include "tls.h"

/* statement_time_ms: its default is the engine's (QRY_TIME_MS_DEFAULT,
 * 60 s); a day at most */
#define NODE_STATEMENT_TIME_MS_MIN 100u
#define NODE_STATEMENT_TIME_MS_MAX 86400000u
#define NODE_PROGRESS_MS_MAX       86400000u /* a day */

#define NODE_ADDR_BYTES_MAX        128  /* host:port text */
#define NODE_PATH_BYTES_MAX        1024 /* data_dir */
#define NODE_PEERS_MAX             16   /* voters + learners known at start */
#define NODE_CONFIG_LINE_BYTES_MAX 4096
#define NODE_CONFIG_FILE_BYTES_MAX (1u << 20)

#define NODE_ADMIN_USER_BYTES_MAX     128
#define NODE_ADMIN_PASSWORD_BYTES_MAX 1024

struct node_peer {
	uint64_t id;
	char addr[NODE_ADDR_BYTES_MAX]; /* peer (Raft) address host:port */
};

enum node_log_level {
	NODE_LOG_DEBUG,
	NODE_LOG_INFO,
	NODE_LOG_WARN,
	NODE_LOG_ERROR
};

/* Raft timing bounds node_config_validate enforces: the core ticks every
 * heartbeat_ms / 2 and needs election_ticks >= 2 * heartbeat_ticks + 2 (a
 * vote lease that outlasts one lost heartbeat, a timeout spread of at
 * least 2 ticks), which is 3 heartbeats. */
#define NODE_HEARTBEAT_MS_MIN        2
#define NODE_ELECTION_HEARTBEATS_MIN 3

struct node_config {
	uint64_t id;
	char data_dir[NODE_PATH_BYTES_MAX];
	/* LOAD CSV reads below this directory only; "" (the default) means
	 * <data_dir>/import (node_config_import_dir) */
	char import_dir[NODE_PATH_BYTES_MAX];
	char http_addr[NODE_ADDR_BYTES_MAX];
	char client_addr[NODE_ADDR_BYTES_MAX];
	char peer_addr[NODE_ADDR_BYTES_MAX];
	struct node_peer peers[NODE_PEERS_MAX];
	int n_peers;
	int join;
	uint64_t checkpoint_entries;
	uint64_t log_keep_entries;
	/* a CALL { ... } IN TRANSACTIONS statement logs its progress on the
	 * leader when a chunk lands at least progress_ms after its last line,
	 * and a last line when it ran that long (0: never; at most
	 * NODE_PROGRESS_MS_MAX) */
	uint32_t progress_ms;
	uint32_t election_ms;  /* >= NODE_ELECTION_HEARTBEATS_MIN x heartbeat */
	uint32_t heartbeat_ms; /* >= NODE_HEARTBEAT_MS_MIN (a tick is half) */
	enum node_log_level log_level;
	/* memory of statements (0: no limit): all running statements
	 * together, and one statement (a request may ask for less) */
	uint64_t query_memory_bytes;
	uint64_t statement_memory_bytes;
	/* one statement's time limit (a CALL { ... } IN TRANSACTIONS load's
	 * whole run): NODE_STATEMENT_TIME_MS_MIN..MAX */
	uint32_t statement_time_ms;
	uint32_t cursor_idle_ms; /* a native cursor without a fetch is closed */
	/* the leader's writes carry the values they replace, for the change
	 * stream's "old" members (docs/changes.md); off by default */
	int cdc_old_values;
	/* a follower passes HTTP writes to the leader over the peer channel
	 * (peerfwd.h) instead of the leader's HTTP port; off by default: it
	 * costs more CPU per write than the HTTP proxy (docs/benchmarks.md,
	 * "TLS, third round") */
	int peer_forward;
	/* a follower's HTTP writes to the leader (proxy.h): at most
	 * proxy_batch_inflight requests in flight, each carrying up to
	 * proxy_batch_max writes (1: each write alone) */
	uint32_t proxy_batch_max, proxy_batch_inflight;
	/* POST /admin/checkpoint writes backups only below this directory,
	 * under a name the request gives; "" (the default) means
	 * <data_dir>/backups (node_config_backup_dir) */
	char backup_dir[NODE_PATH_BYTES_MAX];
	/* a snapshot received from the leader may stage at most this many
	 * bytes (NODE_SNAPSHOT_BYTES_MAX by default) */
	uint64_t snapshot_bytes_max;
	/* Bolt (bolt_config.c): "" means the client_addr host, port 7687;
	 * "off" no Bolt listener */
	char bolt_addr[NODE_ADDR_BYTES_MAX];
	int bolt_auth;                 /* NODE_BOLT_AUTH_* */
	uint32_t bolt_connections_max; /* 0: BOLT_CONNECTIONS_DEFAULT */
	/* authentication (docs/security.md): on by default */
	int auth;
	/* the first admin, written into the system keyspace once (the
	 * password from admin_password, LORA_ADMIN_PASSWORD or the file
	 * admin_password_file; never a built-in default) */
	char admin_user[NODE_ADMIN_USER_BYTES_MAX + 1];
	char admin_password[NODE_ADMIN_PASSWORD_BYTES_MAX + 1];
	uint32_t token_ttl_ms; /* bearer tokens from POST /auth/token */
	int metrics_auth;      /* GET /metrics needs a user (any role) */
	/* connections that have not shown who they are (docs/security.md,
	 * "Connection limits"): a native connection not authenticated
	 * within auth_timeout_ms is closed (auth on); at most
	 * pending_per_source such native connections, and HTTP connections
	 * before their first request, from one source address (IPv6: one
	 * /64); at most native_pending_max such native connections in all */
	uint32_t auth_timeout_ms;
	uint32_t pending_per_source;
	uint32_t native_pending_max;
	/* TLS per listener (tls.h, tls_config.c): <name>_tls, _tls_cert,
	 * _tls_key, _tls_ca; tls, tls_cert, tls_key, tls_ca set all four.
	 * peer_tls also governs how this node dials its peers. */
	struct node_tls http_tls, native_tls, bolt_tls, peer_tls;
};

/* The tls and <listener>_tls* settings; 1 when key is not one of them. */
int node_config_set_tls(struct node_config *c, const char *key,
                        const char *value, char *errmsg);
/* node_tls_validate for each listener (peers: mutual TLS, so a CA). */
int node_config_validate_tls(const struct node_config *c, char *errmsg);

/* The effective backup directory into out (bytes of room). */
void node_config_backup_dir(const struct node_config *c, char *out,
                            size_t bytes);
#define NODE_SNAPSHOT_BYTES_MAX (64ull << 30)

/* bolt_auth: open (default) takes the none and basic schemes, basic
 * credentials unchecked until the user store lands; none takes the none
 * scheme only. */
enum { NODE_BOLT_AUTH_OPEN = 0, NODE_BOLT_AUTH_NONE };

/* The bolt_* settings (bolt_addr, bolt_auth, bolt_connections_max). */
int node_config_set_bolt(struct node_config *c, const char *key,
                         const char *value, char *errmsg);
/* The address Bolt listens on and tells routing clients, into out; ""
 * when bolt_addr is "off". */
void node_config_bolt_addr(const struct node_config *c, char *out,
                           size_t bytes);

/* The effective LOAD CSV import directory into out (bytes of room). */
void node_config_import_dir(const struct node_config *c, char *out,
                            size_t bytes);
/* query_memory_bytes by default: a quarter of the physical memory, at
 * most NODE_QUERY_MEMORY_BYTES_CAP (NODE_QUERY_MEMORY_BYTES_FALLBACK when
 * the system cannot tell). */
#define NODE_QUERY_MEMORY_BYTES_CAP      (4ull << 30)
#define NODE_QUERY_MEMORY_BYTES_FALLBACK (2ull << 30)
#define NODE_STATEMENT_MEMORY_BYTES      (1ull << 30)
#define NODE_CURSOR_IDLE_MS              60000
#define NODE_AUTH_TIMEOUT_MS             10000
#define NODE_PENDING_PER_SOURCE          128
#define NODE_NATIVE_PENDING_MAX          256

/* Fills c with defaults (id 0 = unset, addresses 127.0.0.1:474x). */
void node_config_defaults(struct node_config *c);

/* Applies one `key = value` setting. Unknown keys are LORA_ECONFIG. */
int node_config_set(struct node_config *c, const char *key, const char *value,
                    char *errmsg);

/* Reads a config file and applies every line of it. */
int node_config_load_file(struct node_config *c, const char *path,
                          char *errmsg);

/* Applies LORA_* environment variables. */
int node_config_load_env(struct node_config *c, char *errmsg);

/*
 * Full precedence: defaults < file (--config) < env < flags.
 * argv is borrowed. *help_out is set when --help was given.
 */
int node_config_from_args(struct node_config *c, int argc, char **argv,
                          int *help_out, char *errmsg);

/* Checks that the result is usable (id set, self in peers unless join...). */
int node_config_validate(const struct node_config *c, char *errmsg);

/* Parses "1@h:p,2@h:p" into c->peers. */
int node_config_parse_peers(struct node_config *c, const char *list,
                            char *errmsg);

/* The peer address of node id, or NULL. Borrowed from c. */
const char *node_config_peer_addr(const struct node_config *c, uint64_t id);

/* Usage text for --help. Static. */
const char *node_config_usage(void);

#endif /* LORA_NODE_CONFIG_H */
