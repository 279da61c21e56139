/* tls.c - listener TLS settings and the nng TLS configurations from them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "tls.h"

#define NODE_TLS_PEM_BYTES_MAX (1u << 20) /* one certificate or key file */

int node_tls_parse_mode(const char *v, int *mode, const char *key, char *errmsg)
{
	if (!strcmp(v, "off"))
		*mode = NODE_TLS_OFF;
	else if (!strcmp(v, "optional"))
		*mode = NODE_TLS_OPTIONAL;
	else if (!strcmp(v, "required") || !strcmp(v, "on"))
		*mode = NODE_TLS_REQUIRED;
	else
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s: required, optional or off, got '%.64s'",
		                 key, v);
	return 0;
}

const char *node_tls_mode_name(int mode)
{
	switch (mode) {
	case NODE_TLS_OPTIONAL:
		return "optional";
	case NODE_TLS_REQUIRED:
		return "required";
	default:
		return "off";
	}
}

/* The whole file at path, NUL-terminated, into *out (free()); or an
 * error naming what. */
static int pem_read(const char *path, const char *what, char **out,
                    char *errmsg)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return lora_errf(LORA_ECONFIG, errmsg, "%s: cannot open '%s'",
		                 what, path);
	char *buf = malloc(NODE_TLS_PEM_BYTES_MAX + 1);
	size_t n = buf ? fread(buf, 1, NODE_TLS_PEM_BYTES_MAX + 1, f) : 0;
	int err = buf == NULL || ferror(f) || n > NODE_TLS_PEM_BYTES_MAX;
	fclose(f);
	if (err) {
		free(buf);
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s: cannot read '%s' (at most %u bytes)",
		                 what, path, NODE_TLS_PEM_BYTES_MAX);
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

int node_tls_validate(const struct node_tls *t, const char *what,
                      int allow_optional, int need_ca, char *errmsg)
{
	if (t->mode == NODE_TLS_OFF)
		return 0;
	if (t->mode == NODE_TLS_OPTIONAL && !allow_optional)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s_tls: optional is not offered on this port "
		                 "(nng's tls+tcp cannot share a port with "
		                 "plaintext): use required or off",
		                 what);
	if (t->cert[0] == '\0' || t->key[0] == '\0')
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s_tls: needs %s_tls_cert and %s_tls_key (or "
		                 "tls_cert and tls_key)",
		                 what, what, what);
	if (need_ca && t->ca[0] == '\0')
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s_tls: needs %s_tls_ca (or tls_ca)", what,
		                 what);
	const char *files[] = {t->cert, t->key, t->ca};
	for (int i = 0; i < 3; i++) {
		char *pem = NULL;
		if (files[i][0] == '\0')
			continue;
		int rc = pem_read(files[i], what, &pem, errmsg);
		free(pem);
		if (rc)
			return rc;
	}
	return 0;
}

/* Our certificate and key from t's files into cfg. */
static int own_cert(nng_tls_config *cfg, const struct node_tls *t, char *errmsg)
{
	char *cert = NULL, *key = NULL;
	int rc = pem_read(t->cert, "tls certificate", &cert, errmsg);
	if (rc == 0)
		rc = pem_read(t->key, "tls key", &key, errmsg);
	if (rc == 0) {
		int rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
		if (rv)
			rc =
			    lora_errf(LORA_ECONFIG, errmsg,
			              "tls: certificate '%s' with key '%s': %s",
			              t->cert, t->key, nng_strerror(rv));
	}
	free(cert);
	free(key);
	return rc;
}

static int ca_chain(nng_tls_config *cfg, const struct node_tls *t, char *errmsg)
{
	char *ca = NULL;
	int rc = pem_read(t->ca, "tls ca", &ca, errmsg);
	if (rc == 0) {
		int rv = nng_tls_config_ca_chain(cfg, ca, NULL);
		if (rv)
			rc = lora_errf(LORA_ECONFIG, errmsg, "tls ca '%s': %s",
			               t->ca, nng_strerror(rv));
	}
	free(ca);
	return rc;
}

int node_tls_nng_config(const struct node_tls *t, int server, int verify_peer,
                        const char *server_name, struct nng_tls_config **out,
                        char *errmsg)
{
	if (node_tls_engine_register() != 0)
		return lora_errf(LORA_EIO, errmsg,
		                 "tls: cannot register the TLS engine");
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER
	                                           : NNG_TLS_MODE_CLIENT);
	if (rv)
		return lora_errf(LORA_EIO, errmsg, "tls config: %s",
		                 nng_strerror(rv));
	if (!node_tls_engine_ours()) { /* not our key exchange order */
		nng_tls_config_free(cfg);
		return lora_errf(LORA_EIO, errmsg,
		                 "tls: nng's TLS engine is '%s', not ours",
		                 nng_tls_engine_name());
	}
	int rc = 0;
	if (t->cert[0] && t->key[0])
		rc = own_cert(cfg, t, errmsg);
	else if (server)
		rc = lora_errf(LORA_ECONFIG, errmsg,
		               "tls: a listener needs a certificate and a key");
	if (rc == 0 && t->ca[0])
		rc = ca_chain(cfg, t, errmsg);
	int verify = server ? verify_peer : 1;
	if (rc == 0 && verify && t->ca[0] == '\0')
		rc = lora_errf(LORA_ECONFIG, errmsg,
		               "tls: verifying the other end needs a CA");
	if (rc == 0)
		rv = nng_tls_config_auth_mode(
		    cfg, verify ? NNG_TLS_AUTH_MODE_REQUIRED
		                : NNG_TLS_AUTH_MODE_NONE);
	if (rc == 0 && rv == 0 && !server && server_name != NULL)
		rv = nng_tls_config_server_name(cfg, server_name);
	if (rc == 0 && rv)
		rc = lora_errf(LORA_EIO, errmsg, "tls config: %s",
		               nng_strerror(rv));
	if (rc) {
		nng_tls_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

struct node_tls node_tls_member_trust(const struct node_tls *listener,
                                      const char *peer_ca)
{
	struct node_tls t = *listener;
	if (t.ca[0] == '\0')
		snprintf(t.ca, sizeof t.ca, "%s", peer_ca);
	return t;
}

void node_tls_url(const struct node_tls *t, const char *addr, char *out,
                  size_t bytes)
{
	snprintf(out, bytes, "%s://%s",
	         t->mode == NODE_TLS_OFF ? "tcp" : "tls+tcp", addr);
}
