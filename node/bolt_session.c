/*
 * bolt_session.c - Bolt messages and their state machine (Bolt 4.4 and
 * 5.0-5.4): HELLO / LOGON / LOGOFF, RUN, PULL and DISCARD with has_more,
 * BEGIN / COMMIT / ROLLBACK, RESET, GOODBYE, ROUTE, TELEMETRY.
 *
 * Statements go the way every protocol's go (exec.c): a read opens a
 * cursor on this node (node_read_open) which PULL n drains n rows at a
 * time, so a client that stops early stops the work; a write runs
 * through node_exec, to the writer here or forwarded to the leader, and
 * its rows are kept for PULL. Bookmarks are "lora:<log index>": given to
 * RUN or BEGIN they make the read wait for that index (the bookmark
 * consistency of the other protocols); the last one given to a
 * statement is its answer's.
 *
 * Explicit transactions: BEGIN in read mode opens one read view that
 * every statement of the transaction reads (one snapshot: serializable,
 * as nothing is written), on any node. BEGIN in write mode is a
 * transaction of the leader's writer (txn.c): serializable, its reads see
 * its writes, COMMIT appends one log entry. On a follower it runs on the
 * leader: bolt_relay.c relays the transaction's requests and answers over
 * a Bolt connection to the leader.
 *
 * After a FAILURE every request but RESET and GOODBYE is IGNORED, as the
 * protocol says; a request that does not decode is answered with a
 * FAILURE and closes the connection.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth.h"
#include "bolt_int.h"
#include "log.h"
#include "user.h"

#define BOLT_SERVER_AGENT    "Neo4j/5.4.0 compatible - LoraDB-C"
#define BOLT_BOOKMARK_PREFIX "lora:"

/* ---- error codes ------------------------------------------------------------
 */

const char *bolt_neo4j_code(int e)
{
	switch (e) {
	case LORA_EPARSE:
	case LORA_ESEMANTIC:
		return "Neo.ClientError.Statement.SyntaxError";
	case LORA_EPARAMS:
		return "Neo.ClientError.Statement.ParameterMissing";
	case LORA_ETYPE:
		return "Neo.ClientError.Statement.TypeError";
	case LORA_EARITH:
		return "Neo.ClientError.Statement.ArithmeticError";
	case LORA_EINVAL:
	case LORA_EVECTOR:
		return "Neo.ClientError.Statement.ArgumentError";
	case LORA_ENOTFOUND:
		return "Neo.ClientError.Statement.EntityNotFound";
	case LORA_EEXIST:
		return "Neo.ClientError.Schema."
		       "EquivalentSchemaRuleAlreadyExists";
	case LORA_ECONSTRAINT:
		return "Neo.ClientError.Schema.ConstraintValidationFailed";
	case LORA_EREADONLY:
		return "Neo.ClientError.Statement.AccessMode";
	case LORA_ELIMIT:
		return "Neo.ClientError.Request.Invalid";
	case LORA_EMEMORY:
		return "Neo.TransientError.General.MemoryPoolOutOfMemoryError";
	case LORA_ETIMEOUT:
		return "Neo.ClientError.Transaction.TransactionTimedOut";
	case LORA_ENOTLEADER:
		return "Neo.ClientError.Cluster.NotALeader";
	case LORA_EUNAVAILABLE:
	case LORA_ECLOSED:
		return "Neo.TransientError.General.DatabaseUnavailable";
	case LORA_EUNKNOWN_OUTCOME:
		/* not Transient: a driver must not retry blindly a write
		 * that may have committed */
		return "Neo.DatabaseError.Transaction.TransactionCommitFailed";
	case LORA_ECORRUPT:
		return "Neo.ClientError.Request.InvalidFormat";
	default:
		return "Neo.DatabaseError.General.UnknownError";
	}
}

/* ---- answers ----------------------------------------------------------------
 */

static int send_failure(struct bolt_conn *c, const char *code, const char *msg)
{
	int rc = ps_put_struct_header(&c->msg, BOLT_FAILURE, 1);
	if (rc == 0)
		rc = ps_put_map_header(&c->msg, 2);
	if (rc == 0)
		rc = ps_put_str(&c->msg, "code");
	if (rc == 0)
		rc = ps_put_str(&c->msg, code);
	if (rc == 0)
		rc = ps_put_str(&c->msg, "message");
	if (rc == 0)
		rc = ps_put_str(&c->msg, msg);
	if (c->state != BOLT_S_DEFUNCT)
		c->state = BOLT_S_FAILED;
	return rc ? rc : bolt_send_msg(c);
}

static int fail(struct bolt_conn *c, int lora_err, const char *msg)
{
	return send_failure(c, bolt_neo4j_code(lora_err),
	                    msg && msg[0] ? msg : lora_strerror(lora_err));
}

int bolt_send_failure(struct bolt_conn *c, const char *code, const char *msg)
{
	return send_failure(c, code, msg);
}

int bolt_fail(struct bolt_conn *c, int lora_err, const char *msg)
{
	return fail(c, lora_err, msg);
}

static int fail_qry(struct bolt_conn *c, const struct qry_error *e)
{
	if (e->code == LORA_ECLOSED) /* the engine saw the client leave */
		node_metrics_client_gone(c->n, NODE_API_BOLT);
	char m[LORA_ERRMSG_BYTES + 64];
	if (e->line && !strstr(e->message, "(line "))
		snprintf(m, sizeof m, "%s (line %u, column %u)", e->message,
		         e->line, e->column);
	else
		snprintf(m, sizeof m, "%s", e->message);
	return fail(c, e->code ? e->code : LORA_EINTERNAL, m);
}

static int send_simple(struct bolt_conn *c, uint8_t tag)
{
	int rc = ps_put_struct_header(&c->msg, tag, tag == BOLT_SUCCESS);
	if (rc == 0 && tag == BOLT_SUCCESS)
		rc = ps_put_map_header(&c->msg, 0);
	return rc ? rc : bolt_send_msg(c);
}

/* SUCCESS with a map of n entries whose keys and values the caller puts
 * into c->msg next, then calls bolt_send_msg. */
