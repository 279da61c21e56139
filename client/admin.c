/* admin.c - cluster admin calls of the shell (:add, :remove, :transfer):
 * HTTP POSTs to the leader's admin API, whose address comes from the
 * cluster status that the native protocol returns (https with the
 * client's CA when it has one: https.c). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

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
	    6 + ((size_t)n + 2) / 3 * 4 + 1 > size)
		return -1;
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
	memset(plain, 0, sizeof plain);
	return 0;
}

/* One POST with a timeout; *body_out (lora_free) holds the answer. authz:
 * an Authorization value or NULL. */
static int http_post(const char *url_text, const char *body, int timeout_ms,
                     const char *authz, int *status, char **body_out,
                     char *errmsg)
{
	nng_url *url = NULL;
	nng_http_client *cli = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	int nrv = nng_url_parse(&url, url_text);
	if (nrv == 0)
		nrv = nng_http_client_alloc(&cli, url);
	if (nrv == 0)
		nrv = nng_http_req_alloc(&req, url);
	if (nrv == 0)
		nrv = nng_http_res_alloc(&res);
	if (nrv == 0)
		nrv = nng_aio_alloc(&aio, NULL, NULL);
	if (nrv == 0) {
		nng_http_req_set_method(req, "POST");
		nng_http_req_set_header(req, "Content-Type",
		                        "application/json");
		if (authz)
			nng_http_req_set_header(req, "Authorization", authz);
		nng_http_req_copy_data(req, body, strlen(body));
		nng_aio_set_timeout(aio, timeout_ms);
		nng_http_client_transact(cli, req, res, aio);
		nng_aio_wait(aio);
		nrv = nng_aio_result(aio);
	}
	int rv = 0;
	if (nrv) {
		rv = lora_errf(LORA_EUNAVAILABLE, errmsg, "POST %s: %s",
		               url_text, nng_strerror(nrv));
	} else {
		void *data = NULL;
		size_t len = 0;
		nng_http_res_get_data(res, &data, &len);
		*status = nng_http_res_get_status(res);
		*body_out = lora_strndup(data ? data : "", len);
		if (*body_out == NULL)
			rv = lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	}
	if (aio)
		nng_aio_free(aio);
	if (res)
		nng_http_res_free(res);
	if (req)
		nng_http_req_free(req);
	if (cli)
		nng_http_client_free(cli);
	if (url)
		nng_url_free(url);
	return rv;
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
	char url[LORA_CLIENT_ADDR_BYTES + 64];
	const char *ca = lora_client_ca(c);
	snprintf(url, sizeof(url), "%s://%s%s", ca ? "https" : "http", leader,
	         path);
	const char *user, *pw;
	char authz[2 * (LORA_CLIENT_USER_BYTES_MAX +
	                LORA_CLIENT_PASSWORD_BYTES_MAX) +
	           16];
	lora_client_credentials(c, &user, &pw);
	int with = user[0] && basic_auth(user, pw, authz, sizeof authz) == 0;
	if (ca != NULL) /* TLS: mbedtls directly (https.c) */
		rv = lora_https_post(leader, ca, path, with ? authz : NULL,
		                     body, timeout_ms, status, answer, errmsg);
	else
		rv = http_post(url, body, timeout_ms, with ? authz : NULL,
		               status, answer, errmsg);
	memset(authz, 0, sizeof authz);
	return rv;
}
