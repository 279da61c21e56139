/* metrics.c - request counters, latency histograms, streamed rows, the
 * statements' memory budget and Raft gauges in the Prometheus text
 * format. */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "node_int.h"

#define NODE_METRIC_APIS_MAX 24
#define NODE_METRIC_BUCKETS  12

static const double bucket_s[NODE_METRIC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

struct api_metric {
	const char *name; /* static string */
	uint64_t ok, err;
	uint64_t buckets[NODE_METRIC_BUCKETS];
	uint64_t count;
	double sum_s;
};

struct node_metrics {
	pthread_mutex_t mu;
	struct api_metric apis[NODE_METRIC_APIS_MAX];
	int n_apis;
	uint64_t ckpt_count;
	double ckpt_sum_s, ckpt_last_s;
	/* statements and their rows (atomics: counted off the lock) */
	_Atomic uint64_t rows_streamed[NODE_API_COUNT];
	_Atomic uint64_t client_gone[NODE_API_COUNT];
	_Atomic uint64_t cursors_idle_closed;
	_Atomic int64_t statements_open;
};

static const char *const api_names[NODE_API_COUNT] = {"http", "native", "bolt"};

int node_metrics_new(struct node_metrics **out)
{
	struct node_metrics *m = lora_calloc(1, sizeof *m);
	if (m == NULL)
		return LORA_ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void node_metrics_free(struct node_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	lora_free(m);
}

void node_metrics_request(struct lnode *n, const char *api, int ok, uint64_t ns)
{
	struct node_metrics *m = n->metrics;
	double s = (double)ns / 1e9;
	pthread_mutex_lock(&m->mu);
	struct api_metric *a = NULL;
	for (int i = 0; i < m->n_apis; i++)
		if (!strcmp(m->apis[i].name, api))
			a = &m->apis[i];
	if (a == NULL && m->n_apis < NODE_METRIC_APIS_MAX) {
		a = &m->apis[m->n_apis++];
		a->name = api;
	}
	if (a) {
		if (ok)
			a->ok++;
		else
			a->err++;
		for (int b = 0; b < NODE_METRIC_BUCKETS; b++)
			if (s <= bucket_s[b])
				a->buckets[b]++;
		a->count++;
		a->sum_s += s;
	}
	pthread_mutex_unlock(&m->mu);
}

void node_metrics_checkpoint(struct lnode *n, uint64_t ns)
{
	struct node_metrics *m = n->metrics;
	pthread_mutex_lock(&m->mu);
	m->ckpt_count++;
	m->ckpt_last_s = (double)ns / 1e9;
	m->ckpt_sum_s += m->ckpt_last_s;
	pthread_mutex_unlock(&m->mu);
}

void node_metrics_rows_streamed(struct lnode *n, int api, uint64_t rows)
{
	if (rows)
		atomic_fetch_add(&n->metrics->rows_streamed[api], rows);
}

void node_metrics_client_gone(struct lnode *n, int api)
{
	atomic_fetch_add(&n->metrics->client_gone[api], 1);
}

void node_metrics_cursor_idle(struct lnode *n)
{
	atomic_fetch_add(&n->metrics->cursors_idle_closed, 1);
}

void node_metrics_statements_open(struct lnode *n, int delta)
{
	atomic_fetch_add(&n->metrics->statements_open, delta);
}

/* Streamed rows, stopped statements and the memory budget. */
static void statements_text(struct lora_buf *b, struct lnode *n)
{
	struct node_metrics *m = n->metrics;
	lora_buf_puts(b, "# TYPE lora_rows_streamed_total counter\n");
	for (int i = 0; i < NODE_API_COUNT; i++)
		lora_buf_printf(
		    b, "lora_rows_streamed_total{api=\"%s\"} %llu\n",
		    api_names[i],
		    (unsigned long long)atomic_load(&m->rows_streamed[i]));
	lora_buf_puts(b, "# TYPE lora_statements_client_gone_total counter\n");
	for (int i = 0; i < NODE_API_COUNT; i++)
		lora_buf_printf(
		    b, "lora_statements_client_gone_total{api=\"%s\"} %llu\n",
		    api_names[i],
		    (unsigned long long)atomic_load(&m->client_gone[i]));
	const struct qry_budget *qb = &n->qry_budget;
	lora_buf_printf(
	    b,
	    "# TYPE lora_cursors_idle_closed_total counter\n"
	    "lora_cursors_idle_closed_total %llu\n"
	    "# TYPE lora_statements_open gauge\n"
	    "lora_statements_open %lld\n"
	    "# TYPE lora_query_memory_used_bytes gauge\n"
	    "lora_query_memory_used_bytes %llu\n"
	    "# TYPE lora_query_memory_max_bytes gauge\n"
	    "lora_query_memory_max_bytes %llu\n"
	    "# TYPE lora_query_memory_refused_total counter\n"
	    "lora_query_memory_refused_total %llu\n"
	    "# TYPE lora_peer_refused_total counter\n"
	    "lora_peer_refused_total %llu\n",
	    (unsigned long long)atomic_load(&m->cursors_idle_closed),
	    (long long)atomic_load(&m->statements_open),
	    (unsigned long long)atomic_load(&qb->used_bytes),
	    (unsigned long long)qb->max_bytes,
	    (unsigned long long)atomic_load(&qb->refused),
	    (unsigned long long)node_peer_refused_total());
	if (n->proxy) {
		struct node_proxy_stats ps;
		node_proxy_stats(n->proxy, &ps);
		lora_buf_printf(
		    b,
		    "# TYPE lora_proxy_requests_total counter\n"
		    "lora_proxy_requests_total %llu\n"
		    "# TYPE lora_proxy_batches_total counter\n"
		    "lora_proxy_batches_total %llu\n"
		    "# TYPE lora_proxy_batched_writes_total counter\n"
		    "lora_proxy_batched_writes_total %llu\n"
		    "# TYPE lora_proxy_batches_refused_total counter\n"
		    "lora_proxy_batches_refused_total %llu\n"
		    "# TYPE lora_proxy_batching_off gauge\n"
		    "lora_proxy_batching_off{refusal=\"transient\"} %d\n"
		    "lora_proxy_batching_off{refusal=\"lasting\"} %d\n",
		    (unsigned long long)ps.sent, (unsigned long long)ps.batches,
		    (unsigned long long)ps.batched,
		    (unsigned long long)ps.batch_refused, ps.batching_off == 1,
		    ps.batching_off == 2);
	}
	struct node_http *h = __atomic_load_n(&n->http, __ATOMIC_ACQUIRE);
	if (h) {
		struct node_http_stats hs;
		node_http_stats(h, &hs);
		lora_buf_printf(
		    b,
		    "# TYPE lora_http_requests_lingered_total counter\n"
		    "lora_http_requests_lingered_total %llu\n",
		    (unsigned long long)hs.lingered);
	}
	uint64_t vg, ve;
	qry_vector_search_counts(&vg, &ve);
	lora_buf_printf(b,
	                "# TYPE lora_vector_searches_total counter\n"
	                "lora_vector_searches_total{path=\"graph\"} %llu\n"
	                "lora_vector_searches_total{path=\"exact\"} %llu\n",
	                (unsigned long long)vg, (unsigned long long)ve);
	lora_buf_printf(b,
	                "# TYPE lora_auth_password_checks_total counter\n"
	                "lora_auth_password_checks_total %llu\n",
	                (unsigned long long)node_auth_checks_total(n));
	lora_buf_printf(b,
	                "# TYPE lora_auth_memo_hits_total counter\n"
	                "lora_auth_memo_hits_total %llu\n",
	                (unsigned long long)node_http_auth_memo_hits_total());
}

static void api_text(struct lora_buf *b, const struct api_metric *a)
{
	lora_buf_printf(b,
	                "lora_requests_total{api=\"%s\",result=\"ok\"} %llu\n",
	                a->name, (unsigned long long)a->ok);
	lora_buf_printf(
	    b, "lora_requests_total{api=\"%s\",result=\"error\"} %llu\n",
	    a->name, (unsigned long long)a->err);
	for (int k = 0; k < NODE_METRIC_BUCKETS; k++)
		lora_buf_printf(
		    b,
		    "lora_request_seconds_bucket{api=\"%s\",le=\"%g\"} "
		    "%llu\n",
		    a->name, bucket_s[k], (unsigned long long)a->buckets[k]);
	lora_buf_printf(b,
	                "lora_request_seconds_bucket{api=\"%s\",le=\"+Inf\"} "
	                "%llu\n",
	                a->name, (unsigned long long)a->count);
	lora_buf_printf(b, "lora_request_seconds_sum{api=\"%s\"} %.6f\n",
	                a->name, a->sum_s);
	lora_buf_printf(b, "lora_request_seconds_count{api=\"%s\"} %llu\n",
	                a->name, (unsigned long long)a->count);
}

/* Where the node's memory is: the state store's parts, then the process
 * (resident set) and glibc malloc (all arenas: in use, free but kept;
 * read at most once per 10 s, see lora_mem_process). */
static void memory_text(struct lora_buf *b, struct lnode *n)
{
	struct sto_memory sm;
	memset(&sm, 0, sizeof sm);
	struct sto_store *s = node_store_try_acquire(n);
	if (s) {
		sto_memory(s, &sm);
		node_store_release(n);
	}
	const struct {
		const char *part;
		uint64_t v;
	} parts[] = {{"block_cache", sm.block_cache},
	             {"block_cache_pinned", sm.block_cache_pinned},
	             {"row_cache", sm.row_cache},
	             {"memtables", sm.memtables},
	             {"table_readers", sm.table_readers},
	             {"vector_graphs", sm.vector_graphs},
	             {"node_table", sm.node_table},
	             {"vector_columns", sm.vector_columns},
	             {"adjacency_cache", sm.adjacency_cache}};
	lora_buf_puts(b, "# TYPE lora_memory_bytes gauge\n");
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		lora_buf_printf(b, "lora_memory_bytes{part=\"%s\"} %llu\n",
		                parts[i].part, (unsigned long long)parts[i].v);
	struct lora_mem_process pm;
	lora_mem_process(&pm);
	lora_buf_printf(
	    b,
	    "# TYPE lora_process_resident_bytes gauge\n"
	    "lora_process_resident_bytes %llu\n"
	    "# TYPE lora_malloc_bytes gauge\n"
	    "lora_malloc_bytes{state=\"in_use\"} %llu\n"
	    "lora_malloc_bytes{state=\"free\"} %llu\n"
	    "lora_malloc_bytes{state=\"mmapped\"} %llu\n"
	    "# TYPE lora_malloc_arenas gauge\n"
	    "lora_malloc_arenas %u\n"
	    "# TYPE lora_malloc_trims_total counter\n"
	    "lora_malloc_trims_total %llu\n"
	    "# TYPE lora_malloc_trimmed_bytes_total counter\n"
	    "lora_malloc_trimmed_bytes_total %llu\n"
	    "# TYPE lora_malloc_trims_skipped_total counter\n"
	    "lora_malloc_trims_skipped_total %llu\n"
	    "# TYPE lora_malloc_figure_reads_total counter\n"
	    "lora_malloc_figure_reads_total %llu\n",
	    (unsigned long long)pm.resident, (unsigned long long)pm.in_use,
	    (unsigned long long)pm.free, (unsigned long long)pm.mmapped,
	    pm.arenas, (unsigned long long)pm.trims,
	    (unsigned long long)pm.trimmed,
	    (unsigned long long)pm.trims_skipped,
	    (unsigned long long)pm.figure_reads);
}

char *node_metrics_text(struct lnode *n)
{
	struct node_metrics *m = n->metrics;
	struct rep_status st;
	node_status_get(n, &st);
	uint64_t applied = node_applied_index(n);
	struct lora_buf b = {0};
	lora_buf_puts(&b, "# TYPE lora_requests_total counter\n"
	                  "# TYPE lora_request_seconds histogram\n");
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->n_apis; i++)
		api_text(&b, &m->apis[i]);
	lora_buf_printf(&b,
	                "# TYPE lora_checkpoint_seconds summary\n"
	                "lora_checkpoint_seconds_sum %.6f\n"
	                "lora_checkpoint_seconds_count %llu\n"
	                "# TYPE lora_checkpoint_last_seconds gauge\n"
	                "lora_checkpoint_last_seconds %.6f\n",
	                m->ckpt_sum_s, (unsigned long long)m->ckpt_count,
	                m->ckpt_last_s);
	pthread_mutex_unlock(&m->mu);
	statements_text(&b, n);
	memory_text(&b, n);
	lora_buf_printf(
	    &b,
	    "# TYPE lora_raft_term gauge\nlora_raft_term %llu\n"
	    "# TYPE lora_raft_is_leader gauge\nlora_raft_is_leader %d\n"
	    "# TYPE lora_raft_commit_index gauge\nlora_raft_commit_index %llu\n"
	    "# TYPE lora_raft_applied_index gauge\nlora_raft_applied_index "
	    "%llu\n"
	    "# TYPE lora_raft_last_index gauge\nlora_raft_last_index %llu\n"
	    "# TYPE lora_raft_snapshot_index gauge\nlora_raft_snapshot_index "
	    "%llu\n"
	    "# TYPE lora_apply_lag_entries gauge\nlora_apply_lag_entries "
	    "%llu\n",
	    (unsigned long long)st.term, st.role == REP_LEADER,
	    (unsigned long long)st.commit, (unsigned long long)applied,
	    (unsigned long long)st.last_index,
	    (unsigned long long)st.snapshot_index,
	    (unsigned long long)(st.commit > applied ? st.commit - applied
	                                             : 0));
	return lora_buf_take(&b);
}