static int success_begin(struct bolt_conn *c, uint32_t n)
{
	int rc = ps_put_struct_header(&c->msg, BOLT_SUCCESS, 1);
	return rc ? rc : ps_put_map_header(&c->msg, n);
}

static int put_kv_str(struct lora_buf *b, const char *k, const char *v)
{
	int rc = ps_put_str(b, k);
	return rc ? rc : ps_put_str(b, v);
}

static int put_kv_int(struct lora_buf *b, const char *k, int64_t v)
{
	int rc = ps_put_str(b, k);
	return rc ? rc : ps_put_int(b, v);
}

static int put_bookmark(struct lora_buf *b, uint64_t index)
{
	char s[48];
	snprintf(s, sizeof s, BOLT_BOOKMARK_PREFIX "%llu",
	         (unsigned long long)index);
	return put_kv_str(b, "bookmark", s);
}

/* ---- request fields ---------------------------------------------------------
 */

static const char *get_str(const Lora__Value *map, const char *key)
{
	const Lora__Value *v = ps_map_get(map, key);
	return v && v->kind_case == LORA__VALUE__KIND_STRING_VALUE
	           ? v->string_value
	           : NULL;
}

/* The largest index named by the bookmarks (a list of strings): 0 and
 * *index, or LORA_EINVAL for one that is not ours. */
static int parse_bookmarks(const Lora__Value *list, uint64_t *index,
                           char *errmsg)
{
	*index = 0;
	if (list == NULL || list->kind_case == LORA__VALUE__KIND_NULL_VALUE)
		return 0;
	if (list->kind_case != LORA__VALUE__KIND_LIST_VALUE)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "bookmarks must be a list of strings");
	for (size_t i = 0; i < list->list_value->n_items; i++) {
		const Lora__Value *b = list->list_value->items[i];
		const size_t pl = strlen(BOLT_BOOKMARK_PREFIX);
		char *end = NULL;
		unsigned long long v = 0;
		if (b->kind_case == LORA__VALUE__KIND_STRING_VALUE &&
		    !strncmp(b->string_value, BOLT_BOOKMARK_PREFIX, pl))
			v = strtoull(b->string_value + pl, &end, 10);
		if (end == NULL || end == b->string_value + pl || *end)
			return lora_errf(
			    LORA_EINVAL, errmsg,
			    "bookmark is not one of this cluster's "
			    "(lora:<index>)");
		if (v > *index)
			*index = v;
	}
	return 0;
}

/* The request options RUN and BEGIN share (their `extra` map). */
struct bolt_opts {
	uint64_t bookmark;
	int read_mode;          /* mode "r" */
	const char *request_id; /* tx_metadata.requestId, borrowed */
	uint32_t tx_timeout_ms; /* 0: the default */
};

static int parse_extra(struct bolt_conn *c, const Lora__Value *extra,
                       struct bolt_opts *o)
{
	char m[LORA_ERRMSG_BYTES];
	memset(o, 0, sizeof *o);
	if (extra && extra->kind_case != LORA__VALUE__KIND_MAP_VALUE &&
	    extra->kind_case != LORA__VALUE__KIND_NULL_VALUE) {
		fail(c, LORA_ECORRUPT, "extra must be a map");
		return -1;
	}
	if (parse_bookmarks(ps_map_get(extra, "bookmarks"), &o->bookmark, m)) {
		send_failure(c, "Neo.ClientError.Transaction.InvalidBookmark",
		             m);
		return -1;
	}
	const char *mode = get_str(extra, "mode");
	o->read_mode = mode && !strcmp(mode, "r");
	const char *db = get_str(extra, "db");
	if (db && strcmp(db, "neo4j") != 0) {
		snprintf(m, sizeof m,
		         "database %.64s does not exist: this server has one "
		         "database, neo4j",
		         db);
		send_failure(c, "Neo.ClientError.Database.DatabaseNotFound", m);
		return -1;
	}
	if (get_str(extra, "imp_user")) {
		send_failure(c, "Neo.ClientError.Security.Forbidden",
		             "impersonation is not supported");
		return -1;
	}
	const Lora__Value *tt = ps_map_get(extra, "tx_timeout");
	if (tt && tt->kind_case == LORA__VALUE__KIND_INT_VALUE &&
	    tt->int_value > 0)
		o->tx_timeout_ms = tt->int_value > UINT32_MAX
		                       ? UINT32_MAX
		                       : (uint32_t)tt->int_value;
	const Lora__Value *md = ps_map_get(extra, "tx_metadata");
	o->request_id = get_str(md, "requestId");
	if (o->request_id &&
	    strlen(o->request_id) > NODE_REQUEST_ID_BYTES_MAX) {
		fail(c, LORA_EINVAL, "tx_metadata.requestId is too long");
		return -1;
	}
	return 0;
}

/* ---- authentication ---------------------------------------------------------
 */

/*
 * The one place Bolt decides who may log in (HELLO before 5.1, LOGON
 * after). bolt_auth = open: the `none` and `basic` schemes are accepted,
 * basic credentials unchecked; bolt_auth = none: only the `none` scheme.
 * The user store (auth_check_password) plugs in here for `basic`.
 */
