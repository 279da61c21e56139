/*
 * bolt_config.c - the bolt_* settings and the address Bolt listens on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt_int.h"

#define BOLT_CONNECTIONS_LIMIT 65536 /* the most bolt_connections_max takes */

static int set_bolt_addr(struct node_config *c, const char *v, char *errmsg)
{
	const char *colon = strrchr(v, ':');
	if (!strcmp(v, "off")) {
		snprintf(c->bolt_addr, sizeof c->bolt_addr, "off");
		return 0;
	}
	if (colon == NULL || colon == v || colon[1] == '\0' ||
	    strlen(v) >= NODE_ADDR_BYTES_MAX)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "bolt_addr: expected host:port or off, got "
		                 "'%.200s'",
		                 v);
	for (const char *p = colon + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "bolt_addr: bad port in '%.200s'", v);
	snprintf(c->bolt_addr, sizeof c->bolt_addr, "%s", v);
	return 0;
}

int node_config_set_bolt(struct node_config *c, const char *key,
                         const char *value, char *errmsg)
{
	if (!strcmp(key, "bolt_addr"))
		return set_bolt_addr(c, value, errmsg);
	if (!strcmp(key, "bolt_auth")) {
		if (!strcmp(value, "open"))
			c->bolt_auth = NODE_BOLT_AUTH_OPEN;
		else if (!strcmp(value, "none"))
			c->bolt_auth = NODE_BOLT_AUTH_NONE;
		else
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "bolt_auth: open or none, got '%.64s'",
			                 value);
		return 0;
	}
	if (!strcmp(key, "bolt_connections_max")) {
		char *end = NULL;
		unsigned long long v = strtoull(value, &end, 10);
		if (!isdigit((unsigned char)value[0]) || *end || v == 0 ||
		    v > BOLT_CONNECTIONS_LIMIT)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "bolt_connections_max: 1 to %d",
			                 BOLT_CONNECTIONS_LIMIT);
		c->bolt_connections_max = (uint32_t)v;
		return 0;
	}
	return lora_errf(LORA_ECONFIG, errmsg, "unknown setting '%s'", key);
}

void node_config_bolt_addr(const struct node_config *c, char *out, size_t bytes)
{
	if (!strcmp(c->bolt_addr, "off")) {
		snprintf(out, bytes, "%s", "");
		return;
	}
	if (c->bolt_addr[0]) {
		snprintf(out, bytes, "%s", c->bolt_addr);
		return;
	}
	const char *colon = strrchr(c->client_addr, ':');
	int host = colon ? (int)(colon - c->client_addr) : 0;
	snprintf(out, bytes, "%.*s:%d", host, c->client_addr,
	         BOLT_PORT_DEFAULT);
}
