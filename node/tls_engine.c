/* tls_engine.c - nng's TLS engine on mbedtls, with our key exchange order. */
/*
 * The native port, the native forwarding of followers (forward.c) and the
 * native port's watchdog (native.c) use nng's tls+tcp. This engine does what
 * nng's own mbedtls engine does (supplemental/tls/mbedtls), and offers X25519
 * and P-256 first (node_tls_conf_curves: mbedtls's own order starts with P-521,
 * whose handshakes cost 1.7x the CPU). The peer port no longer uses it: the
 * peer transport does its TLS itself (tls_peer.c), and checks the node id a
 * peer's certificate names there (node_tls_crt_id, below). Registered
 * once, before lorad makes its first nng TLS configuration
 * (node_tls_nng_config), after nng's own initialisation (which would
 * replace it); every configuration checks it is still the engine.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/engine.h>

#include "log.h"
#include "lora.h"
#include "tls.h"

#define ENGINE_PAIRS_MAX  4 /* own certificates per configuration */
#define ENGINE_NAME_BYTES 256

struct nng_tls_engine_config {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_x509_crl crl;
	mbedtls_x509_crt certs[ENGINE_PAIRS_MAX];
	mbedtls_pk_context keys[ENGINE_PAIRS_MAX];
	int n_pairs;
	int server; /* a listener's configuration */
	char server_name[ENGINE_NAME_BYTES];
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

struct nng_tls_engine_conn {
	void *tls;    /* nng's connection */
	int recv_err; /* nng error met after bytes conn_recv returned */
	mbedtls_ssl_context ssl;
};

/* The id in "lora-node-<id>" (len bytes at p), or 0: the id canonical,
 * 1 to UINT64_MAX in decimal without leading zeros, so one id has one
 * name (the name a dialer checks, NODE_TLS_PEER_NAME_FMT). */
uint64_t node_tls_name_id(const unsigned char *p, size_t len)
{
	static const char pre[] = "lora-node-";
	size_t pl = sizeof pre - 1;
	if (len <= pl || len > pl + 20 || memcmp(p, pre, pl) != 0 ||
	    p[pl] == '0')
		return 0;
	uint64_t v = 0;
	for (size_t i = pl; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

/* The node id a certificate names: its one DNS subjectAltName
 * "lora-node-<id>" (other DNS names, e.g. localhost, do not count); 0
 * when it has none or more than one. The CN is never looked at: mbedtls's
 * name check on the dialing side ignores it when SANs exist. */
uint64_t node_tls_crt_id(const mbedtls_x509_crt *crt)
{
	uint64_t id = 0;
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
	     s != NULL && s->buf.p != NULL; s = s->next) {
		if ((s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK) !=
		    MBEDTLS_X509_SAN_DNS_NAME)
			continue;
		uint64_t v = node_tls_name_id(s->buf.p, s->buf.len);
		if (v && id)
			return 0;
		if (v)
			id = v;
	}
	return id;
}

uint64_t node_tls_cert_pem_id(const char *pem)
{
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	uint64_t id = 0;
	if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem,
	                           strlen(pem) + 1) == 0)
		id = node_tls_crt_id(&crt);
	mbedtls_x509_crt_free(&crt);
	return id;
}

/*
 * What a peer did is never NNG_ECLOSED (nor NNG_ECANCELED): nng 1.5.2
 * passes an error met while a new connection negotiates to its
 * listener's (or dialer's) loop, which takes those two to mean the
 * listener (dialer) itself was closed and stops for good (nng issue
 * 1518, fixed in 1.6.0). A client that sent close_notify right after its
 * handshake (`openssl s_client </dev/null`) then left the native port
 * accepting nothing until a restart; a leader that closed a follower's
 * connection while it negotiated stopped the follower's forwarding to
 * it. A peer's close_notify is NNG_ECONNRESET, which both loops take as
 * a remote condition: the listener goes on at once, the dialer dials
 * again. (A TCP stream that just ends never reaches the engine: nng's
 * TLS layer reports it as NNG_ECONNSHUT, after which the listener pauses
 * 100 ms.)
 */
static int peer_closed = NNG_ECONNRESET;

#ifdef LORA_TEST_HOOKS
/* Test hook (compiled with LORA_TEST_HOOKS), LORA_TLS_PEER_CLOSED_TESTING=1
 * in lorad's environment: a peer's close is NNG_ECLOSED, as it was before,
 * so that a client's close_notify stops the native listener's accept
 * loop and a test sees native.c's watchdog start it again
 * (integration_native_hostile). It holds for the node's own dialers too
 * (forwarding, the watchdog's probe). Read at registration. */
static void peer_closed_hook(void)
{
	const char *e = getenv("LORA_TLS_PEER_CLOSED_TESTING");
	if (e && strcmp(e, "1") == 0)
		peer_closed = NNG_ECLOSED;
}
#else
static void peer_closed_hook(void)
{
}
#endif

/* An mbedtls error as an nng error. */
static int mk_err(int ret)
{
	switch (ret) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		return NNG_EPEERAUTH;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_NET_CONN_RESET:
		return peer_closed;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return NNG_ENOMEM;
	default:
		return NNG_ECRYPTO;
	}
}