static int bolt_authenticate(struct bolt_conn *c, const Lora__Value *auth,
                             char *errmsg)
{
	const char *scheme = get_str(auth, "scheme");
	const char *principal = get_str(auth, "principal");
	int on = node_auth_enabled(c->n);
	if (scheme == NULL || !strcmp(scheme, "none")) {
		if (on)
			return lora_errf(
			    LORA_EUNAUTHORIZED, errmsg,
			    "authentication is required: use the "
			    "basic scheme with a user and password");
		snprintf(c->user, sizeof c->user, "%s", "");
		snprintf(c->auth_scheme, sizeof c->auth_scheme, "none");
		c->role = NODE_ROLE_ADMIN; /* auth = off */
		return 0;
	}
	if (strcmp(scheme, "basic") != 0)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "authentication scheme %.32s is not supported "
		                 "(none, basic)",
		                 scheme);
	if (!on && c->n->cfg.bolt_auth == NODE_BOLT_AUTH_NONE)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "this server accepts the none scheme only "
		                 "(bolt_auth = none)");
	snprintf(c->user, sizeof c->user, "%s", principal ? principal : "");
	/* for a write transaction relayed to the leader, which checks them
	 * again (bolt_relay.c) */
	const char *pw = get_str(auth, "credentials");
	snprintf(c->auth_scheme, sizeof c->auth_scheme, "basic");
	snprintf(c->auth_credentials, sizeof c->auth_credentials, "%s",
	         pw ? pw : "");
	if (!on) {
		c->role = NODE_ROLE_ADMIN;
		return 0;
	}
	int role = NODE_ROLE_NONE;
	if (!principal || !pw ||
	    auth_check_password(c->n, principal, pw, &role) != 0) {
		node_auth_log_failure(c->n, "bolt", principal ? principal : "");
		c->user[0] = '\0';
		return lora_errf(LORA_EUNAUTHORIZED, errmsg,
		                 "the client is unauthorized due to "
		                 "authentication failure");
	}
	c->role = role;
	return 0;
}

/* ---- HELLO, LOGON, LOGOFF, ROUTE
 * ---------------------------------------------
 */

static int on_hello(struct bolt_conn *c, const struct ps_message *m)
{
	const Lora__Value *extra = m->n_fields ? m->fields[0] : NULL;
	if (extra == NULL || extra->kind_case != LORA__VALUE__KIND_MAP_VALUE) {
		c->state = BOLT_S_DEFUNCT;
		return fail(c, LORA_ECORRUPT, "HELLO needs a map");
	}
	const char *agent = get_str(extra, "user_agent");
	c->from_relay = agent && !strcmp(agent, BOLT_RELAY_AGENT);
	c->routing = ps_map_get(extra, "routing") != NULL &&
	             ps_map_get(extra, "routing")->kind_case ==
	                 LORA__VALUE__KIND_MAP_VALUE;
	int patch_utc = 0;
	const Lora__Value *patch = ps_map_get(extra, "patch_bolt");
	if (c->version == BOLT_V(4, 4) && patch &&
	    patch->kind_case == LORA__VALUE__KIND_LIST_VALUE)
		for (size_t i = 0; i < patch->list_value->n_items; i++) {
			const Lora__Value *p = patch->list_value->items[i];
			if (p->kind_case == LORA__VALUE__KIND_STRING_VALUE &&
			    !strcmp(p->string_value, "utc"))
				patch_utc = 1;
		}
	if (patch_utc)
		c->enc.utc_datetime = 1;
	char err[LORA_ERRMSG_BYTES];
	if (c->version < BOLT_V(5, 1) && bolt_authenticate(c, extra, err)) {
		c->state = BOLT_S_DEFUNCT;
		return send_failure(c, "Neo.ClientError.Security.Unauthorized",
		                    err);
	}
	char id[32];
	snprintf(id, sizeof id, "bolt-%llu", (unsigned long long)c->id);
	int rc = success_begin(c, patch_utc ? 4 : 3);
	if (rc == 0)
		rc = put_kv_str(&c->msg, "server", BOLT_SERVER_AGENT);
	if (rc == 0)
		rc = put_kv_str(&c->msg, "connection_id", id);
	if (rc == 0)
		rc = ps_put_str(&c->msg, "hints");
	if (rc == 0)
		rc = ps_put_map_header(&c->msg, 1);
	if (rc == 0)
		rc = ps_put_str(&c->msg, "telemetry.enabled");
	if (rc == 0)
		rc = ps_put_bool(&c->msg, 0);
	if (rc == 0 && patch_utc) {
		rc = ps_put_str(&c->msg, "patch_bolt");
		if (rc == 0)
			rc = ps_put_list_header(&c->msg, 1);
		if (rc == 0)
			rc = ps_put_str(&c->msg, "utc");
	}
	c->state = c->version >= BOLT_V(5, 1) ? BOLT_S_AUTH : BOLT_S_READY;
	return rc ? rc : bolt_send_msg(c);
}

static int on_logon(struct bolt_conn *c, const struct ps_message *m)
{
	char err[LORA_ERRMSG_BYTES];
	const Lora__Value *auth = m->n_fields ? m->fields[0] : NULL;
	bolt_relay_logout(c);
	if (bolt_authenticate(c, auth, err)) {
		c->state = BOLT_S_DEFUNCT;
		return send_failure(c, "Neo.ClientError.Security.Unauthorized",
		                    err);
	}
	c->state = BOLT_S_READY;
	return send_simple(c, BOLT_SUCCESS);
}

/* The Bolt address of member m (this node's own from its config). */
static void member_bolt_addr(struct lnode *n, const struct node_member *m,
                             char *out, size_t bytes)
{
	if (m->id == n->cfg.id) {
		node_config_bolt_addr(&n->cfg, out, bytes);
		return;
	}
	snprintf(out, bytes, "%s", m->bolt_addr);
}

static int put_servers(struct lora_buf *b, const char *role,
                       char (*addrs)[NODE_ADDR_BYTES_MAX], int k)
{
	int rc = ps_put_map_header(b, 2);
	if (rc == 0)
		rc = ps_put_str(b, "addresses");
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)k);
	for (int i = 0; i < k && rc == 0; i++)
		rc = ps_put_str(b, addrs[i]);
	return rc ? rc : put_kv_str(b, "role", role);
}

/* ROUTE: the leader as WRITE (none while no leader is known), every
 * member heard from lately (and this node) as READ and ROUTE. */
