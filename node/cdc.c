/*
 * cdc.c - the change stream: GET /changes sends the committed mutation
 * batches from a bookmark on, read back from this node's raft log, as JSON
 * events, and then follows new commits as they are applied.
 *
 *   GET /changes?from=BOOKMARK[&until=INDEX][&labels=A,B][&types=T,U]
 *                [&format=ndjson|sse]
 *
 * One event per log entry that carries mutations (leader no-ops and
 * configuration changes are skipped):
 *   {"index": N, "term": T, "requestIds": [...], "changes": [...]}
 * with one change per mutation, in logical form (createNode, deleteNode,
 * setProperty, removeProperty, addLabel, removeLabel, createRelationship,
 * deleteRelationship, createIndex, dropIndex). Changes carry the values
 * they replaced ("old") when the leader that wrote the entry ran with
 * cdc_old_values: they travel in the log entry (mutation.proto), so every
 * node, and every resume, shows the same.
 *
 * The native protocol polls the same events (node_cdc_poll): a
 * ChangesRequest answers what follows its bookmark, waiting up to its
 * wait_ms for the first, and the bookmark to ask from next.
 *
 * Entries are read only up to the applied index, which is committed and
 * never rewritten. The raft loop may reopen the log (after a failed
 * write): readers hold n->raft->log_rw shared while they read it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "json.h"
#include "log.h"

#define CDC_SUBSCRIBERS_MAX   8          /* of NODE_HTTP_WORKERS (32) */
#define CDC_READ_BYTES        (4u << 20) /* log read per step */
#define CDC_WAIT_MS           500        /* wait for commits between checks */
#define CDC_KEEPALIVE_MS      15000      /* SSE comment when idle */
#define CDC_FILTER_NAMES_MAX  32
#define CDC_FILTER_NAME_BYTES 256
#define CDC_POLL_EVENTS_MAX   1000 /* events in one native answer */
/* an answer ends after the event that brings it to this many bytes of
 * JSON (it always holds one event, whatever its size) */
#define CDC_POLL_BYTES_MAX   (8u << 20)
#define CDC_POLL_WAIT_MS_MAX 10000 /* a native poll waits for one */
/* native polls waiting at once (each holds a native worker); more answer
 * at once, without waiting */
#define CDC_POLL_WAITERS_MAX 8

static atomic_int subscribers;
static atomic_int poll_waiters;

struct cdc_filter {
	char labels[CDC_FILTER_NAMES_MAX][CDC_FILTER_NAME_BYTES];
	char types[CDC_FILTER_NAMES_MAX][CDC_FILTER_NAME_BYTES];
	size_t nlabels, ntypes;
};

struct cdc_args {
	uint64_t from, until; /* until 0: for ever */
	int has_from;
	int sse;
	struct cdc_filter f;
};

/* ---- the request ------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into out (NUL-terminated); -1 when too long or
 * badly escaped. */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (k + 1 >= cap)
			return -1;
		out[k++] = c;
	}
	out[k] = 0;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE || v == ULLONG_MAX)
		return -1;
	*out = v;
	return 0;
}

/* A comma-separated list of names into names[]; -1 when too many/long. */
static int parse_names(const char *s, char (*names)[CDC_FILTER_NAME_BYTES],
                       size_t *n)
{
	while (*s) {
		size_t len = strcspn(s, ",");
		if (*n == CDC_FILTER_NAMES_MAX || len == 0 ||
		    len >= CDC_FILTER_NAME_BYTES)
			return -1;
		memcpy(names[*n], s, len);
		names[*n][len] = 0;
		(*n)++;
		s += len + (s[len] == ',');
	}
	return 0;
}

