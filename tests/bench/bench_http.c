/* bench_http.c - HTTP write load generator for the cluster benchmark: single
 * statement writes against LoraDB (POST /query) or etcd (POST /v3/kv/put),
 * N concurrent clients each on a keep-alive connection, spread over the
 * given endpoints; prints writes/s, p50 and p99 latency.
 *
 *   bench_http --mode lora|etcd --endpoints h:p,h:p,... [--clients N]
 *              [--duration-ms MS] [--acked FILE] [--prefix P]
 *
 * A failed write (error status or lost connection) is retried after 10 ms
 * on the next endpoint with the same key (LoraDB: the same requestId, so it
 * is applied once); latency counts from the first attempt. With --acked,
 * every acknowledgement is written to FILE as "ack_wall_ms
 * attempt_wall_ms" (when the successful attempt started), for measuring the
 * time from a leader kill to the first write sent after it and
 * acknowledged.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "lora.h"

#define BENCH_CLIENTS_MAX     512
#define BENCH_ENDPOINTS_MAX   8
#define BENCH_SAMPLES_MAX     (1u << 18)
#define BENCH_BODY_BYTES      512
#define BENCH_CALL_TIMEOUT_MS 5000

struct bench {
	int etcd;
	char endpoints[BENCH_ENDPOINTS_MAX][64];
	int n_endpoints;
	int clients;
	long duration_ms;
	const char *prefix;
	FILE *acked;
	pthread_mutex_t mu;
	atomic_long errors;
};

struct client {
	pthread_t th;
	struct bench *b;
	int idx;
	uint32_t *lat_us;
	size_t n;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void b64(const char *in, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
	    "yz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

static void make_body(const struct bench *b, const char *key, char *body)
{
	if (b->etcd) {
		char k[128], v[128];
		b64(key, k);
		b64("v", v);
		snprintf(body, BENCH_BODY_BYTES,
		         "{\"key\": \"%s\", \"value\": \"%s\"}", k, v);
	} else {
		snprintf(body, BENCH_BODY_BYTES,
		         "{\"query\": \"CREATE (:Bench {k: $k})\", \"params\": "
		         "{\"k\": \"%s\"}, \"requestId\": \"%s\"}",
		         key, key);
	}
}

struct conn {
	nng_url *url;
	nng_http_client *cli;
	nng_http_conn *conn;
	nng_aio *aio;
};

static void conn_close(struct conn *c)
{
	if (c->conn)
		nng_http_conn_close(c->conn);
	if (c->cli)
		nng_http_client_free(c->cli);
	if (c->url)
		nng_url_free(c->url);
	c->conn = NULL;
	c->cli = NULL;
	c->url = NULL;
}

static int conn_open(struct conn *c, const struct bench *b, int ep)
{
	char url[128];
	snprintf(url, sizeof(url), "http://%s%s", b->endpoints[ep],
	         b->etcd ? "/v3/kv/put" : "/query");
	if (nng_url_parse(&c->url, url) ||
	    nng_http_client_alloc(&c->cli, c->url))
		return -1;
	nng_aio_set_timeout(c->aio, BENCH_CALL_TIMEOUT_MS);
	nng_http_client_connect(c->cli, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio))
		return -1;
	c->conn = nng_aio_get_output(c->aio, 0);
	return 0;
}

/* One POST; returns the HTTP status or -1 on a transport failure. */
static int post(struct conn *c, const char *body)
{
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	int status = -1;
	if (nng_http_req_alloc(&req, c->url) || nng_http_res_alloc(&res))
		goto out;
	nng_http_req_set_method(req, "POST");
	nng_http_req_set_header(req, "Content-Type", "application/json");
	nng_http_req_copy_data(req, body, strlen(body));
	nng_aio_set_timeout(c->aio, BENCH_CALL_TIMEOUT_MS);
	nng_http_conn_transact(c->conn, req, res, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) == 0)
		status = nng_http_res_get_status(res);
out:
	if (req)
		nng_http_req_free(req);
	if (res)
		nng_http_res_free(res);
	return status;
}

