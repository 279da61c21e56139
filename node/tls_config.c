/* tls_config.c - the tls and <listener>_tls* settings of lorad. */
#include <stdio.h>
#include <string.h>

#include "config.h"

/* The listener a key names ("http_tls_cert": http), the rest of the key
 * after "<name>_" into *rest; NULL for the shorthands that set all. */
static struct node_tls *tls_target(struct node_config *c, const char *key,
                                   const char **rest)
{
	static const char *names[] = {"http", "native", "bolt", "peer"};
	struct node_tls *all[] = {&c->http_tls, &c->native_tls, &c->bolt_tls,
	                          &c->peer_tls};
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(names[i]);
		if (!strncmp(key, names[i], n) && key[n] == '_') {
			*rest = key + n + 1;
			return all[i];
		}
	}
	*rest = key;
	return NULL;
}

/* One setting (field "tls", "tls_cert", "tls_key" or "tls_ca") on t;
 * 1 when field is none of them. */
static int tls_set_one(struct node_tls *t, const char *field, const char *value,
                       const char *key, char *errmsg)
{
	char *dst = NULL;
	if (!strcmp(field, "tls"))
		return node_tls_parse_mode(value, &t->mode, key, errmsg);
	if (!strcmp(field, "tls_cert"))
		dst = t->cert;
	else if (!strcmp(field, "tls_key"))
		dst = t->key;
	else if (!strcmp(field, "tls_ca"))
		dst = t->ca;
	else
		return 1;
	if (strlen(value) >= NODE_TLS_PATH_BYTES_MAX)
		return lora_errf(LORA_ECONFIG, errmsg, "%s: too long", key);
	snprintf(dst, NODE_TLS_PATH_BYTES_MAX, "%s", value);
	return 0;
}

int node_config_set_tls(struct node_config *c, const char *key,
                        const char *value, char *errmsg)
{
	const char *field;
	struct node_tls *t = tls_target(c, key, &field);
	if (t != NULL)
		return tls_set_one(t, field, value, key, errmsg);
	struct node_tls *all[] = {&c->http_tls, &c->native_tls, &c->bolt_tls,
	                          &c->peer_tls};
	for (int i = 0; i < 4; i++) {
		int rc = tls_set_one(all[i], field, value, key, errmsg);
		if (rc)
			return rc;
	}
	/* the nng ports cannot tell TLS from plaintext: for them the
	 * shorthand's optional is required */
	if (c->native_tls.mode == NODE_TLS_OPTIONAL && !strcmp(key, "tls"))
		c->native_tls.mode = c->peer_tls.mode = NODE_TLS_REQUIRED;
	return 0;
}

int node_config_validate_tls(const struct node_config *c, char *errmsg)
{
	int rc = node_tls_validate(&c->http_tls, "http", 1, 0, errmsg);
	if (rc == 0)
		rc = node_tls_validate(&c->native_tls, "native", 0, 0, errmsg);
	if (rc == 0 && strcmp(c->bolt_addr, "off"))
		rc = node_tls_validate(&c->bolt_tls, "bolt", 1, 0, errmsg);
	if (rc == 0)
		rc = node_tls_validate(&c->peer_tls, "peer", 0, 1, errmsg);
	return rc;
}
