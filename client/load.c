/* load.c - `lora-load`: write load through the client library with a record
 * of every acknowledged write, and a check that a node holds them all.
 *
 *   lora-load write  -a LIST [--clients N] [--count N | --duration-ms MS]
 *                    [--acked FILE] [--label L] [--prefix P]
 *   lora-load verify -a ONE_ADDRESS --acked FILE [--label L]
 *   lora-load wait-leader -a LIST [--not ID] [--since-ms WALL_MS]
 *                    [--timeout-ms MS]
 *
 * write: N client threads (one struct lora_client each) run
 * `CREATE (:L {k: $k})` with a unique string key per write; every
 * acknowledged key is appended to FILE as "key ack_wall_ms attempt_wall_ms"
 * (the attempt that succeeded; retries reuse the request id) at once, so a
 * kill of the writer loses nothing that was reported. Prints throughput,
 * latency percentiles and the longest gap between acknowledgements.
 * verify: reads every (:L) key from ONE node (local consistency, no
 * routing) and fails when an acknowledged key is missing or present twice.
 * wait-leader: polls every node's status (native protocol, every 10 ms)
 * until one reports a leader other than ID; prints it and the time since
 * WALL_MS (e.g. the moment the old leader was killed).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"

#define LOAD_CLIENTS_MAX    256
#define LOAD_SAMPLES_MAX    (1u << 20) /* latencies kept per thread */
#define LOAD_KEY_BYTES      64
#define LOAD_LINE_BYTES     256
#define LOAD_ACKED_KEYS_MAX (4u << 20)

struct load_opts {
	const char *mode, *addresses, *acked, *label, *prefix;
	int clients;
	long not_id, since_ms, timeout_ms;
	long count; /* writes per client; 0: until the duration ends */
	long duration_ms;
	int call_timeout_ms;
};

struct load_stats {
	pthread_mutex_t mu;
	FILE *acked;
	long acks, errors, unknown;
	uint64_t last_ack_ms, max_gap_ms;
};

struct worker {
	pthread_t th;
	int idx;
	const struct load_opts *o;
	struct load_stats *st;
	uint32_t *lat_us;
	size_t n_lat;
};

static atomic_int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void record_ack(struct worker *w, const char *key,
                       uint64_t attempt_wall_ms)
{
	struct load_stats *st = w->st;
	pthread_mutex_lock(&st->mu);
	uint64_t now = lora_now_ms();
	if (st->last_ack_ms && now - st->last_ack_ms > st->max_gap_ms)
		st->max_gap_ms = now - st->last_ack_ms;
	st->last_ack_ms = now;
	st->acks++;
	if (st->acked) {
		fprintf(st->acked, "%s %llu %llu\n", key,
		        (unsigned long long)wall_ms(),
		        (unsigned long long)attempt_wall_ms);
		fflush(st->acked);
	}
	pthread_mutex_unlock(&st->mu);
}

static void record_error(struct worker *w, const struct lora_client_error *e)
{
	pthread_mutex_lock(&w->st->mu);
	if (e->err == LORA_EUNKNOWN_OUTCOME)
		w->st->unknown++;
	else
		w->st->errors++;
	if (w->st->errors + w->st->unknown <= 5)
		fprintf(stderr, "lora-load: client %d: %s: %s\n", w->idx,
		        e->code, e->message);
	pthread_mutex_unlock(&w->st->mu);
}

