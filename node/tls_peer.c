/* tls_peer.c - TLS on memory buffers, for the peer transport's streams. */
/*
 * node/transport.c moves peer bytes with nng's plain tcp streams and does
 * TLS itself: ciphertext it receives is put into a session's input buffer
 * (node_tls_mem_in_room / _in_put), and mbedtls reads it from there; every
 * record mbedtls writes (handshake flights, the records of a batch of
 * frames, alerts) goes to the session's sink, which appends it to the
 * transport's send buffer. No call here ever does I/O or waits, so the
 * handshake and the records are driven from the transport's own aio
 * callbacks and a batch of frames still leaves in one stream send: nng's
 * tls+tcp would finish every TCP completion and then every TLS one through
 * its task queue (docs/benchmarks.md "TLS, fifth round").
 *
 * The wire is the one nng's tls+tcp speaks (TLS 1.2, then the same SP
 * hello and frames inside), so a node of either kind talks to the other.
 */
#include <stdio.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "tls.h"

struct node_tls_mem {
	mbedtls_ssl_context ssl;
	node_tls_sink_fn sink;
	void *sink_arg;
	int sink_err;      /* a sink failure, reported by the next call */
	int last_err;      /* mbedtls error of the last failure */
	int done;          /* handshake complete */
	size_t roff, rlen; /* unread ciphertext: in[roff..rlen) */
	unsigned char in[NODE_TLS_MEM_IN_BYTES];
};

static int mem_send(void *arg, const unsigned char *buf, size_t len)
{
	struct node_tls_mem *m = arg;
	if (len > INT32_MAX)
		len = INT32_MAX;
	int rc = m->sink(m->sink_arg, buf, len);
	if (rc != 0) {
		m->sink_err = rc;
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	}
	return (int)len;
}

static int mem_recv(void *arg, unsigned char *buf, size_t len)
{
	struct node_tls_mem *m = arg;
	if (m->roff == m->rlen)
		return MBEDTLS_ERR_SSL_WANT_READ;
	size_t n = m->rlen - m->roff < len ? m->rlen - m->roff : len;
	memcpy(buf, m->in + m->roff, n);
	m->roff += n;
	return (int)n;
}

int node_tls_mem_new(struct node_tls_ctx *x, const char *server_name,
                     node_tls_sink_fn sink, void *sink_arg,
                     struct node_tls_mem **out)
{
	struct node_tls_mem *m = lora_calloc(1, sizeof *m);
	if (m == NULL)
		return LORA_ENOMEM;
	m->sink = sink;
	m->sink_arg = sink_arg;
	mbedtls_ssl_init(&m->ssl);
	if (mbedtls_ssl_setup(&m->ssl, node_tls_ctx_conf(x)) != 0 ||
	    (server_name &&
	     mbedtls_ssl_set_hostname(&m->ssl, server_name) != 0)) {
		mbedtls_ssl_free(&m->ssl);
		lora_free(m);
		return LORA_ENOMEM;
	}
	mbedtls_ssl_set_bio(&m->ssl, m, mem_send, mem_recv, NULL);
	*out = m;
	return 0;
}

void node_tls_mem_free(struct node_tls_mem *m)
{
	if (m == NULL)
		return;
	mbedtls_ssl_free(&m->ssl);
	lora_free(m);
}

unsigned char *node_tls_mem_in_room(struct node_tls_mem *m, size_t *len)
{
	if (m->roff > 0) { /* mbedtls took them into its own buffer */
		memmove(m->in, m->in + m->roff, m->rlen - m->roff);
		m->rlen -= m->roff;
		m->roff = 0;
	}
	*len = sizeof m->in - m->rlen;
	return m->in + m->rlen;
}

void node_tls_mem_in_put(struct node_tls_mem *m, size_t n)
{
	LORA_ASSERT(n <= sizeof m->in - m->rlen);
	m->rlen += n;
}

/* Our error for mbedtls result ret (< 0, not WANT_*). */
static int mem_fail(struct node_tls_mem *m, int ret)
{
	m->last_err = ret;
	if (m->sink_err) {
		int rc = m->sink_err;
		m->sink_err = 0;
		return rc;
	}
	switch (ret) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		return LORA_EUNAUTHORIZED;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		return LORA_ECLOSED;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return LORA_ENOMEM;
	default:
		return LORA_ECORRUPT;
	}
}

static int want(int ret)
{
	return ret == MBEDTLS_ERR_SSL_WANT_READ ||
	       ret == MBEDTLS_ERR_SSL_WANT_WRITE;
}

int node_tls_mem_handshake(struct node_tls_mem *m)
{
	if (m->done)
		return 0;
	int ret = mbedtls_ssl_handshake(&m->ssl);
	if (ret == 0) {
		m->done = 1;
		return 0;
	}
	if (m->sink_err == 0 && want(ret))
		return LORA_ETIMEOUT; /* in progress: more bytes needed */
	return mem_fail(m, ret);
}

int node_tls_mem_done(const struct node_tls_mem *m)
{
	return m->done;
}

int node_tls_mem_read(struct node_tls_mem *m, void *buf, size_t len,
                      size_t *got)
{
	*got = 0;
	while (*got < len) {
		int ret = mbedtls_ssl_read(&m->ssl, (unsigned char *)buf + *got,
		                           len - *got);
		if (ret > 0) {
			*got += (size_t)ret;
			continue;
		}
		if (m->sink_err == 0 && want(ret))
			return 0;
		if (*got > 0)
			return 0; /* the error comes back on the next call */
		return ret == 0 ? LORA_ECLOSED : mem_fail(m, ret);
	}
	return 0;
}

int node_tls_mem_write(struct node_tls_mem *m, const void *p, size_t len)
{
	const unsigned char *b = p;
	while (len > 0) {
		int ret = mbedtls_ssl_write(&m->ssl, b, len);
		if (ret <= 0)
			return ret == 0 ? LORA_EINTERNAL : mem_fail(m, ret);
		b += ret;
		len -= (size_t)ret;
	}
	return 0;
}

uint64_t node_tls_mem_peer_id(const struct node_tls_mem *m)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&m->ssl);
	if (!m->done || crt == NULL ||
	    mbedtls_ssl_get_verify_result(&m->ssl) != 0)
		return 0;
	return node_tls_crt_id(crt);
}

void node_tls_mem_error(const struct node_tls_mem *m, char *out, size_t bytes)
{
	mbedtls_strerror(m->last_err, out, bytes);
}

void node_tls_mem_close_notify(struct node_tls_mem *m)
{
	(void)mbedtls_ssl_close_notify(&m->ssl);
}