static int parse_param(struct cdc_args *a, const char *key, const char *val,
                       char *msg)
{
	if (!strcmp(key, "from") || !strcmp(key, "bookmark")) {
		a->has_from = 1;
		if (parse_u64(val, &a->from))
			return lora_errf(
			    LORA_EINVAL, msg,
			    "from must be a bookmark (a log index)");
	} else if (!strcmp(key, "until")) {
		if (parse_u64(val, &a->until))
			return lora_errf(LORA_EINVAL, msg,
			                 "until must be a log index");
	} else if (!strcmp(key, "labels")) {
		if (parse_names(val, a->f.labels, &a->f.nlabels))
			return lora_errf(LORA_EINVAL, msg,
			                 "labels: at most %d names of under %d "
			                 "bytes, comma-separated",
			                 CDC_FILTER_NAMES_MAX,
			                 CDC_FILTER_NAME_BYTES);
	} else if (!strcmp(key, "types")) {
		if (parse_names(val, a->f.types, &a->f.ntypes))
			return lora_errf(LORA_EINVAL, msg,
			                 "types: at most %d names of under %d "
			                 "bytes, comma-separated",
			                 CDC_FILTER_NAMES_MAX,
			                 CDC_FILTER_NAME_BYTES);
	} else if (!strcmp(key, "format")) {
		if (strcmp(val, "ndjson") && strcmp(val, "sse"))
			return lora_errf(LORA_EINVAL, msg,
			                 "format is ndjson or sse");
		a->sse = !strcmp(val, "sse");
	} else {
		return lora_errf(LORA_EINVAL, msg,
		                 "unknown parameter `%s` (from, until, labels, "
		                 "types, format)",
		                 key);
	}
	return 0;
}

static int parse_args(const char *uri, struct cdc_args *a, char *msg)
{
	memset(a, 0, sizeof *a);
	const char *q = strchr(uri, '?');
	while (q && *q) {
		q++;
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		char key[32], val[CDC_FILTER_NAMES_MAX * CDC_FILTER_NAME_BYTES];
		if (!eq || url_decode(q, (size_t)(eq - q), key, sizeof key) ||
		    url_decode(eq + 1, len - (size_t)(eq + 1 - q), val,
		               sizeof val))
			return lora_errf(LORA_EINVAL, msg,
			                 "bad query string parameter");
		int rc = parse_param(a, key, val, msg);
		if (rc)
			return rc;
		q += len;
	}
	return 0;
}

/* ---- filtering --------------------------------------------------------- */

static int name_in(char (*names)[CDC_FILTER_NAME_BYTES], size_t n,
                   const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (s && !strcmp(names[i], s))
			return 1;
	return 0;
}

/* Labels of node id now (what the filter goes by for a change that does
 * not carry them); 1 when it matches the filter or cannot be told (a node
 * deleted since: a subscriber is never denied a change it asked for). */
static int node_matches(struct sto_view *v, const struct cdc_filter *f,
                        uint64_t id)
{
	if (!f->nlabels)
		return !f->ntypes;
	Lora__NodeValue *nv = NULL;
	if (!v || sto_view_node_ex(v, id, STO_NODE_NO_VECTORS, &nv, NULL))
		return 1;
	int hit = 0;
	for (size_t i = 0; i < nv->n_labels && !hit; i++)
		hit = name_in((char(*)[CDC_FILTER_NAME_BYTES])f->labels,
		              f->nlabels, nv->labels[i]);
	lora__node_value__free_unpacked(nv, &lora_pb_allocator);
	return hit;
}

static int edge_matches(struct sto_view *v, const struct cdc_filter *f,
                        uint64_t id)
{
	if (!f->ntypes)
		return !f->nlabels;
	Lora__RelValue *rv = NULL;
	if (!v || sto_view_edge(v, id, &rv))
		return 1;
	int hit = name_in((char(*)[CDC_FILTER_NAME_BYTES])f->types, f->ntypes,
	                  rv->type);
	lora__rel_value__free_unpacked(rv, &lora_pb_allocator);
	return hit;
}

static int labels_match(const struct cdc_filter *f, char **labels, size_t n)
{
	if (!f->nlabels)
		return !f->ntypes;
	for (size_t i = 0; i < n; i++)
		if (name_in((char(*)[CDC_FILTER_NAME_BYTES])f->labels,
		            f->nlabels, labels[i]))
			return 1;
	return 0;
}