static int on_route(struct bolt_conn *c)
{
	struct lnode *n = c->n;
	static _Thread_local char addrs[NODE_PEERS_MAX][NODE_ADDR_BYTES_MAX];
	char writer[NODE_ADDR_BYTES_MAX] = "";
	uint64_t leader = node_leader_id(n), now = lora_now_ms();
	int k = 0;
	pthread_mutex_lock(&n->status_mu);
	for (int i = 0; i < n->n_members && k < NODE_PEERS_MAX; i++) {
		const struct node_member *m = &n->members[i];
		char a[NODE_ADDR_BYTES_MAX];
		member_bolt_addr(n, m, a, sizeof a);
		int fresh = m->id == n->cfg.id ||
		            now - m->last_info_ms < BOLT_MEMBER_STALE_MS;
		if (a[0] == '\0' || !fresh)
			continue;
		if (m->id == leader)
			snprintf(writer, sizeof writer, "%s", a);
		snprintf(addrs[k++], NODE_ADDR_BYTES_MAX, "%s", a);
	}
	pthread_mutex_unlock(&n->status_mu);
	struct lora_buf *b = &c->msg;
	int rc = success_begin(c, 1);
	if (rc == 0)
		rc = ps_put_str(b, "rt");
	if (rc == 0)
		rc = ps_put_map_header(b, 3);
	if (rc == 0)
		rc = put_kv_int(b, "ttl", BOLT_ROUTE_TTL_S);
	if (rc == 0)
		rc = put_kv_str(b, "db", "neo4j");
	if (rc == 0)
		rc = ps_put_str(b, "servers");
	if (rc == 0)
		rc = ps_put_list_header(b, 3);
	if (rc == 0)
		rc = put_servers(b, "WRITE", &writer, writer[0] ? 1 : 0);
	if (rc == 0)
		rc = put_servers(b, "READ", addrs, k);
	if (rc == 0)
		rc = put_servers(b, "ROUTE", addrs, k);
	return rc ? rc : bolt_send_msg(c);
}

/* ---- results ----------------------------------------------------------------
 */

static void result_free(struct bolt_conn *c, struct bolt_result *r)
{
	if (r->nc)
		node_cursor_free(c->n, r->nc);
	if (r->qc)
		qry_cursor_free(r->qc);
	if (r->resp)
		lora__response__free_unpacked(r->resp, &lora_pb_allocator);
	memset(r, 0, sizeof *r);
}

static void tx_end(struct bolt_conn *c)
{
	for (int i = 0; i < c->n_results; i++)
		result_free(c, &c->results[i]);
	c->n_results = 0;
	if (c->relay_tx)
		bolt_relay_end(c);
	if (c->wtx) {
		node_tx_rollback(c->wtx);
		c->wtx = NULL;
	}
	if (c->tx_view) {
		sto_view_close(c->tx_view);
		node_store_release(c->n);
		c->tx_view = NULL;
	}
}

void bolt_session_drop(struct bolt_conn *c, const char *why)
{
	int had = c->n_results || c->tx_view || c->wtx || c->relay_tx;
	int in_tx = c->state == BOLT_S_TX;
	tx_end(c);
	if (!had || why == NULL)
		return;
	/* the state stays: the next PULL, RUN or COMMIT is told */
	c->tx_failed_closed = 1;
	(void)in_tx;
	LOG_DEBUG("bolt: connection %llu: results %s",
	          (unsigned long long)c->id, why);
}

void bolt_session_expire(struct bolt_conn *c, uint64_t now_ms)
{
	if (c->tx_view == NULL || now_ms < c->tx_life_end_ms)
		return;
	bolt_session_drop(c, "closed: the read transaction lasted its "
	                     "longest (NODE_TX_LIFE_MS_MAX)");
	c->tx_expired = 1;
}

/* The FAILURE for a request on results or a transaction closed under the
 * client (bolt_session_drop): what ended them. */
static int fail_closed(struct bolt_conn *c, const char *what)
{
	char m[256];
	if (c->tx_expired)
		return fail(c, LORA_ETIMEOUT,
		            "the transaction expired (older than "
		            "NODE_TX_LIFE_MS_MAX) and was rolled back: begin "
		            "again");
	snprintf(m, sizeof m,
	         "the %s was closed: a snapshot replaced the state or it was "
	         "idle too long",
	         what);
	return fail(c, LORA_EUNAVAILABLE, m);
}

void bolt_session_client_left(struct bolt_conn *c)
{
	/* a write's kept rows (BOLT_R_ROWS) are no statement any more */
	for (int i = 0; i < c->n_results; i++)
		if (c->results[i].nc || c->results[i].qc)
			node_metrics_client_gone(c->n, NODE_API_BOLT);
	bolt_session_drop(c, NULL);
}

static struct bolt_result *result_add(struct bolt_conn *c)
{
	if (c->n_results == BOLT_RESULTS_MAX)
		return NULL;
	if (c->n_results == 0 && c->tx_view == NULL)
		c->results_epoch = bolt_server_epoch(c);
	struct bolt_result *r = &c->results[c->n_results++];
	memset(r, 0, sizeof *r);
	r->qid = c->next_qid++;
	r->t0_ms = lora_now_ms();
	return r;
}

/* The next row of r: 0 with *row (borrowed) or *done. */
static int result_next(struct bolt_result *r, const Lora__Value *const **row,
                       int *done, struct qry_error *err)
{
	*done = 0;
	if (r->kind == BOLT_R_NODE)
		return node_cursor_next(r->nc, row, done, err);
	if (r->kind == BOLT_R_TX)
		return qry_cursor_next(r->qc, row, done, err);
	if (r->next_row >= r->resp->n_rows) {
		*done = 1;
		return 0;
	}
	const Lora__Row *rw = r->resp->rows[r->next_row++];
	if (rw->n_values < r->ncols) /* a forwarded answer out of shape */
		return err->code = lora_errf(LORA_EINTERNAL, err->message,
		                             "a result row has %zu of %zu "
		                             "values",
		                             rw->n_values, r->ncols);
	*row = (const Lora__Value *const *)rw->values;
	return 0;
}

static int send_record(struct bolt_conn *c, const Lora__Value *const *row,
                       size_t ncols)
{
	int rc = ps_put_struct_header(&c->msg, BOLT_RECORD, 1);
	if (rc == 0)
		rc = ps_put_list_header(&c->msg, (uint32_t)ncols);
	for (size_t i = 0; i < ncols && rc == 0; i++)
		rc = ps_put_value(&c->msg, row[i], &c->enc);
	if (rc == LORA_ELIMIT || rc == LORA_EINVAL) { /* not encodable */
		lora_buf_reset(&c->msg);
		return rc;
	}
	return rc ? rc : bolt_send_msg(c);
}

