/* tls_conn.c - TLS with mbedtls over our own non-blocking sockets. */
/*
 * mbedtls reads and writes through two callbacks on the socket (bio_send,
 * bio_recv) that turn EAGAIN into MBEDTLS_ERR_SSL_WANT_READ/WRITE, so the
 * same code serves the HTTP server's epoll loop (non-blocking handshakes)
 * and blocking callers that poll() for node_tls_wants().
 *
 * Writes: mbedtls_ssl_write encrypts one record and tries to send it; when
 * the socket is full it keeps the record (out_left > 0) and returns
 * WANT_WRITE, and must then be called again with the same bytes. To give
 * callers plain send() semantics, such a record counts as sent (its length
 * is returned) and the next call first flushes it; node_tls_flush sends
 * what is left.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h> /* mbedtls_ssl_flush_output (exported) */
#include <mbedtls/x509_crt.h>

#include "tls.h"

struct node_tls_ctx {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert, ca;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg; /* thread-safe (MBEDTLS_THREADING_C) */
};

/* read ahead: mbedtls asks for a record's 5-byte header, then its body;
 * one recv of up to this many bytes serves both (and the next records) */
#define NODE_TLS_READ_AHEAD_BYTES 4096

struct node_tls_conn {
	mbedtls_ssl_context ssl;
	int fd;
	size_t roff, rlen; /* unread bytes: rbuf[roff..rlen) */
	unsigned char rbuf[NODE_TLS_READ_AHEAD_BYTES];
	int wants;    /* POLLIN / POLLOUT */
	int last_err; /* mbedtls error of the last failure */
};

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
	struct node_tls_conn *c = arg;
	ssize_t w;
	do
		w = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return (int)w;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
	struct node_tls_conn *c = arg;
	if (c->roff < c->rlen) {
		size_t n = c->rlen - c->roff < len ? c->rlen - c->roff : len;
		memcpy(buf, c->rbuf + c->roff, n);
		c->roff += n;
		return (int)n;
	}
	int ahead = len < sizeof c->rbuf;
	ssize_t r;
	do
		r = recv(c->fd, ahead ? c->rbuf : buf,
		         ahead ? sizeof c->rbuf : len, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r > 0 && ahead) {
		c->roff = 0;
		c->rlen = (size_t)r;
		return bio_recv(arg, buf, len);
	}
	if (r >= 0)
		return (int)r;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* The groups of node_tls_conf_curves: X25519 and P-256 first, then every
 * other curve this mbedtls offers, in its order (built once). */
#define NODE_TLS_CURVES_MAX 32
static mbedtls_ecp_group_id curves[NODE_TLS_CURVES_MAX + 1];
static pthread_once_t curves_once = PTHREAD_ONCE_INIT;

static void curves_init(void)
{
	static const mbedtls_ecp_group_id first[] = {MBEDTLS_ECP_DP_CURVE25519,
	                                             MBEDTLS_ECP_DP_SECP256R1};
	const mbedtls_ecp_group_id *all = mbedtls_ecp_grp_id_list();
	int n = 0;
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		for (const mbedtls_ecp_group_id *g = all;
		     *g != MBEDTLS_ECP_DP_NONE; g++)
			if (*g == first[i]) {
				curves[n++] = *g;
				break;
			}
	for (const mbedtls_ecp_group_id *g = all;
	     *g != MBEDTLS_ECP_DP_NONE && n < NODE_TLS_CURVES_MAX; g++)
		if (*g != first[0] && *g != first[1])
			curves[n++] = *g;
	curves[n] = MBEDTLS_ECP_DP_NONE;
}

void node_tls_conf_curves(struct mbedtls_ssl_config *conf)
{
	pthread_once(&curves_once, curves_init);
	mbedtls_ssl_conf_curves(conf, curves);
}

void node_tls_ctx_free(struct node_tls_ctx *x)
{
	if (x == NULL)
		return;
	mbedtls_ssl_config_free(&x->conf);
	mbedtls_x509_crt_free(&x->cert);
	mbedtls_x509_crt_free(&x->ca);
	mbedtls_pk_free(&x->key);
	mbedtls_ctr_drbg_free(&x->drbg);
	mbedtls_entropy_free(&x->entropy);
	lora_free(x);
}

