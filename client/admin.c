/* admin.c - cluster admin calls of the shell (:add, :remove, :transfer):
 * HTTP POSTs to the leader's admin API, whose address comes from the
 * cluster status that the native protocol returns, over a blocking
 * socket (https with the client's CA when it has one: https.c). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <mbedtls/platform_util.h>

#include "cli.h"

int lora_status_leader_http(const char *status_json, char *out, size_t size,
                            char *errmsg)
{
	json_t *root = json_loads(status_json, 0, NULL);
	json_t *leader = root ? json_object_get(root, "leader") : NULL;
	json_t *nodes = root ? json_object_get(root, "nodes") : NULL;
	int rv = lora_errf(LORA_EUNAVAILABLE, errmsg, "no leader right now");
	size_t i;
	json_t *n;
	if (json_is_integer(leader) && json_is_array(nodes)) {
		json_array_foreach(nodes, i, n)
		{
			json_t *id = json_object_get(n, "id");
			const char *a =
			    json_string_value(json_object_get(n, "address"));
			if (json_is_integer(id) && a &&
			    json_integer_value(id) ==
			        json_integer_value(leader)) {
				snprintf(out, size, "%s", a);
				rv = 0;
			}
		}
	}
	json_decref(root);
	return rv;
}

/* "Basic " + base64(user:password) into out (NUL-terminated); -1 when
 * it does not fit. */
static int basic_auth(const char *user, const char *pw, char *out, size_t size)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char plain[LORA_CLIENT_USER_BYTES_MAX + LORA_CLIENT_PASSWORD_BYTES_MAX +
	           2];
	int n = snprintf(plain, sizeof plain, "%s:%s", user, pw);
	if (n < 0 || (size_t)n >= sizeof plain ||
	    6 + ((size_t)n + 2) / 3 * 4 + 1 > size) {
		mbedtls_platform_zeroize(plain, sizeof plain);
		return -1;
	}
	size_t o = (size_t)snprintf(out, size, "Basic ");
	const unsigned char *p = (const unsigned char *)plain;
	for (int i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	/* a memset of a dying local may be left out by the compiler */
	mbedtls_platform_zeroize(plain, sizeof plain);
	return 0;
}

int lora_admin_post(struct lora_client *c, const char *path, const char *body,
                    int timeout_ms, int *status, char **answer, char *errmsg)
{
	char *json = NULL;
	struct lora_client_error e = {0};
	if (lora_client_status(c, &json, &e))
		return lora_errf(e.err, errmsg, "status: %s", e.message);
	char leader[LORA_CLIENT_ADDR_BYTES];
	int rv = lora_status_leader_http(json, leader, sizeof(leader), errmsg);
	lora_free(json);
	if (rv)
		return rv;
	const char *ca = lora_client_ca(c);
	const char *user, *pw;
	char authz[2 * (LORA_CLIENT_USER_BYTES_MAX +
	                LORA_CLIENT_PASSWORD_BYTES_MAX) +
	           16];
	lora_client_credentials(c, &user, &pw);
	int with = user[0] && basic_auth(user, pw, authz, sizeof authz) == 0;
	/* a blocking socket, with mbedtls when there is a CA (https.c) */
	rv = lora_http_post(leader, ca, path, with ? authz : NULL, body,
	                    timeout_ms, status, answer, errmsg);
	mbedtls_platform_zeroize(authz, sizeof authz);
	return rv;
}