static int send_fields(struct bolt_conn *c, struct bolt_result *r,
                       const char *const *names, size_t ncols, int in_tx)
{
	struct lora_buf *b = &c->msg;
	int rc = success_begin(c, in_tx ? 3 : 2);
	if (rc == 0)
		rc = ps_put_str(b, "fields");
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)ncols);
	for (size_t i = 0; i < ncols && rc == 0; i++)
		rc = ps_put_str(b, names[i]);
	if (rc == 0)
		rc = put_kv_int(b, "t_first",
		                (int64_t)(lora_now_ms() - r->t0_ms));
	if (rc == 0 && in_tx)
		rc = put_kv_int(b, "qid", r->qid);
	r->ncols = ncols;
	return rc ? rc : bolt_send_msg(c);
}

/* The result a PULL or DISCARD names (qid -1: the last one). */
static struct bolt_result *result_find(struct bolt_conn *c, int64_t qid)
{
	if (c->n_results == 0)
		return NULL;
	if (qid < 0)
		return &c->results[c->n_results - 1];
	for (int i = 0; i < c->n_results; i++)
		if (c->results[i].qid == qid)
			return &c->results[i];
	return NULL;
}

static void result_remove(struct bolt_conn *c, struct bolt_result *r)
{
	result_free(c, r);
	int i = (int)(r - c->results);
	memmove(&c->results[i], &c->results[i + 1],
	        (size_t)(c->n_results - i - 1) * sizeof *r);
	c->n_results--;
	if (c->state == BOLT_S_STREAMING && c->n_results == 0)
		c->state = BOLT_S_READY;
}

static int64_t plan_int(const Lora__Value *plan, const char *key)
{
	const Lora__Value *v = ps_map_get(plan, key);
	return v && v->kind_case == LORA__VALUE__KIND_INT_VALUE ? v->int_value
	                                                        : 0;
}

/* Our plan {operator, details, children[, rows, time_ns]} as Neo4j's
 * {operatorType, identifiers, arguments, children[, rows, dbHits,
 * time]}. */
static int put_plan(struct lora_buf *b, const Lora__Value *plan, int profile,
                    int depth)
{
	const char *op = get_str(plan, "operator");
	const char *details = get_str(plan, "details");
	const Lora__Value *kids = ps_map_get(plan, "children");
	size_t nk = kids && kids->kind_case == LORA__VALUE__KIND_LIST_VALUE
	                ? kids->list_value->n_items
	                : 0;
	if (depth > PS_DEPTH_MAX)
		return LORA_ELIMIT;
	int rc = ps_put_map_header(b, profile ? 7 : 4);
	if (rc == 0)
		rc = put_kv_str(b, "operatorType", op ? op : "?");
	if (rc == 0)
		rc = ps_put_str(b, "identifiers");
	if (rc == 0)
		rc = ps_put_list_header(b, 0);
	if (rc == 0)
		rc = ps_put_str(b, "arguments");
	if (rc == 0)
		rc = ps_put_map_header(b, 1);
	if (rc == 0)
		rc = put_kv_str(b, "details", details ? details : "");
	if (rc == 0 && profile)
		rc = put_kv_int(b, "rows", plan_int(plan, "rows"));
	if (rc == 0 && profile)
		rc = put_kv_int(b, "dbHits", 0);
	if (rc == 0 && profile)
		rc = put_kv_int(b, "time", plan_int(plan, "time_ns"));
	if (rc == 0)
		rc = ps_put_str(b, "children");
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)nk);
	for (size_t i = 0; i < nk && rc == 0; i++)
		rc =
		    put_plan(b, kids->list_value->items[i], profile, depth + 1);
	return rc;
}

/* The SUCCESS that ends a result. */
static int send_summary(struct bolt_conn *c, struct bolt_result *r)
{
	struct lora_buf *b = &c->msg;
	int in_tx = c->state == BOLT_S_TX;
	const Lora__Value *plan =
	    r->kind == BOLT_R_NODE ? node_cursor_plan(r->nc) : NULL;
	int profile = plan && ps_map_get(plan, "rows") != NULL;
	int rc = success_begin(c, (in_tx ? 3 : 4) + (plan != NULL));
	if (rc == 0 && plan)
		rc = ps_put_str(b, profile ? "profile" : "plan");
	if (rc == 0 && plan)
		rc = put_plan(b, plan, profile, 0);
	if (rc == 0 && !in_tx)
		rc = put_bookmark(b, r->bookmark);
	if (rc == 0)
		rc = put_kv_str(b, "type", r->write ? "w" : "r");
	if (rc == 0)
		rc = put_kv_int(b, "t_last",
		                (int64_t)(lora_now_ms() - r->t0_ms));
	if (rc == 0)
		rc = put_kv_str(b, "db", "neo4j");
	return rc ? rc : bolt_send_msg(c);
}