static void ack(struct client *cl, uint64_t t0_ns, uint64_t attempt_wall_ms)
{
	uint64_t us = (lora_now_ns() - t0_ns) / 1000;
	if (cl->n < BENCH_SAMPLES_MAX)
		cl->lat_us[cl->n++] =
		    us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (cl->b->acked) {
		pthread_mutex_lock(&cl->b->mu);
		fprintf(cl->b->acked, "%llu %llu\n",
		        (unsigned long long)wall_ms(),
		        (unsigned long long)attempt_wall_ms);
		pthread_mutex_unlock(&cl->b->mu);
	}
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct bench *b = cl->b;
	struct conn c = {0};
	if (nng_aio_alloc(&c.aio, NULL, NULL))
		return NULL;
	int ep = cl->idx % b->n_endpoints;
	uint64_t end = lora_now_ms() + (uint64_t)b->duration_ms;
	char key[96], body[BENCH_BODY_BYTES];
	for (long i = 0; lora_now_ms() < end; i++) {
		snprintf(key, sizeof(key), "%s-%d-%ld", b->prefix, cl->idx, i);
		make_body(b, key, body);
		uint64_t t0 = lora_now_ns();
		for (;;) {
			uint64_t attempt = wall_ms();
			if (c.conn == NULL && conn_open(&c, b, ep))
				conn_close(&c);
			int st = c.conn ? post(&c, body) : -1;
			if (st == 200) {
				ack(cl, t0, attempt);
				break;
			}
			atomic_fetch_add(&b->errors, 1);
			conn_close(&c);
			ep = (ep + 1) % b->n_endpoints;
			if (lora_now_ms() >= end)
				break;
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	conn_close(&c);
	nng_aio_free(c.aio);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report(struct bench *b, struct client *cls, uint64_t elapsed_ms)
{
	size_t total = 0, k = 0;
	for (int i = 0; i < b->clients; i++)
		total += cls[i].n;
	uint32_t *all = calloc(total ? total : 1, sizeof(uint32_t));
	for (int i = 0; all && i < b->clients; i++) {
		memcpy(all + k, cls[i].lat_us, cls[i].n * sizeof(uint32_t));
		k += cls[i].n;
	}
	double p50 = 0, p99 = 0;
	if (all && total) {
		qsort(all, total, sizeof(uint32_t), cmp_u32);
		p50 = all[total / 2] / 1000.0;
		p99 = all[total * 99 / 100] / 1000.0;
	}
	free(all);
	printf("system=%s clients=%d writes=%zu errors=%ld seconds=%.1f "
	       "writes_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n",
	       b->etcd ? "etcd" : "lora", b->clients, total,
	       atomic_load(&b->errors), elapsed_ms / 1000.0,
	       elapsed_ms ? total * 1000.0 / (double)elapsed_ms : 0.0, p50,
	       p99);
}

static int parse(int argc, char **argv, struct bench *b)
{
	const char *eps = NULL, *acked = NULL;
	b->clients = 1, b->duration_ms = 10000, b->prefix = "b";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mode"))
			b->etcd = !strcmp(argv[i + 1], "etcd");
		else if (!strcmp(argv[i], "--endpoints"))
			eps = argv[i + 1];
		else if (!strcmp(argv[i], "--clients"))
			b->clients = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration-ms"))
			b->duration_ms = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--acked"))
			acked = argv[i + 1];
		else if (!strcmp(argv[i], "--prefix"))
			b->prefix = argv[i + 1];
		else
			return -1;
	}
	if (eps == NULL || b->clients < 1 || b->clients > BENCH_CLIENTS_MAX)
		return -1;
	for (const char *p = eps; *p && b->n_endpoints < BENCH_ENDPOINTS_MAX;) {
		size_t len = strcspn(p, ",");
		snprintf(b->endpoints[b->n_endpoints++], 64, "%.*s", (int)len,
		         p);
		p += len + (p[len] == ',');
	}
	if (acked && (b->acked = fopen(acked, "w")) == NULL)
		return -1;
	return b->n_endpoints ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct bench b = {.mu = PTHREAD_MUTEX_INITIALIZER};
	if (parse(argc, argv, &b)) {
		fprintf(stderr,
		        "usage: bench_http --mode lora|etcd --endpoints "
		        "h:p,... [--clients N] [--duration-ms MS] "
		        "[--acked FILE] [--prefix P]\n");
		return 2;
	}
	struct client *cls = calloc((size_t)b.clients, sizeof(*cls));
	uint64_t t0 = lora_now_ms();
	for (int i = 0; i < b.clients; i++) {
		cls[i].b = &b, cls[i].idx = i;
		cls[i].lat_us = malloc(BENCH_SAMPLES_MAX * sizeof(uint32_t));
		pthread_create(&cls[i].th, NULL, client_main, &cls[i]);
	}
	for (int i = 0; i < b.clients; i++)
		pthread_join(cls[i].th, NULL);
	report(&b, cls, lora_now_ms() - t0);
	for (int i = 0; i < b.clients; i++)
		free(cls[i].lat_us);
	free(cls);
	if (b.acked)
		fclose(b.acked);
	return 0;
}