static int keep(struct sto_view *v, const struct cdc_filter *f,
                const Lora__Mutation *m)
{
	/* the graph and its schema only: the system keyspace (users, the
	 * cluster secret) never leaves through the stream */
	if (m->op_case < LORA__MUTATION__OP_CREATE_NODE ||
	    m->op_case > LORA__MUTATION__OP_DROP_INDEX)
		return 0;
	if (!f->nlabels && !f->ntypes)
		return 1;
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE:
		return labels_match(f, m->create_node->labels,
		                    m->create_node->n_labels);
	case LORA__MUTATION__OP_ADD_LABEL:
		return labels_match(f, &m->add_label->label, 1) ||
		       node_matches(v, f, m->add_label->node_id);
	case LORA__MUTATION__OP_REMOVE_LABEL:
		return labels_match(f, &m->remove_label->label, 1) ||
		       node_matches(v, f, m->remove_label->node_id);
	case LORA__MUTATION__OP_DELETE_NODE:
		if (m->delete_node->old) /* its labels then */
			return labels_match(f, m->delete_node->old->labels,
			                    m->delete_node->old->n_labels);
		return node_matches(v, f, m->delete_node->id);
	case LORA__MUTATION__OP_CREATE_EDGE:
		return !f->ntypes
		           ? !f->nlabels
		           : name_in((char(*)[CDC_FILTER_NAME_BYTES])f->types,
		                     f->ntypes, m->create_edge->type);
	case LORA__MUTATION__OP_DELETE_EDGE:
		if (m->delete_edge->old && f->ntypes) /* its type then */
			return name_in((char(*)[CDC_FILTER_NAME_BYTES])f->types,
			               f->ntypes, m->delete_edge->old->type);
		if (m->delete_edge->old)
			return !f->nlabels;
		return edge_matches(v, f, m->delete_edge->id);
	case LORA__MUTATION__OP_SET_PROPERTY:
		return m->set_property->entity == LORA__ENTITY_KIND__ENTITY_NODE
		           ? node_matches(v, f, m->set_property->id)
		           : edge_matches(v, f, m->set_property->id);
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		return m->remove_property->entity ==
		               LORA__ENTITY_KIND__ENTITY_NODE
		           ? node_matches(v, f, m->remove_property->id)
		           : edge_matches(v, f, m->remove_property->id);
	case LORA__MUTATION__OP_SET_VECTOR:
		return m->set_vector->entity == LORA__ENTITY_KIND__ENTITY_NODE
		           ? node_matches(v, f, m->set_vector->owner_id)
		           : edge_matches(v, f, m->set_vector->owner_id);
	case LORA__MUTATION__OP_REMOVE_VECTOR:
		return m->remove_vector->entity ==
		               LORA__ENTITY_KIND__ENTITY_NODE
		           ? node_matches(v, f, m->remove_vector->owner_id)
		           : edge_matches(v, f, m->remove_vector->owner_id);
	default:
		return 0; /* schema changes pass only unfiltered */
	}
}

/* ---- events ------------------------------------------------------------ */

static const char *entity_name(Lora__EntityKind k)
{
	return k == LORA__ENTITY_KIND__ENTITY_NODE ? "node" : "relationship";
}

static json_t *props_json(Lora__Property **p, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, p[i]->key,
		                    node_json_from_value(p[i]->value));
	return o;
}

static json_t *strings_json(char **s, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(s[i]));
	return a;
}

static json_t *vector_json(Lora__Vector *vec)
{
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	v.vector_value = vec;
	return node_json_from_value(&v);
}

/* A property change; old (the value replaced, a null Value when there
 * was none) is NULL when the entry does not keep old values. */
static json_t *prop_change(const char *op, Lora__EntityKind e, uint64_t id,
                           const char *key, json_t *value,
                           const Lora__Value *old)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "op", op, "entity",
	                      entity_name(e), "id", (json_int_t)id, "key", key);
	if (o && value)
		json_object_set_new(o, "value", value);
	else
		json_decref(value);
	if (o && old)
		json_object_set_new(o, "old", node_json_from_value(old));
	return o;
}