/* One acknowledged-or-failed write of key. */
static int write_one(struct worker *w, struct lora_client *c, const char *key,
                     const char *query)
{
	Lora__Value *v = lora_value_string(key);
	Lora__Param *p = v ? lora_param_new("k", v) : NULL;
	if (p == NULL) {
		lora_value_free(v);
		return LORA_ENOMEM;
	}
	struct lora_query q = {0};
	q.query = query;
	q.params = &p;
	q.n_params = 1;
	struct lora_client_error e = {0};
	struct lora_result *r = NULL;
	uint64_t t0 = lora_now_ns();
	int rv = lora_client_run(c, &q, &r, &e);
	uint64_t us = (lora_now_ns() - t0) / 1000;
	lora_param_free(p);
	if (rv) {
		record_error(w, &e);
		return 0;
	}
	/* wall-clock time when the attempt that succeeded was sent */
	uint64_t attempt = wall_ms() - (lora_now_ms() - lora_result_sent_ms(r));
	lora_result_free(r);
	if (w->n_lat < LOAD_SAMPLES_MAX)
		w->lat_us[w->n_lat++] =
		    us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	record_ack(w, key, attempt);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct load_opts *o = w->o;
	struct lora_client_opts co = {0};
	co.addresses = o->addresses;
	co.call_timeout_ms = o->call_timeout_ms;
	struct lora_client *c = NULL;
	struct lora_client_error e = {0};
	if (lora_client_open(&c, &co, &e)) {
		record_error(w, &e);
		return NULL;
	}
	char query[LOAD_LINE_BYTES];
	snprintf(query, sizeof(query), "CREATE (:%s {k: $k})", o->label);
	uint64_t end = lora_now_ms() + (uint64_t)o->duration_ms;
	for (long i = 0; !atomic_load(&stop_flag); i++) {
		if (o->count && i >= o->count)
			break;
		if (!o->count && lora_now_ms() >= end)
			break;
		char key[LOAD_KEY_BYTES];
		snprintf(key, sizeof(key), "%s-%d-%ld", o->prefix, w->idx, i);
		if (write_one(w, c, key, query))
			break;
	}
	lora_client_close(c);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report(struct worker *ws, int n, struct load_stats *st,
                   uint64_t elapsed_ms)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += ws[i].n_lat;
	uint32_t *all = lora_calloc(total ? total : 1, sizeof(uint32_t));
	size_t k = 0;
	for (int i = 0; all && i < n; i++) {
		memcpy(all + k, ws[i].lat_us, ws[i].n_lat * sizeof(uint32_t));
		k += ws[i].n_lat;
	}
	double p50 = 0, p99 = 0;
	if (all && total) {
		qsort(all, total, sizeof(uint32_t), cmp_u32);
		p50 = all[total / 2] / 1000.0;
		p99 = all[(total * 99) / 100] / 1000.0;
	}
	lora_free(all);
	printf("clients=%d acked=%ld errors=%ld unknown=%ld elapsed_ms=%llu "
	       "writes_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_gap_ms=%llu\n",
	       n, st->acks, st->errors, st->unknown,
	       (unsigned long long)elapsed_ms,
	       elapsed_ms ? st->acks * 1000.0 / (double)elapsed_ms : 0.0, p50,
	       p99, (unsigned long long)st->max_gap_ms);
}