/* PULL n (send) or DISCARD n (skip): n < 0 is every row. */
static int on_pull(struct bolt_conn *c, const struct ps_message *m, int send)
{
	const Lora__Value *extra = m->n_fields ? m->fields[0] : NULL;
	const Lora__Value *nv = ps_map_get(extra, "n");
	const Lora__Value *qv = ps_map_get(extra, "qid");
	if (nv == NULL || nv->kind_case != LORA__VALUE__KIND_INT_VALUE ||
	    nv->int_value == 0 || nv->int_value < -1)
		return fail(c, LORA_ECORRUPT,
		            "PULL and DISCARD need n > 0 or -1");
	int64_t qid = qv && qv->kind_case == LORA__VALUE__KIND_INT_VALUE
	                  ? qv->int_value
	                  : -1;
	struct bolt_result *r = result_find(c, qid);
	if (r == NULL)
		return c->tx_failed_closed
		           ? fail_closed(c, "result")
		           : fail(c, LORA_EINVAL,
		                  "no open result to pull from");
	int64_t want = nv->int_value, k = 0;
	int done = 0, rc = 0;
	struct qry_error err = {0};
	if (!send && want < 0)
		done = 1; /* DISCARD all: stop the statement here */
	while (!done && (want < 0 || k < want)) {
		const Lora__Value *const *row;
		if ((rc = result_next(r, &row, &done, &err)) != 0)
			break;
		if (done)
			break;
		k++;
		if (send && (rc = send_record(c, row, r->ncols)) != 0)
			break;
	}
	if (r->kind == BOLT_R_NODE)
		node_metrics_rows_streamed(c->n, NODE_API_BOLT, (uint64_t)k);
	if (rc == LORA_ELIMIT && err.code == 0)
		lora_errf(err.code = LORA_ELIMIT, err.message,
		          "a result value nests deeper than %d", PS_DEPTH_MAX);
	if (rc == LORA_EINVAL && err.code == 0)
		lora_errf(err.code = LORA_EINTERNAL, err.message,
		          "a result value cannot be encoded (a path out of "
		          "shape)");
	if (rc && err.code) {
		result_remove(c, r);
		return fail_qry(c, &err);
	}
	if (rc)
		return rc; /* the connection failed */
	if (!done) {
		int rc2 = success_begin(c, 1);
		if (rc2 == 0)
			rc2 = ps_put_str(&c->msg, "has_more");
		if (rc2 == 0)
			rc2 = ps_put_bool(&c->msg, 1);
		return rc2 ? rc2 : bolt_send_msg(c);
	}
	rc = send_summary(c, r);
	result_remove(c, r);
	return rc;
}

/* ---- RUN --------------------------------------------------------------------
 */

/* Whether query is a user statement (a malformed one too: node_exec
 * answers with its error). */
static int is_user_stmt(const char *query)
{
	struct qry_user_stmt *s = lora_malloc(sizeof *s);
	char msg[LORA_ERRMSG_BYTES];
	if (s == NULL)
		return 0; /* the Cypher parser answers out of memory */
	int rc = qry_user_parse(query, s, msg);
	sodium_memzero(s, sizeof *s);
	lora_free(s);
	return rc != LORA_ENOTFOUND;
}

static int run_write(struct bolt_conn *c, struct node_exec_req *req,
                     struct bolt_result *r)
{
	Lora__Response *resp = NULL;
	uint64_t t0 = lora_now_ns();
	if (c->wtx && (resp = node_resp_new()) != NULL)
		node_tx_run(c->wtx, req, resp);
	else if (c->wtx == NULL)
		node_exec(c->n, req, &resp, NULL, NULL);
	if (resp == NULL)
		return fail(c, LORA_ENOMEM, "out of memory");
	node_metrics_request(c->n, "bolt", resp->error == NULL,
	                     lora_now_ns() - t0);
	if (resp->error) {
		char m[LORA_ERRMSG_BYTES + 64];
		int code = node_err_from_code(resp->error->code);
		if (resp->error->line &&
		    !strstr(resp->error->message, "(line "))
			snprintf(m, sizeof m, "%s (line %u, column %u)",
			         resp->error->message, resp->error->line,
			         resp->error->column);
		else
			snprintf(m, sizeof m, "%s", resp->error->message);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
		fail(c, code, m);
		return 1;
	}
	r->kind = BOLT_R_ROWS;
	r->resp = resp;
	r->write = 1;
	r->bookmark = resp->bookmark ? strtoull(resp->bookmark, NULL, 10) : 0;
	return 0;
}

/* A Bolt client that closed its end of the connection (a FIN: Bolt has no
 * half-close after a request) or reset it has left: its running read
 * stops (qry_limits.gone). */