/* Adds "old" (what a deleted entity held) to change o when kept. */
static json_t *with_old(json_t *o, const Lora__OldEntity *old, int node)
{
	if (!o || !old)
		return o;
	json_t *j =
	    node ? json_pack("{s:o, s:o}", "labels",
	                     strings_json(old->labels, old->n_labels),
	                     "properties",
	                     props_json(old->properties, old->n_properties))
	         : json_pack("{s:s, s:I, s:I, s:o}", "type",
	                     old->type ? old->type : "", "startId",
	                     (json_int_t)old->from_id, "endId",
	                     (json_int_t)old->to_id, "properties",
	                     props_json(old->properties, old->n_properties));
	if (!j || json_object_set_new(o, "old", j)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *change_json(const Lora__Mutation *m)
{
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE: {
		const Lora__CreateNode *c = m->create_node;
		return json_pack("{s:s, s:I, s:o, s:o}", "op", "createNode",
		                 "id", (json_int_t)c->id, "labels",
		                 strings_json(c->labels, c->n_labels),
		                 "properties",
		                 props_json(c->properties, c->n_properties));
	}
	case LORA__MUTATION__OP_DELETE_NODE:
		return with_old(json_pack("{s:s, s:I, s:b}", "op", "deleteNode",
		                          "id", (json_int_t)m->delete_node->id,
		                          "detach", m->delete_node->detach),
		                m->delete_node->old, 1);
	case LORA__MUTATION__OP_SET_PROPERTY: {
		const Lora__Value *val = m->set_property->value;
		int null = !val ||
		           val->kind_case == LORA__VALUE__KIND__NOT_SET ||
		           val->kind_case == LORA__VALUE__KIND_NULL_VALUE;
		return prop_change(null ? "removeProperty" : "setProperty",
		                   m->set_property->entity, m->set_property->id,
		                   m->set_property->key,
		                   null ? NULL : node_json_from_value(val),
		                   m->set_property->old_value);
	}
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		return prop_change("removeProperty", m->remove_property->entity,
		                   m->remove_property->id,
		                   m->remove_property->key, NULL,
		                   m->remove_property->old_value);
	case LORA__MUTATION__OP_ADD_LABEL:
	case LORA__MUTATION__OP_REMOVE_LABEL: {
		int add = m->op_case == LORA__MUTATION__OP_ADD_LABEL;
		const Lora__AddLabel *a = m->add_label;
		const Lora__RemoveLabel *r = m->remove_label;
		return json_pack("{s:s, s:I, s:s}", "op",
		                 add ? "addLabel" : "removeLabel", "id",
		                 (json_int_t)(add ? a->node_id : r->node_id),
		                 "label", add ? a->label : r->label);
	}
	case LORA__MUTATION__OP_CREATE_EDGE: {
		const Lora__CreateEdge *c = m->create_edge;
		return json_pack("{s:s, s:I, s:s, s:I, s:I, s:o}", "op",
		                 "createRelationship", "id", (json_int_t)c->id,
		                 "type", c->type, "startId",
		                 (json_int_t)c->from_id, "endId",
		                 (json_int_t)c->to_id, "properties",
		                 props_json(c->properties, c->n_properties));
	}
	case LORA__MUTATION__OP_DELETE_EDGE:
		return with_old(json_pack("{s:s, s:I}", "op",
		                          "deleteRelationship", "id",
		                          (json_int_t)m->delete_edge->id),
		                m->delete_edge->old, 0);
	case LORA__MUTATION__OP_SET_VECTOR:
		return prop_change("setProperty", m->set_vector->entity,
		                   m->set_vector->owner_id, m->set_vector->key,
		                   vector_json(m->set_vector->vector), NULL);
	case LORA__MUTATION__OP_REMOVE_VECTOR:
		return prop_change("removeProperty", m->remove_vector->entity,
		                   m->remove_vector->owner_id,
		                   m->remove_vector->key, NULL, NULL);
	case LORA__MUTATION__OP_CREATE_INDEX:
		return json_pack("{s:s, s:s, s:s, s:o}", "op", "createIndex",
		                 "name", m->create_index->name, "label",
		                 m->create_index->label, "properties",
		                 strings_json(m->create_index->properties,
		                              m->create_index->n_properties));
	case LORA__MUTATION__OP_DROP_INDEX:
		return json_pack("{s:s, s:s}", "op", "dropIndex", "name",
		                 m->drop_index->name);
	default:
		return json_pack("{s:s}", "op", "unknown");
	}
}

/* The event for one entry, or NULL when nothing in it passes the filter
 * (or it carries no mutations). *err set when out of memory. */
static json_t *entry_event(struct lnode *n, const struct sto_log_entry *e,
                           const struct cdc_filter *f, int *err)
{
	*err = 0;
	if (e->type != LORA__ENTRY_TYPE__ENTRY_NORMAL || e->len == 0)
		return NULL;
	Lora__MutationBatch *b = NULL;
	char msg[LORA_ERRMSG_BYTES];
	int rc = node_batch_decode(e->data, e->len, &b, msg);
	if (rc == LORA_ENOMEM)
		*err = rc;
	if (rc)
		return NULL; /* else refused by apply on every node as well */
	/* the view says whether apply rejected the batch (nothing of it
	 * kept) and gives the labels and types the filters go by */
	struct sto_store *s = node_store_acquire(n);
	struct sto_view *v = NULL;
	int rejected = 0;
	if (!s || sto_view_open(s, &v) ||
	    sto_view_rejected(v, e->index, &rejected))
		*err = LORA_EIO;
	json_t *changes = *err || rejected ? NULL : json_array();
	for (size_t i = 0; changes && i < b->n_mutations; i++)
		if (keep(v, f, b->mutations[i]) &&
		    json_array_append_new(changes,
		                          change_json(b->mutations[i])))
			*err = LORA_ENOMEM;
	if (v)
		sto_view_close(v);
	node_store_release(n);
	if (*err || rejected) {
		json_decref(changes);
		lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
		return NULL;
	}
	json_t *ev = NULL;
	if (!changes)
		*err = LORA_ENOMEM;
	else if (json_array_size(changes))
		ev = json_pack("{s:I, s:I, s:o, s:O}", "index",
		               (json_int_t)e->index, "term",
		               (json_int_t)e->term, "requestIds",
		               strings_json(b->request_ids, b->n_request_ids),
		               "changes", changes);
	if (changes && json_array_size(changes) && !ev)
		*err = LORA_ENOMEM;
	json_decref(changes);
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
	return ev;
}

/* ---- the stream -------------------------------------------------------- */

struct cdc_stream {
	struct lnode *n;
	struct node_http_ex *x;
	const struct cdc_args *a;
	uint64_t next; /* the next index to read */
	struct lora_buf out;
	uint64_t sent_ms;
};

static int send_event(struct cdc_stream *cs, uint64_t index, json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!text)
		return LORA_ENOMEM;
	lora_buf_reset(&cs->out);
	if (cs->a->sse)
		lora_buf_printf(&cs->out,
		                "id: %llu\nevent: change\ndata: %s\n\n",
		                (unsigned long long)index, text);
	else
		lora_buf_printf(&cs->out, "%s\n", text);
	free(text);
	if (lora_buf_error(&cs->out))
		return lora_buf_error(&cs->out);
	cs->sent_ms = lora_now_ms();
	return node_http_stream_write(cs->x, cs->out.data, cs->out.len);
}

