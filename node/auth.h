/*
 * auth.h - who is asking, and what they may do (docs/security.md).
 *
 * Users and the cluster secret live in the replicated system keyspace
 * (storage.h, "the system keyspace"); this module checks passwords
 * against it (argon2id from libsodium, constant-time comparisons), keeps
 * the bearer tokens this node issued (in memory, 128 random bits each,
 * with an expiry), runs the user-management statements (query/user.h),
 * and has the leader write the first admin and the cluster secret
 * (AuthBootstrap) once.
 *
 * Roles are ordered: admin can do what writer can, writer what reader
 * can. A user whose password must change has no role until it did.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef LORA_NODE_AUTH_H
#define LORA_NODE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"

struct lnode;
struct node_exec_req;
struct node_auth;

enum node_role {
	NODE_ROLE_NONE = 0,
	NODE_ROLE_READER = 1,
	NODE_ROLE_WRITER = 2,
	NODE_ROLE_ADMIN = 3,
};

#define NODE_USER_BYTES_MAX       128   /* a user name */
#define NODE_PASSWORD_BYTES_MAX   1024  /* a password */
#define NODE_AUTH_TOKEN_BYTES     16    /* 128 random bits */
#define NODE_AUTH_TOKEN_HEX_BYTES 33    /* hex + NUL */
#define NODE_AUTH_TOKENS_MAX      16384 /* live tokens per node */
/* live tokens of one user on one node: issuing one more ends the user's
 * oldest, so one user cannot fill the table and lock everyone out */
#define NODE_AUTH_TOKENS_PER_USER_MAX 64
#define NODE_AUTH_CACHE_SLOTS         1024  /* verified credentials */
#define NODE_AUTH_CACHE_MS            60000 /* a verified password is reused */
#define NODE_AUTH_HASHES_MAX          2     /* argon2id runs at once */
#define NODE_AUTH_HASH_WAITERS_MAX    8     /* logins queued for one */
#define NODE_AUTH_FLIGHTS_MAX                                                  \
	16 /* distinct pairs checked at once,                                  \
	    * each shared by its requests */
/* a pair just refused is refused again without argon2id for this long
 * (keyed by the pair and the stored hash: a new password ends it), so a
 * flood of one wrong pair costs one check per period and no worker */
#define NODE_AUTH_DENIED_SLOTS    256
#define NODE_AUTH_DENIED_MS       1000
#define NODE_AUTH_FLIGHT_WAIT_MS  5000    /* longest wait for a shared check */
#define NODE_AUTH_BOOTSTRAP_MS    2000    /* between bootstrap proposals */
#define NODE_TOKEN_TTL_MS_DEFAULT 3600000 /* one hour */

/* An authenticated caller. user "" with role admin: auth is off. */
struct node_identity {
	char user[NODE_USER_BYTES_MAX + 1];
	int role; /* enum node_role */
};

/* "reader", "writer", "admin" or "none". Static. */
const char *node_role_name(int role);

/*
 * Start-up, with n->store open: 0, or LORA_ECONFIG when authentication is
 * on, the system keyspace was never bootstrapped and no admin password
 * was given (config admin_password, LORA_ADMIN_PASSWORD or
 * admin_password_file). Logs a warning when auth is off.
 */
int node_auth_open(struct lnode *n, char *errmsg);
void node_auth_close(struct lnode *n);
/* 1 when authentication is on. */
int node_auth_enabled(struct lnode *n);
/* argon2id password verifications run so far (lora_auth_password_checks_total).
 */
uint64_t node_auth_checks_total(struct lnode *n);

/*
 * The check every protocol uses (HTTP Basic, the native handshake, Bolt):
 * 0 with *role (enum node_role) when user's password is right, else
 * LORA_EUNAVAILABLE (NODE_AUTH_HASH_WAITERS_MAX logins already wait for
 * a password check: nothing checked, retry), or
 * LORA_EUNAUTHORIZED (unknown user or wrong password: the same answer,
 * after the same work). May run argon2id (tens of ms, at most
 * NODE_AUTH_HASHES_MAX at once); a recently verified pair is answered
 * from a cache keyed by a keyed hash of it, and requests for a pair that
 * is being checked wait for that check's verdict (one argon2id run for a
 * burst of logins with the same credentials). With cache_only set, a pair
 * not in the cache is LORA_ETIMEOUT (the caller retries where it may
 * block), and so is a store busy with a snapshot install: the HTTP I/O
 * thread never waits.
 */
int auth_check_password(struct lnode *n, const char *user, const char *password,
                        int *role);