static int net_send(void *arg, const unsigned char *buf, size_t len)
{
	struct nng_tls_engine_conn *ec = arg;
	size_t sz = len;
	int rv = nng_tls_engine_send(ec->tls, buf, &sz);
	if (rv == 0)
		return (int)sz;
	return rv == NNG_EAGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE
	                        : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int net_recv(void *arg, unsigned char *buf, size_t len)
{
	struct nng_tls_engine_conn *ec = arg;
	size_t sz = len;
	int rv = nng_tls_engine_recv(ec->tls, buf, &sz);
	if (rv == 0)
		return (int)sz;
	return rv == NNG_EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ
	                        : MBEDTLS_ERR_NET_RECV_FAILED;
}

static int conn_init(nng_tls_engine_conn *ec, void *tls,
                     nng_tls_engine_config *cfg)
{
	ec->tls = tls;
	ec->recv_err = 0;
	mbedtls_ssl_init(&ec->ssl);
	mbedtls_ssl_set_bio(&ec->ssl, ec, net_send, net_recv, NULL);
	int ret = mbedtls_ssl_setup(&ec->ssl, &cfg->conf);
	if (ret == 0 && cfg->server_name[0])
		ret = mbedtls_ssl_set_hostname(&ec->ssl, cfg->server_name);
	if (ret != 0)
		return mk_err(ret);
	return 0;
}

static void conn_fini(nng_tls_engine_conn *ec)
{
	mbedtls_ssl_free(&ec->ssl);
}

static void conn_close(nng_tls_engine_conn *ec)
{
	(void)mbedtls_ssl_close_notify(&ec->ssl);
}

/* A failed handshake is reported as the peer's failure (NNG_EPEERAUTH):
 * nng 1.5.2's accept loop pauses 100 ms after an error it does not know
 * as the peer's (NNG_ECRYPTO), else clients sending garbage would hold up
 * everyone's new connections. Local failures in the handshake (no usable
 * cipher suite, the random generator) are labelled the same way. */
static int conn_handshake(nng_tls_engine_conn *ec)
{
	int ret = mbedtls_ssl_handshake(&ec->ssl);
	if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
	    ret == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NNG_EAGAIN;
	int rv = ret != 0 ? mk_err(ret) : 0;
	return rv == NNG_ECRYPTO ? NNG_EPEERAUTH : rv;
}

/* mbedtls_ssl_read's result as an nng error (ret <= 0). */
static int recv_err(int ret)
{
	if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
	    ret == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NNG_EAGAIN;
	return ret == 0 ? peer_closed : mk_err(ret); /* (our BIO never ends) */
}

/* Every record nng's buffer already holds, up to *szp bytes: nng finishes
 * a receive per call, and each finish is a task-queue hand-off, so a
 * burst of records costs one instead of one per record. An error after
 * some bytes is kept for the next call. */
static int conn_recv(nng_tls_engine_conn *ec, uint8_t *buf, size_t *szp)
{
	if (ec->recv_err != 0) {
		int rv = ec->recv_err;
		ec->recv_err = 0;
		return rv;
	}
	size_t got = 0;
	while (got < *szp) {
		int ret = mbedtls_ssl_read(&ec->ssl, buf + got, *szp - got);
		if (ret > 0) {
			got += (size_t)ret;
			continue;
		}
		int rv = recv_err(ret);
		if (got == 0)
			return rv;
		if (rv != NNG_EAGAIN)
			ec->recv_err = rv;
		break;
	}
	*szp = got;
	return 0;
}

static int conn_send(nng_tls_engine_conn *ec, const uint8_t *buf, size_t *szp)
{
	int ret = mbedtls_ssl_write(&ec->ssl, buf, *szp);
	if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
	    ret == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NNG_EAGAIN;
	if (ret < 0)
		return mk_err(ret);
	*szp = (size_t)ret;
	return 0;
}

static bool conn_verified(nng_tls_engine_conn *ec)
{
	return mbedtls_ssl_get_verify_result(&ec->ssl) == 0;
}

static void config_fini(nng_tls_engine_config *cfg)
{
	mbedtls_ssl_config_free(&cfg->conf);
	mbedtls_x509_crt_free(&cfg->ca);
	mbedtls_x509_crl_free(&cfg->crl);
	for (int i = 0; i < ENGINE_PAIRS_MAX; i++) {
		mbedtls_x509_crt_free(&cfg->certs[i]);
		mbedtls_pk_free(&cfg->keys[i]);
	}
	mbedtls_ctr_drbg_free(&cfg->drbg);
	mbedtls_entropy_free(&cfg->entropy);
}

static int config_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
	memset(cfg, 0, sizeof *cfg);
	mbedtls_ssl_config_init(&cfg->conf);
	mbedtls_x509_crt_init(&cfg->ca);
	mbedtls_x509_crl_init(&cfg->crl);
	for (int i = 0; i < ENGINE_PAIRS_MAX; i++) {
		mbedtls_x509_crt_init(&cfg->certs[i]);
		mbedtls_pk_init(&cfg->keys[i]);
	}
	mbedtls_entropy_init(&cfg->entropy);
	mbedtls_ctr_drbg_init(&cfg->drbg);
	int server = mode == NNG_TLS_MODE_SERVER;
	cfg->server = server;
	int ret = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func,
	                                &cfg->entropy, NULL, 0);
	if (ret == 0)
		ret = mbedtls_ssl_config_defaults(
		    &cfg->conf,
		    server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
		    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		config_fini(cfg);
		return NNG_ECRYPTO;
	}
	mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
	node_tls_conf_curves(&cfg->conf);
	mbedtls_ssl_conf_authmode(&cfg->conf,
	                          server ? MBEDTLS_SSL_VERIFY_NONE
	                                 : MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             MBEDTLS_SSL_MINOR_VERSION_3);
	return 0;
}