/* Whether the log's first entry is now after `index`. */
static int compacted_past(struct lnode *n, uint64_t index)
{
	pthread_rwlock_rdlock(&n->raft->log_rw);
	uint64_t first = n->raft->log ? sto_log_first_index(n->raft->log) : 0;
	pthread_rwlock_unlock(&n->raft->log_rw);
	return first > index;
}

/* What to do with each event read (send it, or keep it): 0 to go on,
 * CDC_EMIT_FULL to end the read after it (an answer big enough),
 * CDC_EMIT_BEFORE to end it before it (not emitted: the next read starts
 * at it). */
#define CDC_EMIT_FULL   1
#define CDC_EMIT_BEFORE 2
typedef int (*cdc_emit_fn)(void *arg, uint64_t index, json_t *ev);

/* Reads the entries in [*next, hi] and hands their events to emit (which
 * consumes them), *next moving past each entry read; stops early after
 * max_events events (0: no limit). LORA_ENOTFOUND when the log no longer
 * holds *next (compacted into a checkpoint). */
static int read_range(struct lnode *n, uint64_t *next, uint64_t hi,
                      const struct cdc_filter *f, size_t max_events,
                      cdc_emit_fn emit, void *arg)
{
	size_t events = 0;
	while (*next <= hi && (max_events == 0 || events < max_events)) {
		struct sto_log_entry *es = NULL;
		size_t k = 0;
		pthread_rwlock_rdlock(&n->raft->log_rw);
		int rc = n->raft->log
		             ? sto_log_entries(n->raft->log, *next, hi + 1,
		                               CDC_READ_BYTES, &es, &k)
		             : LORA_EUNAVAILABLE;
		pthread_rwlock_unlock(&n->raft->log_rw);
		if (rc == LORA_ECORRUPT && compacted_past(n, *next))
			rc = LORA_ENOTFOUND; /* compaction overtook the read */
		if (rc)
			return rc;
		for (size_t i = 0; !rc && i < k; i++) {
			if (max_events && events == max_events)
				break;
			int err;
			json_t *ev = entry_event(n, &es[i], f, &err);
			rc = err ? err : ev ? emit(arg, es[i].index, ev) : 0;
			if (rc == CDC_EMIT_BEFORE)
				break;
			events += ev != NULL;
			*next = es[i].index + 1;
		}
		sto_log_entries_free(es, k);
		if (rc == CDC_EMIT_FULL || rc == CDC_EMIT_BEFORE)
			return 0;
		if (rc)
			return rc;
		if (k == 0)
			return LORA_ENOTFOUND;
	}
	return 0;
}

