/* https.c - one blocking HTTP or HTTPS POST (mbedtls), for the shell's
 * admin calls. nng 1.5.2's HTTP client is not used: it tears a connection
 * down on its own threads after the answer, and could panic there
 * ("pthread_mutex_lock: Invalid argument") over TLS, and over plain HTTP
 * when the shell's nng_fini ran before that teardown had finished. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "cli.h"

#define HTTPS_ANSWER_BYTES_MAX (4u << 20) /* an admin answer */

struct https {
	int fd;
	int tls; /* 0: plain HTTP on fd */
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
	ssize_t w = send(*(int *)arg, buf, len, MSG_NOSIGNAL);
	return w >= 0 ? (int)w : MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
	ssize_t r = recv(*(int *)arg, buf, len, 0);
	return r >= 0 ? (int)r : MBEDTLS_ERR_SSL_TIMEOUT;
}

/* A TCP connection to "host:port" with send/receive timeouts; -1. */
static int dial(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM},
	                *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = timeout_ms / 1000,
	                     .tv_usec = timeout_ms % 1000 * 1000};
	if (fd >= 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
	     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
	     connect(fd, ai->ai_addr, ai->ai_addrlen))) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static void https_free(struct https *h)
{
	mbedtls_ssl_free(&h->ssl);
	mbedtls_ssl_config_free(&h->conf);
	mbedtls_x509_crt_free(&h->ca);
	mbedtls_ctr_drbg_free(&h->drbg);
	mbedtls_entropy_free(&h->entropy);
	if (h->fd >= 0)
		close(h->fd);
}

static void https_init(struct https *h, int fd)
{
	h->fd = fd;
	mbedtls_ssl_init(&h->ssl);
	mbedtls_ssl_config_init(&h->conf);
	mbedtls_x509_crt_init(&h->ca);
	mbedtls_entropy_init(&h->entropy);
	mbedtls_ctr_drbg_init(&h->drbg);
}

/* TLS over h->fd to host, verified against the CA file ca. */
static int https_open(struct https *h, const char *host, const char *ca,
                      char *errmsg)
{
	int ret = mbedtls_ctr_drbg_seed(&h->drbg, mbedtls_entropy_func,
	                                &h->entropy, NULL, 0);
	if (ret == 0 && (ret = mbedtls_x509_crt_parse_file(&h->ca, ca)) != 0)
		return lora_errf(LORA_EINVAL, errmsg, "CA file %s: -0x%04x", ca,
		                 (unsigned)-ret);
	if (ret == 0)
		ret = mbedtls_ssl_config_defaults(
		    &h->conf, MBEDTLS_SSL_IS_CLIENT,
		    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret == 0) {
		mbedtls_ssl_conf_authmode(&h->conf,
		                          MBEDTLS_SSL_VERIFY_REQUIRED);
		mbedtls_ssl_conf_ca_chain(&h->conf, &h->ca, NULL);
		mbedtls_ssl_conf_rng(&h->conf, mbedtls_ctr_drbg_random,
		                     &h->drbg);
		ret = mbedtls_ssl_setup(&h->ssl, &h->conf);
	}
	if (ret == 0)
		ret = mbedtls_ssl_set_hostname(&h->ssl, host);
	if (ret == 0) {
		mbedtls_ssl_set_bio(&h->ssl, &h->fd, bio_send, bio_recv, NULL);
		ret = mbedtls_ssl_handshake(&h->ssl);
	}
	if (ret != 0) {
		char why[128];
		mbedtls_strerror(ret, why, sizeof why);
		return lora_errf(LORA_EUNAVAILABLE, errmsg, "TLS to %s: %s",
		                 host, why);
	}
	return 0;
}

/* One write or read on the connection: TLS or plain; < 0 on error, 0 at
 * the end of the answer. */
static int io_write(struct https *h, const char *p, size_t n)
{
	if (h->tls)
		return mbedtls_ssl_write(&h->ssl, (const unsigned char *)p, n);
	ssize_t w = send(h->fd, p, n, MSG_NOSIGNAL);
	return w > 0 ? (int)w : -1;
}

static int io_read(struct https *h, char *p, size_t n)
{
	if (!h->tls) {
		ssize_t r = recv(h->fd, p, n, 0);
		return r >= 0 ? (int)r : -1;
	}
	int r = mbedtls_ssl_read(&h->ssl, (unsigned char *)p, n);
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
	    r == MBEDTLS_ERR_SSL_CONN_EOF)
		return 0;
	return r;
}