static int config_server(nng_tls_engine_config *cfg, const char *name)
{
	if (strlen(name) >= sizeof cfg->server_name)
		return NNG_EINVAL;
	snprintf(cfg->server_name, sizeof cfg->server_name, "%s", name);
	return 0;
}

static int config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
	int m = mode == NNG_TLS_AUTH_MODE_REQUIRED ? MBEDTLS_SSL_VERIFY_REQUIRED
	        : mode == NNG_TLS_AUTH_MODE_OPTIONAL
	            ? MBEDTLS_SSL_VERIFY_OPTIONAL
	            : MBEDTLS_SSL_VERIFY_NONE;
	mbedtls_ssl_conf_authmode(&cfg->conf, m);
	return 0;
}

static int config_ca_chain(nng_tls_engine_config *cfg, const char *certs,
                           const char *crl)
{
	if (mbedtls_x509_crt_parse(&cfg->ca, (const unsigned char *)certs,
	                           strlen(certs) + 1) != 0)
		return NNG_EINVAL;
	if (crl != NULL &&
	    mbedtls_x509_crl_parse(&cfg->crl, (const unsigned char *)crl,
	                           strlen(crl) + 1) != 0)
		return NNG_EINVAL;
	mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, crl ? &cfg->crl : NULL);
	return 0;
}

static int config_own_cert(nng_tls_engine_config *cfg, const char *cert,
                           const char *key, const char *pass)
{
	if (cfg->n_pairs >= ENGINE_PAIRS_MAX)
		return NNG_ENOSPC;
	int i = cfg->n_pairs;
	if (mbedtls_x509_crt_parse(&cfg->certs[i], (const unsigned char *)cert,
	                           strlen(cert) + 1) != 0 ||
	    mbedtls_pk_parse_key(&cfg->keys[i], (const unsigned char *)key,
	                         strlen(key) + 1, (const unsigned char *)pass,
	                         pass ? strlen(pass) : 0) != 0)
		return NNG_EINVAL;
	if (mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->certs[i],
	                              &cfg->keys[i]) != 0)
		return NNG_ENOMEM;
	cfg->n_pairs++;
	return 0;
}

static int config_version(nng_tls_engine_config *cfg, nng_tls_version min,
                          nng_tls_version max)
{
	(void)max;
	if (min > NNG_TLS_1_2)
		return NNG_ENOTSUP; /* mbedtls 2.28: TLS 1.2 */
	mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             MBEDTLS_SSL_MINOR_VERSION_3);
	return 0;
}

static nng_tls_engine_config_ops config_ops = {
    .size = sizeof(nng_tls_engine_config),
    .init = config_init,
    .fini = config_fini,
    .server = config_server,
    .auth = config_auth,
    .ca_chain = config_ca_chain,
    .own_cert = config_own_cert,
    .version = config_version,
};

static nng_tls_engine_conn_ops conn_ops = {
    .size = sizeof(nng_tls_engine_conn),
    .init = conn_init,
    .fini = conn_fini,
    .close = conn_close,
    .handshake = conn_handshake,
    .recv = conn_recv,
    .send = conn_send,
    .verified = conn_verified,
};

static const nng_tls_engine engine = {
    .version = NNG_TLS_ENGINE_VERSION,
    .config_ops = &config_ops,
    .conn_ops = &conn_ops,
    .name = "lora-mbedtls",
    .description = "mbedtls, with the peer's node id (node/tls_engine.c)",
    .fips_mode = false,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered_rv = -1;

/* nng's initialisation (nni_init, at its first call that needs it)
 * registers nng's own engine over whichever came before: make it run
 * first, with a configuration thrown away, then register ours. */
static void do_register(void)
{
	nng_tls_config *first;
	peer_closed_hook();
	if (nng_tls_config_alloc(&first, NNG_TLS_MODE_CLIENT) == 0)
		nng_tls_config_free(first);
	registered_rv = nng_tls_engine_register(&engine);
	if (registered_rv == 0 && !node_tls_engine_ours())
		registered_rv = NNG_ENOTSUP;
}

int node_tls_engine_ours(void)
{
	const char *name = nng_tls_engine_name();
	return name != NULL && strcmp(name, engine.name) == 0;
}

int node_tls_engine_register(void)
{
	pthread_once(&once, do_register);
	return registered_rv == 0 ? 0 : LORA_EIO;
}