static int emit_http(void *arg, uint64_t index, json_t *ev)
{
	return send_event(arg, index, ev);
}

/* Reads and sends the entries in [cs->next, hi]. */
static int send_range(struct cdc_stream *cs, uint64_t hi)
{
	return read_range(cs->n, &cs->next, hi, &cs->a->f, 0, emit_http, cs);
}

/* Waits (at most CDC_WAIT_MS) for the applied index to pass `seen`. */
static uint64_t wait_applied(struct lnode *n, uint64_t seen)
{
	node_wait_applied(n, seen + 1, CDC_WAIT_MS);
	return node_applied_index(n);
}

static int follow(struct cdc_stream *cs)
{
	struct lnode *n = cs->n;
	uint64_t stop = cs->a->until ? cs->a->until : UINT64_MAX;
	for (;;) {
		uint64_t applied = node_applied_index(n);
		uint64_t hi = applied < stop ? applied : stop;
		int rc = send_range(cs, hi);
		if (rc)
			return rc;
		if (cs->next > stop)
			return 0;
		if (atomic_load(&n->stopping))
			return LORA_EUNAVAILABLE;
		if (node_http_client_gone(cs->x))
			return LORA_ECLOSED;
		if (cs->a->sse &&
		    lora_now_ms() - cs->sent_ms >= CDC_KEEPALIVE_MS) {
			cs->sent_ms = lora_now_ms();
			rc = node_http_stream_write(cs->x, ": keepalive\n\n",
			                            13);
			if (rc)
				return rc;
		}
		wait_applied(n, hi);
	}
}

static int stream_changes(struct lnode *n, struct node_http_ex *x,
                          const struct cdc_args *a)
{
	uint64_t applied = node_applied_index(n);
	struct cdc_stream cs = {.n = n, .x = x, .a = a};
	cs.sent_ms = lora_now_ms();
	cs.next = (a->has_from ? a->from : applied) + 1;
	char from[32];
	snprintf(from, sizeof from, "%llu", (unsigned long long)(cs.next - 1));
	int rc = node_http_stream_start(
	    x, 200, a->sse ? "text/event-stream" : "application/x-ndjson", from,
	    0, "", 0);
	if (!rc)
		rc = follow(&cs);
	if (rc == LORA_ENOTFOUND || rc == LORA_ENOMEM) {
		/* the answer has begun: the reason goes in the stream */
		json_t *ev = json_pack(
		    "{s:{s:s, s:s}}", "error", "code", lora_err_code(rc),
		    "message",
		    rc == LORA_ENOMEM
		        ? "out of memory"
		        : "the log no longer holds the changes after this "
		          "bookmark: they were compacted into a checkpoint");
		char *t = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
		json_decref(ev);
		lora_buf_reset(&cs.out);
		if (t)
			lora_buf_printf(
			    &cs.out,
			    a->sse ? "event: error\ndata: %s\n\n" : "%s\n", t);
		free(t);
		rc = node_http_stream_end(x, cs.out.data ? cs.out.data : "",
		                          cs.out.len);
	} else if (!rc) {
		rc = node_http_stream_end(x, "", 0);
	} else {
		node_http_abort(x);
	}
	lora_buf_free(&cs.out);
	return rc == 0;
}