int node_auth_password(struct lnode *n, const char *user, const char *password,
                       int cache_only, struct node_identity *out);

/* A bearer token for id: hex into out, expiring after token_ttl_ms
 * (*ttl_ms). The user's oldest token ends when they hold
 * NODE_AUTH_TOKENS_PER_USER_MAX already. LORA_ELIMIT when
 * NODE_AUTH_TOKENS_MAX live tokens exist. */
int node_auth_token_issue(struct lnode *n, const struct node_identity *id,
                          char out[NODE_AUTH_TOKEN_HEX_BYTES],
                          uint64_t *ttl_ms);
/* 0 with *out (its user's current role), or LORA_EUNAUTHORIZED
 * (unknown, expired, or the user was dropped); with nowait,
 * LORA_ETIMEOUT instead of waiting for a snapshot install to end. */
int node_auth_token_check(struct lnode *n, const char *hex, int nowait,
                          struct node_identity *out);

/* The cluster secret that proves a forwarded request comes from a member:
 * 0 with its bytes (STO_SECRET_BYTES_MAX of room), or LORA_ENOTFOUND
 * before the bootstrap entry was applied. */
int node_auth_peer_proof(struct lnode *n, int nowait, uint8_t *out,
                         size_t *len);
/* 0 when proof is the cluster secret (constant time), else
 * LORA_EUNAUTHORIZED (LORA_ETIMEOUT: nowait and the store is busy). */
int node_auth_peer_check(struct lnode *n, const uint8_t *proof, size_t len,
                         int nowait);
/* The same for a member's HTTP X-Lora-Identity, except on a leader with
 * auth on that has not applied the bootstrap yet (a follower that has
 * sends proofs): LORA_ETIMEOUT when nowait (ask again off the I/O
 * thread), else it waits up to NODE_AUTH_APPLY_WAIT_MS for the secret, at
 * most NODE_AUTH_SECRET_WAITERS_MAX callers at once, and answers
 * LORA_EUNAVAILABLE when it is still missing, LORA_ELIMIT when too many
 * wait already (both mean "not executed, retry": callers answer them as
 * LORA_EUNAVAILABLE, each with its own message). */
#define NODE_AUTH_APPLY_WAIT_MS      1500
#define NODE_AUTH_SECRET_POLL_MS     20
#define NODE_AUTH_SECRET_WAITERS_MAX 16
/* what HTTP and native answer (503 LORA_UNAVAILABLE) for LORA_ELIMIT */
#define NODE_AUTH_SECRET_CROWDED_MSG                                           \
	"too many requests already wait for this leader to apply the "         \
	"cluster's auth bootstrap: not executed, retry"
int node_auth_peer_check_wait(struct lnode *n, const uint8_t *proof, size_t len,
                              int nowait);

/*
 * A user-management statement (query/user.h) from req's identity:
 * returns 0 when req->query is none (nothing done), else 1 with
 * *resp_out set (rows or an error): runs SHOW here, hashes passwords
 * here, and writes through the leader (forwarding when a follower).
 */
int node_auth_user_stmt(struct lnode *n, const struct node_exec_req *req,
                        Lora__Response **resp_out);

/* The role user has now (a session checked its password once: a role
 * revoked, a password that must change or a dropped user take effect on
 * its next request): 0 with *role, or LORA_EUNAUTHORIZED when the user
 * no longer exists. Admin when authentication is off. */
int node_auth_current_role(struct lnode *n, const char *user, int *role);
/* The same, without waiting (nowait) for a snapshot being installed:
 * LORA_ETIMEOUT then (the HTTP I/O thread asks again on a worker). */
int node_auth_role_now(struct lnode *n, const char *user, int nowait,
                       int *role);

/* The users' stamp (storage.h sto_user_gen): it changes whenever a user,
 * a role, a password or the cluster secret may have changed, or the
 * store was replaced; 0 when nothing concluded now may be kept (a change
 * is being written, the store is busy and nowait, or authentication is
 * off). A caller that takes a non-zero stamp before a check may reuse
 * that check's outcome while the stamp is the same (http_auth.c). */
uint64_t node_auth_users_gen(struct lnode *n, int nowait);

/* Logs a refused login (protocol, user name as given), at most one line
 * per second: the others are counted into the next line. */
void node_auth_log_failure(struct lnode *n, const char *proto,
                           const char *user);

/* Gossip thread, every tick: the leader proposes AuthBootstrap until the
 * system keyspace has its cluster secret. */
void node_auth_tick(struct lnode *n);

#endif