static int ctx_err(int ret, const char *what, const char *path, char *errmsg)
{
	char text[128];
	mbedtls_strerror(ret, text, sizeof text);
	return lora_errf(LORA_ECONFIG, errmsg, "tls: %s '%s': %s", what, path,
	                 text);
}

/* Certificates, key and trust of x from t. */
static int ctx_load(struct node_tls_ctx *x, const struct node_tls *t,
                    int server, char *errmsg)
{
	int ret;
	if (t->cert[0] && t->key[0]) {
		if ((ret = mbedtls_x509_crt_parse_file(&x->cert, t->cert)))
			return ctx_err(ret, "certificate", t->cert, errmsg);
		if ((ret = mbedtls_pk_parse_keyfile(&x->key, t->key, NULL)))
			return ctx_err(ret, "key", t->key, errmsg);
		if ((ret = mbedtls_ssl_conf_own_cert(&x->conf, &x->cert,
		                                     &x->key)))
			return ctx_err(ret, "certificate", t->cert, errmsg);
	} else if (server) {
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "tls: a listener needs a certificate and key");
	}
	if (t->ca[0]) {
		if ((ret = mbedtls_x509_crt_parse_file(&x->ca, t->ca)))
			return ctx_err(ret, "ca", t->ca, errmsg);
		mbedtls_ssl_conf_ca_chain(&x->conf, &x->ca, NULL);
	} else if (!server) {
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "tls: a client needs a CA to verify servers");
	}
	mbedtls_ssl_conf_authmode(&x->conf, server
	                                        ? MBEDTLS_SSL_VERIFY_NONE
	                                        : MBEDTLS_SSL_VERIFY_REQUIRED);
	return 0;
}