int node_changes_route(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *r)
{
	(void)r;
	struct cdc_args a;
	char msg[LORA_ERRMSG_BYTES];
	int rc = parse_args(node_http_uri(x), &a, msg);
	if (rc) {
		node_http_reply_error(x, rc, msg);
		return 0;
	}
	/* a bookmark the log has compacted away is answered before the
	 * stream begins */
	pthread_rwlock_rdlock(&n->raft->log_rw);
	uint64_t first = n->raft->log ? sto_log_first_index(n->raft->log) : 0;
	pthread_rwlock_unlock(&n->raft->log_rw);
	if (a.has_from && a.from + 1 < first) {
		snprintf(
		    msg, sizeof msg,
		    "the log holds changes from index %llu on; bookmark %llu "
		    "is older (compacted into a checkpoint): start from a "
		    "backup or a later bookmark",
		    (unsigned long long)first, (unsigned long long)a.from);
		node_http_reply_error(x, LORA_ENOTFOUND, msg);
		return 0;
	}
	if (atomic_fetch_add(&subscribers, 1) >= CDC_SUBSCRIBERS_MAX) {
		atomic_fetch_sub(&subscribers, 1);
		snprintf(msg, sizeof msg,
		         "this node already serves %d change streams",
		         CDC_SUBSCRIBERS_MAX);
		node_http_reply_error(x, LORA_EUNAVAILABLE, msg);
		return 0;
	}
	int ok = stream_changes(n, x, &a);
	atomic_fetch_sub(&subscribers, 1);
	return ok;
}

/* ---- the native protocol's ChangesRequest ------------------------------ */

/* An answer must be one message the C client takes
 * (LORA_CLIENT_MSG_BYTES_MAX, 64 MiB): its events' JSON stays under this.
 * One commit's event can be larger (a statement's entry may pack to 60
 * MiB, its JSON 3-6 times that): the events before it go in an answer of
 * their own, and the poll for it is LORA_ELIMIT, naming the HTTP stream,
 * which sends any event. The client retried such an answer, lost to nng's
 * size check, until it gave up. */
#define CDC_NATIVE_ANSWER_BYTES_MAX (60u << 20)

struct cdc_poll {
	Lora__Response *resp;
	size_t bytes, cap;
	uint64_t big_index; /* an event over cap alone, and its size */
	size_t big_bytes;
};

/* The answer's byte cap: CDC_NATIVE_ANSWER_BYTES_MAX, or with the test
 * hook LORA_CDC_NATIVE_BYTES_TESTING=N (compiled with LORA_TEST_HOOKS), N,
 * so that a test reaches it without a 60 MiB event. */
static size_t native_cap(void)
{
#ifdef LORA_TEST_HOOKS
	const char *e = getenv("LORA_CDC_NATIVE_BYTES_TESTING");
	if (e && atol(e) > 0)
		return (size_t)atol(e);
#endif
	return CDC_NATIVE_ANSWER_BYTES_MAX;
}

static int emit_native(void *arg, uint64_t index, json_t *ev)
{
	struct cdc_poll *p = arg;
	Lora__Response *r = p->resp;
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (text == NULL)
		return LORA_ENOMEM;
	size_t len = strlen(text);
	if (len > p->cap - p->bytes) {
		free(text);
		if (r->n_events)
			return CDC_EMIT_BEFORE;
		p->big_index = index;
		p->big_bytes = len;
		return LORA_ELIMIT;
	}
	char **ev2 = lora_realloc(r->events, (r->n_events + 1) * sizeof *ev2);
	uint64_t *ix2 = ev2 ? lora_realloc(r->event_index,
	                                   (r->n_event_index + 1) * sizeof *ix2)
	                    : NULL;
	if (ev2)
		r->events = ev2;
	if (ix2)
		r->event_index = ix2;
	char *copy = ix2 ? lora_strdup(text) : NULL;
	free(text);
	if (copy == NULL)
		return LORA_ENOMEM;
	r->events[r->n_events++] = copy;
	r->event_index[r->n_event_index++] = index;
	p->bytes += len;
	return p->bytes >= CDC_POLL_BYTES_MAX ? CDC_EMIT_FULL : 0;
}