/* Writes all of req, then reads the answer to its end (the request asks
 * for Connection: close) into *out (lora_free); its length in *len. -1
 * when req was not all written (not executed), -2 when it was but the
 * answer was lost (it may have taken effect). */
static int https_exchange(struct https *h, const char *req, char **out,
                          size_t *len)
{
	size_t n = strlen(req), off = 0;
	while (off < n) {
		int w = io_write(h, req + off, n - off);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	size_t cap = 4096, got = 0;
	char *buf = lora_malloc(cap + 1);
	while (buf != NULL) {
		if (got == cap) {
			char *nb = cap < HTTPS_ANSWER_BYTES_MAX
			               ? lora_realloc(buf, 2 * cap + 1)
			               : NULL;
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		int r = io_read(h, buf + got, cap - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0) {
			buf[got] = '\0';
			*out = buf;
			*len = got;
			return 0;
		}
		break;
	}
	lora_free(buf);
	return -2;
}

/* Whether the body after the head ans..sep ("\r\n\r\n") is all there
 * (alen bytes read in all): as long as its Content-Length says, when the
 * head has one (the node's admin answers always do). */
static int body_complete(char *ans, char *sep, size_t alen)
{
	*sep = '\0';
	const char *cl = strcasestr(ans, "\r\nContent-Length:");
	unsigned long long want = 0;
	int has = cl && sscanf(cl + 17, " %llu", &want) == 1;
	*sep = '\r';
	return !has || want == alen - (size_t)(sep + 4 - ans);
}

int lora_http_post(const char *hostport, const char *ca, const char *path,
                   const char *authz, const char *body, int timeout_ms,
                   int *status, char **body_out, char *errmsg)
{
	char host[LORA_CLIENT_ADDR_BYTES];
	snprintf(host, sizeof host, "%s", hostport);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return lora_errf(LORA_EINVAL, errmsg, "no port in %s",
		                 hostport);
	*colon = '\0';
	int fd = dial(host, colon + 1, timeout_ms);
	if (fd < 0)
		return lora_errf(LORA_EUNAVAILABLE, errmsg, "connect %s: %s",
		                 hostport, strerror(errno));
	struct https h;
	https_init(&h, fd);
	size_t rl = strlen(path) + strlen(host) + strlen(body) +
	            (authz ? strlen(authz) : 0) + 256;
	char *req = lora_malloc(rl), *ans = NULL;
	size_t alen = 0;
	h.tls = ca != NULL;
	int rc = req == NULL ? lora_errf(LORA_ENOMEM, errmsg, "out of memory")
	         : h.tls     ? https_open(&h, host, ca, errmsg)
	                     : 0;
	if (rc == 0) {
		snprintf(req, rl,
		         "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
		         "application/json\r\n%s%s%sContent-Length: "
		         "%zu\r\nConnection: close\r\n\r\n%s",
		         path, host, authz ? "Authorization: " : "",
		         authz ? authz : "", authz ? "\r\n" : "", strlen(body),
		         body);
		int ex = https_exchange(&h, req, &ans, &alen);
		if (ex == -1)
			rc =
			    lora_errf(LORA_EUNAVAILABLE, errmsg,
			              "POST %s://%s%s: not sent",
			              h.tls ? "https" : "http", hostport, path);
		else if (ex != 0) /* sent: it may have taken effect */
			rc =
			    lora_errf(LORA_EUNKNOWN_OUTCOME, errmsg,
			              "POST %s://%s%s: sent, no answer",
			              h.tls ? "https" : "http", hostport, path);
	}
	char *sep = ans ? strstr(ans, "\r\n\r\n") : NULL;
	/* sent: an answer cut short or malformed leaves the outcome open */
	if (rc == 0 &&
	    (sep == NULL || sscanf(ans, "HTTP/1.%*c %d", status) != 1 ||
	     !body_complete(ans, sep, alen)))
		rc = lora_errf(LORA_EUNKNOWN_OUTCOME, errmsg,
		               "POST %s://%s%s: malformed or truncated answer",
		               h.tls ? "https" : "http", hostport, path);
	if (rc == 0 && (*body_out = lora_strndup(
	                    sep + 4, alen - (size_t)(sep + 4 - ans))) == NULL)
		rc = lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	if (req)
		mbedtls_platform_zeroize(req, rl); /* it held the password */
	lora_free(req);
	lora_free(ans);
	https_free(&h);
	return rc;
}