static int run_write(const struct load_opts *o)
{
	struct load_stats st = {.mu = PTHREAD_MUTEX_INITIALIZER};
	if (o->acked && (st.acked = fopen(o->acked, "a")) == NULL) {
		perror(o->acked);
		return 2;
	}
	struct worker *ws = lora_calloc((size_t)o->clients, sizeof(*ws));
	if (ws == NULL)
		return 2;
	uint64_t t0 = lora_now_ms();
	int started = 0;
	for (; started < o->clients; started++) {
		struct worker *w = &ws[started];
		w->idx = started, w->o = o, w->st = &st;
		w->lat_us = lora_malloc(LOAD_SAMPLES_MAX * sizeof(uint32_t));
		if (w->lat_us == NULL ||
		    pthread_create(&w->th, NULL, worker_main, w)) {
			lora_free(w->lat_us);
			break;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(ws[i].th, NULL);
	report(ws, started, &st, lora_now_ms() - t0);
	for (int i = 0; i < started; i++)
		lora_free(ws[i].lat_us);
	lora_free(ws);
	if (st.acked)
		fclose(st.acked);
	return started == o->clients && st.acks > 0 ? 0 : 1;
}

/* ---- verify ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the first word of every line of path; *keys is sorted. */
static int read_acked(const char *path, char ***keys, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return LORA_EIO;
	}
	char line[LOAD_LINE_BYTES];
	size_t cap = 0;
	*keys = NULL, *n = 0;
	while (fgets(line, sizeof(line), f) && *n < LOAD_ACKED_KEYS_MAX) {
		line[strcspn(line, " \r\n")] = 0;
		if (line[0] == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			char **k = lora_realloc(*keys, cap * sizeof(char *));
			if (k == NULL)
				break;
			*keys = k;
		}
		(*keys)[(*n)++] = lora_strdup(line);
	}
	fclose(f);
	if (*n)
		qsort(*keys, *n, sizeof(char *), cmp_str);
	return 0;
}

/* Reads every k of the label from the node into a sorted array. */
static int read_present(const struct load_opts *o, char ***keys, size_t *n)
{
	struct lora_client_opts co = {0};
	co.addresses = o->addresses;
	co.route = LORA_ROUTE_ANY;
	co.call_timeout_ms = o->call_timeout_ms;
	struct lora_client *c = NULL;
	struct lora_client_error e = {0};
	struct lora_result *r = NULL;
	char query[LOAD_LINE_BYTES];
	snprintf(query, sizeof(query), "MATCH (n:%s) RETURN n.k AS k",
	         o->label);
	struct lora_query q = {.query = query, .batch_rows = 10000};
	int rv = lora_client_open(&c, &co, &e);
	if (rv == 0)
		rv = lora_client_run(c, &q, &r, &e);
	size_t cap = 0;
	*keys = NULL, *n = 0;
	Lora__Value *const *row = NULL;
	while (rv == 0 && (rv = lora_result_next(r, &row, &e)) == 0 && row) {
		if (row[0]->kind_case != LORA__VALUE__KIND_STRING_VALUE)
			continue;
		if (*n == LOAD_ACKED_KEYS_MAX) {
			rv = LORA_ELIMIT;
			snprintf(e.code, sizeof(e.code), "LORA_LIMIT");
			snprintf(e.message, sizeof(e.message),
			         "more than %u keys", LOAD_ACKED_KEYS_MAX);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			char **k = lora_realloc(*keys, cap * sizeof(char *));
			if (k == NULL) {
				rv = LORA_ENOMEM;
				break;
			}
			*keys = k;
		}
		(*keys)[(*n)++] = lora_strdup(row[0]->string_value);
	}
	if (rv)
		fprintf(stderr, "lora-load: read %s: %s: %s\n", o->addresses,
		        e.code, e.message);
	lora_result_free(r);
	lora_client_close(c);
	if (rv == 0 && *n)
		qsort(*keys, *n, sizeof(char *), cmp_str);
	return rv;
}

static void free_keys(char **k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora_free(k[i]);
	lora_free(k);
}

static int run_verify(const struct load_opts *o)
{
	char **acked = NULL, **present = NULL;
	size_t na = 0, np = 0, missing = 0, dups = 0;
	if (read_acked(o->acked, &acked, &na) ||
	    read_present(o, &present, &np)) {
		free_keys(acked, na);
		free_keys(present, np);
		return 2;
	}
	for (size_t i = 1; i < np; i++)
		dups += strcmp(present[i - 1], present[i]) == 0;
	for (size_t i = 0, j = 0; i < na; i++) {
		while (j < np && strcmp(present[j], acked[i]) < 0)
			j++;
		if (j == np || strcmp(present[j], acked[i]) != 0) {
			if (missing++ < 5)
				printf("missing: %s\n", acked[i]);
		}
	}
	printf("node=%s acked=%zu present=%zu missing=%zu duplicates=%zu\n",
	       o->addresses, na, np, missing, dups);
	free_keys(acked, na);
	free_keys(present, np);
	return missing || dups ? 1 : 0;
}

/* ---- wait-leader ------------------------------------------------------- */

/* The leader id in one node's status, or 0. */
static long status_leader(struct lora_client *c)
{
	char *json = NULL;
	if (lora_client_status(c, &json, NULL))
		return 0;
	json_t *j = json_loads(json, 0, NULL);
	json_t *l = j ? json_object_get(j, "leader") : NULL;
	long id = json_is_integer(l) ? (long)json_integer_value(l) : 0;
	json_decref(j);
	lora_free(json);
	return id;
}

static int run_wait_leader(const struct load_opts *o)
{
	char urls[LORA_CLIENT_NODES_MAX][LORA_CLIENT_ADDR_BYTES];
	struct lora_client *cs[LORA_CLIENT_NODES_MAX] = {0};
	size_t n = 0;
	if (lora_client_parse_addresses(o->addresses, urls,
	                                LORA_CLIENT_NODES_MAX, &n, NULL))
		return 2;
	for (size_t i = 0; i < n; i++) {
		struct lora_client_opts co = {.addresses = urls[i] + 6,
		                              .route = LORA_ROUTE_ANY,
		                              .call_timeout_ms = 200,
		                              .retry_budget_ms = -1};
		lora_client_open(&cs[i], &co, NULL);
	}
	uint64_t end = lora_now_ms() + (uint64_t)o->timeout_ms;
	long found = 0;
	while (!found && lora_now_ms() < end) {
		for (size_t i = 0; i < n && !found; i++) {
			long id = cs[i] ? status_leader(cs[i]) : 0;
			if (id > 0 && id != o->not_id)
				found = id;
		}
		if (!found) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	long since =
	    o->since_ms ? (long)(wall_ms() - (uint64_t)o->since_ms) : 0;
	for (size_t i = 0; i < n; i++)
		lora_client_close(cs[i]);
	if (!found)
		return 1;
	printf("leader=%ld ms=%ld\n", found, since);
	return 0;
}

/* ---- options ----------------------------------------------------------- */

static int parse_opts(int argc, char **argv, struct load_opts *o)
{
	*o = (struct load_opts){.mode = argc > 1 ? argv[1] : "",
	                        .label = "LoadTest",
	                        .prefix = "w",
	                        .clients = 1,
	                        .duration_ms = 5000,
	                        .timeout_ms = 30000,
	                        .call_timeout_ms = 2000};
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "-a") || !strcmp(k, "--address"))
			o->addresses = v;
		else if (!strcmp(k, "--acked"))
			o->acked = v;
		else if (!strcmp(k, "--label"))
			o->label = v;
		else if (!strcmp(k, "--prefix"))
			o->prefix = v;
		else if (!strcmp(k, "--clients"))
			o->clients = atoi(v);
		else if (!strcmp(k, "--count"))
			o->count = atol(v);
		else if (!strcmp(k, "--duration-ms"))
			o->duration_ms = atol(v);
		else if (!strcmp(k, "--timeout"))
			o->call_timeout_ms = atoi(v);
		else if (!strcmp(k, "--not"))
			o->not_id = atol(v);
		else if (!strcmp(k, "--since-ms"))
			o->since_ms = atol(v);
		else if (!strcmp(k, "--timeout-ms"))
			o->timeout_ms = atol(v);
		else
			return LORA_EINVAL;
	}
	if ((argc - 2) % 2 || o->clients < 1 || o->clients > LOAD_CLIENTS_MAX)
		return LORA_EINVAL;
	if (strcmp(o->mode, "write") && strcmp(o->mode, "verify") &&
	    strcmp(o->mode, "wait-leader"))
		return LORA_EINVAL;
	if (!strcmp(o->mode, "wait-leader") && !o->addresses)
		return LORA_EINVAL;
	if (!strcmp(o->mode, "verify") && (!o->acked || !o->addresses))
		return LORA_EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct load_opts o;
	if (parse_opts(argc, argv, &o)) {
		fprintf(
		    stderr,
		    "usage: lora-load write -a LIST [--clients N] [--count N "
		    "| --duration-ms MS]\n"
		    "                 [--acked FILE] [--label L] [--prefix "
		    "P] [--timeout MS]\n"
		    "       lora-load verify -a HOST:PORT --acked FILE "
		    "[--label L]\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	int rv = !strcmp(o.mode, "write")         ? run_write(&o)
	         : !strcmp(o.mode, "wait-leader") ? run_wait_leader(&o)
	                                          : run_verify(&o);
	lora_client_library_fini();
	return rv;
}