/* Copies the request's filter names; -1 when too many or too long. */
static int poll_filter(const Lora__ChangesRequest *q, struct cdc_filter *f)
{
	memset(f, 0, sizeof *f);
	if (q->n_labels > CDC_FILTER_NAMES_MAX ||
	    q->n_types > CDC_FILTER_NAMES_MAX)
		return -1;
	for (size_t i = 0; i < q->n_labels; i++)
		if (snprintf(f->labels[f->nlabels++], CDC_FILTER_NAME_BYTES,
		             "%s", q->labels[i]) >= CDC_FILTER_NAME_BYTES)
			return -1;
	for (size_t i = 0; i < q->n_types; i++)
		if (snprintf(f->types[f->ntypes++], CDC_FILTER_NAME_BYTES, "%s",
		             q->types[i]) >= CDC_FILTER_NAME_BYTES)
			return -1;
	return 0;
}

void node_cdc_poll(struct lnode *n, const Lora__ChangesRequest *q,
                   Lora__Response *resp)
{
	struct cdc_filter f;
	char msg[LORA_ERRMSG_BYTES];
	uint64_t from = node_applied_index(n), until = 0;
	if (poll_filter(q, &f) != 0 ||
	    (q->from && q->from[0] && parse_u64(q->from, &from)) ||
	    (q->until && q->until[0] && parse_u64(q->until, &until))) {
		node_resp_error(resp, LORA_EINVAL,
		                "from and until are log indexes; at most 32 "
		                "labels and types of under 256 bytes",
		                0, 0);
		return;
	}
	pthread_rwlock_rdlock(&n->raft->log_rw);
	uint64_t first = n->raft->log ? sto_log_first_index(n->raft->log) : 0;
	pthread_rwlock_unlock(&n->raft->log_rw);
	uint64_t next = from + 1;
	int rc = from + 1 < first ? LORA_ENOTFOUND : 0;
	uint32_t wait_ms = q->wait_ms < CDC_POLL_WAIT_MS_MAX
	                       ? q->wait_ms
	                       : CDC_POLL_WAIT_MS_MAX;
	size_t max = q->max_events && q->max_events < CDC_POLL_EVENTS_MAX
	                 ? q->max_events
	                 : CDC_POLL_EVENTS_MAX;
	if (atomic_fetch_add(&poll_waiters, 1) >= CDC_POLL_WAITERS_MAX)
		wait_ms = 0;
	uint64_t deadline = lora_now_ms() + wait_ms;
	struct cdc_poll p = {.resp = resp, .cap = native_cap()};
	while (rc == 0) {
		uint64_t applied = node_applied_index(n);
		uint64_t hi = until && until < applied ? until : applied;
		rc = read_range(n, &next, hi, &f, max, emit_native, &p);
		if (rc || resp->n_events || (until && next > until) ||
		    lora_now_ms() >= deadline || atomic_load(&n->stopping))
			break;
		wait_applied(n, hi);
	}
	atomic_fetch_sub(&poll_waiters, 1);
	if (rc == LORA_ENOTFOUND)
		snprintf(msg, sizeof msg,
		         "the log holds changes from index %llu on; bookmark "
		         "%llu is older (compacted into a checkpoint): start "
		         "from a backup or a later bookmark",
		         (unsigned long long)first, (unsigned long long)from);
	if (rc == LORA_ELIMIT && p.big_bytes)
		snprintf(msg, sizeof msg,
		         "the change event at index %llu is %zu bytes of JSON, "
		         "more than one native answer carries (%zu): read it "
		         "over HTTP, GET /changes?from=%llu&until=%llu",
		         (unsigned long long)p.big_index, p.big_bytes, p.cap,
		         (unsigned long long)p.big_index - 1,
		         (unsigned long long)p.big_index);
	if (rc)
		node_resp_error(resp, rc,
		                rc == LORA_ENOTFOUND ||
		                        (rc == LORA_ELIMIT && p.big_bytes)
		                    ? msg
		                    : lora_strerror(rc),
		                0, 0);
	else
		node_resp_set_bookmark(resp, next - 1);
}