int node_tls_ctx_new(const struct node_tls *t, int server,
                     struct node_tls_ctx **out, char *errmsg)
{
	struct node_tls_ctx *x = lora_calloc(1, sizeof *x);
	if (x == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	mbedtls_ssl_config_init(&x->conf);
	mbedtls_x509_crt_init(&x->cert);
	mbedtls_x509_crt_init(&x->ca);
	mbedtls_pk_init(&x->key);
	mbedtls_entropy_init(&x->entropy);
	mbedtls_ctr_drbg_init(&x->drbg);
	static const char pers[] = "lorad-tls";
	int ret =
	    mbedtls_ctr_drbg_seed(&x->drbg, mbedtls_entropy_func, &x->entropy,
	                          (const unsigned char *)pers, sizeof pers - 1);
	if (ret == 0)
		ret = mbedtls_ssl_config_defaults(
		    &x->conf,
		    server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
		    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	int rc = ret ? ctx_err(ret, "setup", "", errmsg) : 0;
	if (rc == 0) {
		mbedtls_ssl_conf_rng(&x->conf, mbedtls_ctr_drbg_random,
		                     &x->drbg);
		node_tls_conf_curves(&x->conf);
		mbedtls_ssl_conf_min_version(&x->conf,
		                             MBEDTLS_SSL_MAJOR_VERSION_3,
		                             MBEDTLS_SSL_MINOR_VERSION_3);
		rc = ctx_load(x, t, server, errmsg);
	}
	if (rc) {
		node_tls_ctx_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

int node_tls_ctx_new_peer(const struct node_tls *t, int server,
                          struct node_tls_ctx **out, char *errmsg)
{
	if (t->ca[0] == '\0')
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "tls: peers need a CA to verify each other");
	int rc = node_tls_ctx_new(t, server, out, errmsg);
	if (rc == 0 && server)
		mbedtls_ssl_conf_authmode(&(*out)->conf,
		                          MBEDTLS_SSL_VERIFY_REQUIRED);
	return rc;
}

struct mbedtls_ssl_config *node_tls_ctx_conf(struct node_tls_ctx *x)
{
	return &x->conf;
}

int node_tls_conn_new(struct node_tls_ctx *x, int fd, const char *server_name,
                      struct node_tls_conn **out)
{
	struct node_tls_conn *c = lora_calloc(1, sizeof *c);
	if (c == NULL)
		return LORA_ENOMEM;
	c->fd = fd;
	mbedtls_ssl_init(&c->ssl);
	if (mbedtls_ssl_setup(&c->ssl, &x->conf) != 0 ||
	    (server_name &&
	     mbedtls_ssl_set_hostname(&c->ssl, server_name) != 0)) {
		mbedtls_ssl_free(&c->ssl);
		lora_free(c);
		return LORA_ENOMEM;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	*out = c;
	return 0;
}

void node_tls_conn_free(struct node_tls_conn *c)
{
	if (c == NULL)
		return;
	mbedtls_ssl_free(&c->ssl);
	lora_free(c);
}

/* errno for mbedtls result ret (< 0); -1. */
static int fail(struct node_tls_conn *c, int ret)
{
	if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
		c->wants = POLLIN;
		errno = EAGAIN;
	} else if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
		c->wants = POLLOUT;
		errno = EAGAIN;
	} else {
		c->last_err = ret;
		errno = ret == MBEDTLS_ERR_NET_SEND_FAILED ||
		                ret == MBEDTLS_ERR_NET_RECV_FAILED
		            ? ECONNRESET
		            : EPROTO;
	}
	return -1;
}

int node_tls_handshake(struct node_tls_conn *c)
{
	int ret = mbedtls_ssl_handshake(&c->ssl);
	return ret == 0 ? 0 : fail(c, ret);
}

ssize_t node_tls_recv(struct node_tls_conn *c, void *buf, size_t len)
{
	int ret = mbedtls_ssl_read(&c->ssl, buf, len);
	if (ret >= 0)
		return ret;
	if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	return fail(c, ret);
}

int node_tls_flush(struct node_tls_conn *c)
{
	if (c->ssl.out_left == 0)
		return 0;
	int ret = mbedtls_ssl_flush_output(&c->ssl);
	return ret == 0 ? 0 : fail(c, ret);
}

ssize_t node_tls_send(struct node_tls_conn *c, const void *buf, size_t len)
{
	if (node_tls_flush(c) != 0)
		return -1;
	if (len == 0)
		return 0;
	int max = mbedtls_ssl_get_max_out_record_payload(&c->ssl);
	size_t n = max > 0 && len > (size_t)max ? (size_t)max : len;
	int ret = mbedtls_ssl_write(&c->ssl, buf, n);
	if (ret >= 0)
		return ret;
	if (ret == MBEDTLS_ERR_SSL_WANT_WRITE && c->ssl.out_left > 0)
		return (ssize_t)n; /* encrypted and kept: flushed later */
	return fail(c, ret);
}

ssize_t node_tls_sendv(struct node_tls_conn *c, const struct iovec *iov,
                       int cnt)
{
	unsigned char buf[NODE_TLS_GATHER_BYTES];
	size_t total = 0, off = 0;
	int i = 0;
	for (;;) {
		size_t n = 0;
		while (i < cnt && n < sizeof buf) {
			size_t k = iov[i].iov_len - off;
			if (k > sizeof buf - n)
				k = sizeof buf - n;
			memcpy(buf + n, (const char *)iov[i].iov_base + off, k);
			n += k;
			off += k;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (n == 0)
			return (ssize_t)total;
		ssize_t w = node_tls_send(c, buf, n);
		if (w < 0)
			return total ? (ssize_t)total : -1;
		total += (size_t)w;
		if ((size_t)w < n)
			return (ssize_t)total; /* the caller sends the rest */
	}
}

int node_tls_pending(const struct node_tls_conn *c)
{
	return c->roff < c->rlen || mbedtls_ssl_get_bytes_avail(&c->ssl) > 0 ||
	       mbedtls_ssl_check_pending(&c->ssl);
}

int node_tls_wants(const struct node_tls_conn *c)
{
	return c->wants ? c->wants : POLLIN;
}

void node_tls_error(const struct node_tls_conn *c, char *out, size_t bytes)
{
	mbedtls_strerror(c->last_err, out, bytes);
}

void node_tls_close_notify(struct node_tls_conn *c)
{
	(void)mbedtls_ssl_close_notify(&c->ssl);
}