static int bolt_client_gone(void *arg)
{
	const struct bolt_conn *c = arg;
	struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int run_read(struct bolt_conn *c, struct node_exec_req *req,
                    struct bolt_result *r)
{
	struct qry_error err;
	if (c->state == BOLT_S_TX) {
		struct qry_request q = {.query = req->query,
		                        .params = req->params,
		                        .view = c->tx_view,
		                        .read_only = 1,
		                        .explicit_tx = 1};
		char import_dir[NODE_PATH_BYTES_MAX];
		node_config_import_dir(&c->n->cfg, import_dir,
		                       sizeof import_dir);
		q.import_dir = import_dir;
		node_qry_limits(c->n, req, &q.limits);
		node_qry_limits_until(&q.limits, c->tx_life_end_ms);
		q.limits.gone = req->client_gone;
		q.limits.gone_arg = req->client_gone_arg;
		memset(&err, 0, sizeof err);
		if (qry_open(&q, &r->qc, &err) != 0)
			return fail_qry(c, &err), 1;
		r->kind = BOLT_R_TX;
		return 0;
	}
	uint64_t t0 = lora_now_ns();
	int rc = node_read_open(c->n, req, NODE_API_BOLT, &r->nc, &err);
	node_metrics_request(c->n, "bolt", rc == 0, lora_now_ns() - t0);
	if (rc != 0)
		return fail_qry(c, &err), 1;
	r->kind = BOLT_R_NODE;
	r->bookmark = node_cursor_bookmark(r->nc);
	return 0;
}

static int on_run(struct bolt_conn *c, const struct ps_message *m)
{
	if (m->n_fields < 2 ||
	    m->fields[0]->kind_case != LORA__VALUE__KIND_STRING_VALUE ||
	    (m->fields[1]->kind_case != LORA__VALUE__KIND_MAP_VALUE &&
	     m->fields[1]->kind_case != LORA__VALUE__KIND_NULL_VALUE))
		return fail(c, LORA_ECORRUPT, "RUN needs a query and a map");
	int in_tx = c->state == BOLT_S_TX;
	if (in_tx && c->tx_view == NULL && c->wtx == NULL)
		return fail_closed(c, "transaction");
	if (!in_tx)
		c->tx_failed_closed = c->tx_expired = 0;
	struct bolt_opts o = {0};
	if (!in_tx && parse_extra(c, m->n_fields > 2 ? m->fields[2] : NULL, &o))
		return 0;
	const char *query = m->fields[0]->string_value;
	int is_write = 0;
	struct qry_error err = {0};
	if (in_tx && qry_user_refuse_in_tx(query, err.message) != 0)
		return fail(c, LORA_EINVAL, err.message);
	/* CREATE USER, SHOW USERS, ... are no Cypher (node_is_write would
	 * call them a syntax error): node_exec answers them as it does over
	 * HTTP, with their own rights (a reader changes its own password) */
	int user_stmt = !in_tx && is_user_stmt(query);
	if (!user_stmt &&
	    node_is_write(c->n, NULL, query, &is_write, &err) != 0)
		return fail_qry(c, &err);
	/* EXPLAIN of a write has no effects: it runs where reads run */
	const char *q = query + strspn(query, " \t\r\n");
	int explain = !strncasecmp(q, "EXPLAIN", 7) &&
	              (q[7] == '\0' || strchr(" \t\r\n", q[7]));
	if (explain)
		is_write = 0;
	if (is_write && (o.read_mode || (in_tx && c->wtx == NULL)))
		return send_failure(c, "Neo.ClientError.Statement.AccessMode",
		                    in_tx
		                        ? "Writing in a read transaction is "
		                          "not allowed (begin the transaction "
		                          "in write mode)"
		                        : "Writing in read access mode not "
		                          "allowed");
	struct node_exec_req req = {
	    .query = query,
	    .params = m->fields[1]->kind_case == LORA__VALUE__KIND_MAP_VALUE
	                  ? m->fields[1]->map_value
	                  : NULL,
	    .consistency = o.bookmark ? LORA__CONSISTENCY__CONSISTENCY_BOOKMARK
	                              : LORA__CONSISTENCY__CONSISTENCY_LOCAL,
	    .bookmark = o.bookmark,
	    .request_id = o.request_id,
	    .mode = explain ? QRY_EXPLAIN : QRY_RUN,
	    .kind = is_write ? NODE_STMT_WRITE : NODE_STMT_READ,
	    .role = c->role,
	    /* an auto-commit statement's own transaction: its tx_timeout
	     * lowers the time limit (a statement of an explicit one ends
	     * with it: node_qry_limits_until) */
	    .time_ms_max = in_tx ? 0 : o.tx_timeout_ms,
	    .client_gone = bolt_client_gone,
	    .client_gone_arg = c,
	};
	snprintf(req.user, sizeof req.user, "%s", c->user);
	/* the role as it is now: a revoked role or a dropped user takes
	 * effect on the next statement, not at the next login */
	if (c->user[0] &&
	    node_auth_current_role(c->n, c->user, &req.role) != 0) {
		c->state = BOLT_S_DEFUNCT;
		return send_failure(c, "Neo.ClientError.Security.Unauthorized",
		                    "the user no longer exists");
	}
	char why[LORA_ERRMSG_BYTES];
	int arc = user_stmt ? 0 : node_exec_allowed(c->n, &req, is_write, why);
	if (arc == LORA_EFORBIDDEN)
		return send_failure(c, "Neo.ClientError.Security.Forbidden",
		                    why);
	if (arc != 0)
		return fail(c, arc, why);
	struct bolt_result *r = result_add(c);
	if (r == NULL)
		return fail(c, LORA_ELIMIT,
		            "too many open results in this "
		            "transaction");
	int rc = c->wtx || is_write || user_stmt ? run_write(c, &req, r)
	                                         : run_read(c, &req, r);
	if (rc) {
		c->n_results--;
		memset(r, 0, sizeof *r);
		return 0; /* FAILURE sent */
	}
	const char *const *names = NULL;
	size_t ncols =
	    r->kind == BOLT_R_NODE ? node_cursor_columns(r->nc, &names)
	    : r->kind == BOLT_R_TX ? qry_cursor_columns(r->qc, &names)
	                           : r->resp->n_columns;
	if (r->kind == BOLT_R_ROWS)
		names = (const char *const *)r->resp->columns;
	if (!in_tx)
		c->state = BOLT_S_STREAMING;
	return send_fields(c, r, names, ncols, in_tx);
}

/* ---- transactions -----------------------------------------------------------
 */

static int begin_write(struct bolt_conn *c, const struct bolt_opts *o)
{
	char err[LORA_ERRMSG_BYTES];
	/* a write transaction holds the cluster's writer: only a user who
	 * may write can begin one */
	int role = c->role;
	if (c->user[0] && node_auth_current_role(c->n, c->user, &role) != 0)
		role = NODE_ROLE_NONE;
	if (role < NODE_ROLE_WRITER)
		return send_failure(c, "Neo.ClientError.Security.Forbidden",
		                    "a write transaction needs the writer role "
		                    "(begin it in read mode to read)");
	if (!node_is_leader(c->n) && !c->from_relay)
		return bolt_relay_begin(c); /* run on the leader */
	if (!node_is_leader(c->n))          /* a relay's, to a stale leader */
		return send_failure(c, "Neo.ClientError.Cluster.NotALeader",
		                    "this node is not the leader");
	int rc = node_tx_begin(c->n, o->tx_timeout_ms, 0, &c->wtx, err);
	if (rc)
		return fail(c, rc, err);
	c->tx_failed_closed = c->tx_expired = 0;
	c->next_qid = 0;
	c->results_epoch = bolt_server_epoch(c);
	c->state = BOLT_S_TX;
	return send_simple(c, BOLT_SUCCESS);
}

static int on_begin(struct bolt_conn *c, const struct ps_message *m)
{
	struct bolt_opts o;
	if (parse_extra(c, m->n_fields ? m->fields[0] : NULL, &o))
		return 0;
	if (!o.read_mode)
		return begin_write(c, &o);
	if (o.bookmark &&
	    node_wait_applied(c->n, o.bookmark, NODE_WAIT_TIMEOUT_MS) != 0) {
		char msg[128];
		snprintf(msg, sizeof msg,
		         "this node has not applied bookmark %llu within %d ms",
		         (unsigned long long)o.bookmark, NODE_WAIT_TIMEOUT_MS);
		return send_failure(
		    c, "Neo.TransientError.Transaction.BookmarkTimeout", msg);
	}
	struct sto_store *s = node_store_acquire(c->n);
	if (sto_view_open(s, &c->tx_view) != 0) {
		node_store_release(c->n);
		c->tx_view = NULL;
		return fail(c, LORA_EIO, "cannot open a read view");
	}
	c->results_epoch = bolt_server_epoch(c);
	c->tx_life_end_ms = lora_now_ms() + node_tx_life_ms();
	c->tx_failed_closed = c->tx_expired = 0;
	c->next_qid = 0;
	c->state = BOLT_S_TX;
	return send_simple(c, BOLT_SUCCESS);
}

static int commit_write(struct bolt_conn *c, int commit)
{
	struct node_tx *t = c->wtx;
	char err[LORA_ERRMSG_BYTES];
	uint64_t index = 0;
	c->wtx = NULL;
	tx_end(c);
	c->state = BOLT_S_READY;
	if (!commit) {
		node_tx_rollback(t);
		return send_simple(c, BOLT_SUCCESS);
	}
	int rc = node_tx_commit(t, &index, err);
	if (rc)
		return fail(c, rc, err);
	rc = success_begin(c, 1);
	if (rc == 0)
		rc = put_bookmark(&c->msg, index);
	return rc ? rc : bolt_send_msg(c);
}

static int on_commit(struct bolt_conn *c, int commit)
{
	if (c->wtx)
		return commit_write(c, commit);
	if (c->tx_view == NULL) {
		c->state = BOLT_S_READY;
		return fail_closed(c, "transaction");
	}
	uint64_t index = sto_view_applied_index(c->tx_view);
	tx_end(c);
	c->state = BOLT_S_READY;
	if (!commit)
		return send_simple(c, BOLT_SUCCESS);
	int rc = success_begin(c, 1);
	if (rc == 0)
		rc = put_bookmark(&c->msg, index);
	return rc ? rc : bolt_send_msg(c);
}

/* ---- dispatch ---------------------------------------------------------------
 */

static int protocol_violation(struct bolt_conn *c, uint8_t tag)
{
	char m[96];
	snprintf(m, sizeof m, "message 0x%02X is not allowed in this state",
	         tag);
	return send_failure(c, "Neo.ClientError.Request.Invalid", m);
}

static int dispatch(struct bolt_conn *c, const struct ps_message *m)
{
	uint8_t t = m->tag;
	int v51 = c->version >= BOLT_V(5, 1);
	if (t == BOLT_GOODBYE) {
		bolt_session_client_left(c);
		return 1;
	}
	if (c->state == BOLT_S_CONNECTED) {
		if (t == BOLT_HELLO)
			return on_hello(c, m);
		c->state = BOLT_S_DEFUNCT;
		return protocol_violation(c, t);
	}
	if (c->state == BOLT_S_AUTH) {
		if (t == BOLT_LOGON && v51)
			return on_logon(c, m);
		c->state = BOLT_S_DEFUNCT;
		return protocol_violation(c, t);
	}
	bolt_session_expire(c, lora_now_ms());
	if (t == BOLT_RESET) {
		tx_end(c);
		c->tx_failed_closed = c->tx_expired = 0;
		c->state = BOLT_S_READY;
		return send_simple(c, BOLT_SUCCESS);
	}
	if (c->state == BOLT_S_FAILED)
		return send_simple(c, BOLT_IGNORED);
	if (c->relay_tx) /* a follower's write transaction */
		return bolt_relay_request(c, t);
	if (t == BOLT_PULL || t == BOLT_DISCARD)
		return c->state == BOLT_S_STREAMING || c->state == BOLT_S_TX
		           ? on_pull(c, m, t == BOLT_PULL)
		           : protocol_violation(c, t);
	if (c->state == BOLT_S_STREAMING)
		return protocol_violation(c, t);
	if (t == BOLT_RUN)
		return on_run(c, m);
	if (c->state == BOLT_S_TX)
		return t == BOLT_COMMIT || t == BOLT_ROLLBACK
		           ? on_commit(c, t == BOLT_COMMIT)
		           : protocol_violation(c, t);
	/* READY */
	switch (t) {
	case BOLT_BEGIN:
		return on_begin(c, m);
	case BOLT_ROUTE:
		return on_route(c);
	case BOLT_TELEMETRY:
		return send_simple(c, BOLT_SUCCESS);
	case BOLT_LOGOFF:
		if (!v51)
			break;
		c->state = BOLT_S_AUTH;
		bolt_relay_logout(c);
		c->user[0] = '\0';
		c->role = NODE_ROLE_NONE;
		return send_simple(c, BOLT_SUCCESS);
	default:
		break;
	}
	return protocol_violation(c, t);
}

static int zone_offset(const char *zone, int64_t secs, int local, int32_t *off)
{
	return qry_zone_offset(zone, secs, local, off);
}

int bolt_session_handle(struct bolt_conn *c, const uint8_t *p, size_t len)
{
	struct ps_dec d = {.zone = zone_offset};
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	int rc = ps_decode_message(p, len, &d, &m, err);
	if (rc == LORA_EINVAL || (rc == LORA_ELIMIT && len > 2)) {
		/* a well-framed request with a value we do not take: the
		 * request fails, the connection stays usable */
		if (c->state == BOLT_S_FAILED)
			return send_simple(c, BOLT_IGNORED);
		return fail(c, rc == LORA_EINVAL ? LORA_EPARAMS : rc, err);
	}
	if (rc) {
		c->state = BOLT_S_DEFUNCT;
		fail(c, rc, err);
		return 1;
	}
	c->req = p;
	c->req_len = len;
	rc = dispatch(c, &m);
	c->req = NULL;
	c->req_len = 0;
	ps_message_free(&m);
	/* a send that failed keeps its LORA_ECLOSED: the client left */
	return rc ? rc : c->state == BOLT_S_DEFUNCT;
}
