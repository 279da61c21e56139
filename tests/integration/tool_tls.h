/*
 * tool_tls.h - the dial of the integration tests' native-protocol tools
 * (native_cursor, native_flood): tcp://HOSTPORT, or with LORA_CA set (as
 * lib.sh does with IT_TLS=1) tls+tcp://HOSTPORT, where the node's
 * certificate must chain to LORA_CA and name HOST.
 */
#ifndef LORA_TOOL_TLS_H
#define LORA_TOOL_TLS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* TLS for d when LORA_CA is set: 0 or an nng error. */
static inline int tool_tls(nng_dialer d, const char *hostport)
{
	const char *ca = getenv("LORA_CA");
	if (ca == NULL || ca[0] == '\0')
		return 0;
	char host[256];
	snprintf(host, sizeof host, "%s", hostport);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv)
		return rv;
	rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0)
		rv = nng_tls_config_server_name(cfg, host);
	if (rv == 0)
		rv = nng_tls_config_ca_file(cfg, ca);
	if (rv == 0)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg); /* the dialer keeps its own reference */
	return rv;
}

/* Creates s's dialer to hostport (from src when not NULL) and starts it
 * with flags (0: wait for the connection; NNG_FLAG_NONBLOCK: in the
 * background): 0 or an nng error. */
static inline int tool_dial(nng_socket s, const char *hostport,
                            const nng_sockaddr *src, int flags)
{
	const char *ca = getenv("LORA_CA");
	char url[300];
	snprintf(url, sizeof url, "%s://%s", ca && ca[0] ? "tls+tcp" : "tcp",
	         hostport);
	nng_dialer d;
	int rv = nng_dialer_create(&d, s, url);
	if (rv == 0 && src != NULL)
		rv = nng_dialer_set_addr(d, NNG_OPT_LOCADDR, src);
	if (rv == 0)
		rv = tool_tls(d, hostport);
	if (rv == 0)
		rv = nng_dialer_start(d, flags);
	return rv;
}

#endif
