/* config.c - lorad configuration from file, environment and flags. */
#include "config.h"
#include "batch.h"
#include "proxy.h"
#include "query.h" /* QRY_TIME_MS_DEFAULT */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A quarter of the physical memory, capped (see config.h). */
static uint64_t query_memory_default(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || page <= 0)
		return NODE_QUERY_MEMORY_BYTES_FALLBACK;
	uint64_t quarter = (uint64_t)pages / 4 * (uint64_t)page;
	return quarter < NODE_QUERY_MEMORY_BYTES_CAP
	           ? quarter
	           : NODE_QUERY_MEMORY_BYTES_CAP;
}

void node_config_defaults(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->data_dir, sizeof c->data_dir, "data");
	snprintf(c->http_addr, sizeof c->http_addr, "127.0.0.1:4747");
	snprintf(c->client_addr, sizeof c->client_addr, "127.0.0.1:4748");
	snprintf(c->peer_addr, sizeof c->peer_addr, "127.0.0.1:4749");
	c->checkpoint_entries = 10000;
	c->log_keep_entries = 1000;
	c->progress_ms = 10000;
	c->election_ms = 300;
	c->heartbeat_ms = 50;
	c->log_level = NODE_LOG_INFO;
	c->query_memory_bytes = query_memory_default();
	c->statement_memory_bytes = NODE_STATEMENT_MEMORY_BYTES;
	c->statement_time_ms = QRY_TIME_MS_DEFAULT;
	c->cursor_idle_ms = NODE_CURSOR_IDLE_MS;
	c->snapshot_bytes_max = NODE_SNAPSHOT_BYTES_MAX;
	c->auth = 1;
	snprintf(c->admin_user, sizeof c->admin_user, "admin");
	c->token_ttl_ms = 3600000;
	c->metrics_auth = 1;
	c->auth_timeout_ms = NODE_AUTH_TIMEOUT_MS;
	c->pending_per_source = NODE_PENDING_PER_SOURCE;
	c->proxy_batch_max = NODE_BATCH_MAX;
	c->proxy_batch_inflight = NODE_PROXY_BATCH_INFLIGHT;
	c->native_pending_max = NODE_NATIVE_PENDING_MAX;
}

/* admin_password_file: its first line (without the newline). */
static int read_secret_file(struct node_config *c, const char *path,
                            char *errmsg)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "admin_password_file %s: %s", path,
		                 strerror(errno));
	char line[NODE_ADMIN_PASSWORD_BYTES_MAX + 2];
	int ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	size_t len = ok ? strcspn(line, "\r\n") : 0;
	if (!ok || len == 0 || len > NODE_ADMIN_PASSWORD_BYTES_MAX)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "admin_password_file %s: empty, or a first "
		                 "line longer than %d bytes",
		                 path, NODE_ADMIN_PASSWORD_BYTES_MAX);
	memcpy(c->admin_password, line, len);
	c->admin_password[len] = '\0';
	memset(line, 0, sizeof line);
	return 0;
}

static int set_text(char *dst, size_t cap, const char *v, const char *key,
                    char *errmsg)
{
	if (strlen(v) >= cap)
		return lora_errf(LORA_ECONFIG, errmsg, "%s: too long", key);
	snprintf(dst, cap, "%s", v);
	return 0;
}

static int set_u32(uint32_t *dst, const char *v, const char *key, char *errmsg);
static int set_range(uint32_t *dst, const char *v, uint32_t lo, uint32_t hi,
                     const char *key, char *errmsg);

/* The auth settings (docs/node.md); 1 when key is not one of them. */
static int set_auth(struct node_config *c, const char *key, const char *value,
                    char *errmsg)
{
	if (!strcmp(key, "auth")) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "auth: on or off, not '%s'", value);
		c->auth = !strcmp(value, "on");
		return 0;
	}
	if (!strcmp(key, "admin_user"))
		return value[0] ? set_text(c->admin_user, sizeof c->admin_user,
		                           value, key, errmsg)
		                : lora_errf(LORA_ECONFIG, errmsg,
		                            "admin_user: empty");
	if (!strcmp(key, "admin_password"))
		return set_text(c->admin_password, sizeof c->admin_password,
		                value, key, errmsg);
	if (!strcmp(key, "admin_password_file"))
		return read_secret_file(c, value, errmsg);
	if (!strcmp(key, "token_ttl_ms"))
		return set_u32(&c->token_ttl_ms, value, key, errmsg);
	if (!strcmp(key, "auth_timeout_ms"))
		return set_u32(&c->auth_timeout_ms, value, key, errmsg);
	if (!strcmp(key, "pending_per_source"))
		return set_u32(&c->pending_per_source, value, key, errmsg);
	if (!strcmp(key, "native_pending_max"))
		return set_u32(&c->native_pending_max, value, key, errmsg);
	if (!strcmp(key, "metrics_auth")) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "metrics_auth: on or off");
		c->metrics_auth = !strcmp(value, "on");
		return 0;
	}
	return 1;
}

static int parse_u64(const char *v, uint64_t *out, const char *key,
                     char *errmsg)
{
	char *end;
	errno = 0;
	if (*v == '\0' || *v == '-')
		return lora_errf(LORA_ECONFIG, errmsg, "%s: not a number: '%s'",
		                 key, v);
	unsigned long long n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return lora_errf(LORA_ECONFIG, errmsg, "%s: not a number: '%s'",
		                 key, v);
	*out = n;
	return 0;
}

/* Bytes: a number with an optional unit, KiB, MiB or GiB (K, M, G). */
static int parse_bytes(const char *v, uint64_t *out, const char *key,
                       char *errmsg)
{
	static const struct {
		const char *unit;
		unsigned shift;
	} units[] = {{"", 0},     {"K", 10}, {"KiB", 10}, {"M", 20},
	             {"MiB", 20}, {"G", 30}, {"GiB", 30}};
	char *end = NULL;
	errno = 0;
	unsigned long long n =
	    isdigit((unsigned char)v[0]) ? strtoull(v, &end, 10) : 0;
	if (end != NULL && errno == 0) {
		while (*end == ' ')
			end++;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
			if (!strcmp(end, units[i].unit) &&
			    n <= (UINT64_MAX >> units[i].shift)) {
				*out = (uint64_t)n << units[i].shift;
				return 0;
			}
	}
	return lora_errf(LORA_ECONFIG, errmsg,
	                 "%s: expected bytes (a number, optionally with "
	                 "KiB, MiB or GiB), got '%s'",
	                 key, v);
}

static int parse_bool(const char *v, int *out, const char *key, char *errmsg)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
		*out = 0;
		return 0;
	}
	return lora_errf(LORA_ECONFIG, errmsg, "%s: not a boolean: '%s'", key,
	                 v);
}

/* Checks "host:port" shape and copies it into dst. */
static int set_addr(char *dst, const char *v, const char *key, char *errmsg)
{
	const char *colon = strrchr(v, ':');
	if (colon == NULL || colon == v || colon[1] == '\0' ||
	    strlen(v) >= NODE_ADDR_BYTES_MAX)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s: expected host:port, got '%s'", key, v);
	for (const char *p = colon + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "%s: bad port in '%s'", key, v);
	snprintf(dst, NODE_ADDR_BYTES_MAX, "%s", v);
	return 0;
}

int node_config_parse_peers(struct node_config *c, const char *list,
                            char *errmsg)
{
	c->n_peers = 0;
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[NODE_ADDR_BYTES_MAX + 32];
		if (len >= sizeof item)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "peers: entry too long");
		memcpy(item, p, len);
		item[len] = '\0';
		char *at = strchr(item, '@');
		if (len > 0) {
			if (at == NULL)
				return lora_errf(
				    LORA_ECONFIG, errmsg,
				    "peers: expected id@host:port, got '%s'",
				    item);
			if (c->n_peers >= NODE_PEERS_MAX)
				return lora_errf(LORA_ECONFIG, errmsg,
				                 "peers: more than %d",
				                 NODE_PEERS_MAX);
			*at = '\0';
			struct node_peer *np = &c->peers[c->n_peers];
			int rc = parse_u64(item, &np->id, "peers id", errmsg);
			if (rc == 0 && np->id == 0)
				rc = lora_errf(LORA_ECONFIG, errmsg,
				               "peers: id 0");
			if (rc == 0)
				rc =
				    set_addr(np->addr, at + 1, "peers", errmsg);
			if (rc)
				return rc;
			c->n_peers++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int parse_level(const char *v, enum node_log_level *out, char *errmsg)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i])) {
			*out = (enum node_log_level)i;
			return 0;
		}
	return lora_errf(LORA_ECONFIG, errmsg,
	                 "log_level: expected debug|info|warn|error, got '%s'",
	                 v);
}

static int set_u32(uint32_t *dst, const char *v, const char *key, char *errmsg)
{
	uint64_t n = 0;
	int rc = parse_u64(v, &n, key, errmsg);
	if (rc)
		return rc;
	if (n == 0 || n > 600000)
		return lora_errf(LORA_ECONFIG, errmsg, "%s: out of range", key);
	*dst = (uint32_t)n;
	return 0;
}

/* An integer in lo..hi. */
static int set_range(uint32_t *dst, const char *v, uint32_t lo, uint32_t hi,
                     const char *key, char *errmsg)
{
	uint64_t n = 0;
	int rc = parse_u64(v, &n, key, errmsg);
	if (rc)
		return rc;
	if (n < lo || n > hi)
		return lora_errf(LORA_ECONFIG, errmsg, "%s: %u..%u, not %s",
		                 key, lo, hi, v);
	*dst = (uint32_t)n;
	return 0;
}

void node_config_import_dir(const struct node_config *c, char *out,
                            size_t bytes)
{
	if (c->import_dir[0])
		snprintf(out, bytes, "%s", c->import_dir);
	else
		snprintf(out, bytes, "%s/import", c->data_dir);
}

void node_config_backup_dir(const struct node_config *c, char *out,
                            size_t bytes)
{
	if (c->backup_dir[0])
		snprintf(out, bytes, "%s", c->backup_dir);
	else
		snprintf(out, bytes, "%s/backups", c->data_dir);
}

int node_config_set(struct node_config *c, const char *key, const char *value,
                    char *errmsg)
{
	if (!strcmp(key, "backup_dir")) {
		if (strlen(value) >= NODE_PATH_BYTES_MAX)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "backup_dir: too long");
		snprintf(c->backup_dir, sizeof c->backup_dir, "%s", value);
		return 0;
	}
	if (!strcmp(key, "snapshot_bytes_max")) {
		int rc =
		    parse_bytes(value, &c->snapshot_bytes_max, key, errmsg);
		if (rc == 0 && c->snapshot_bytes_max == 0)
			rc = lora_errf(LORA_ECONFIG, errmsg,
			               "snapshot_bytes_max: must be > 0");
		return rc;
	}
	if (!strcmp(key, "id"))
		return parse_u64(value, &c->id, key, errmsg);
	if (!strcmp(key, "data_dir")) {
		if (strlen(value) == 0 || strlen(value) >= NODE_PATH_BYTES_MAX)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "data_dir: bad length");
		snprintf(c->data_dir, sizeof c->data_dir, "%s", value);
		return 0;
	}
	if (!strcmp(key, "import_dir")) {
		if (strlen(value) >= NODE_PATH_BYTES_MAX)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "import_dir: too long");
		snprintf(c->import_dir, sizeof c->import_dir, "%s", value);
		return 0;
	}
	if (!strcmp(key, "http_addr"))
		return set_addr(c->http_addr, value, key, errmsg);
	if (!strcmp(key, "client_addr"))
		return set_addr(c->client_addr, value, key, errmsg);
	if (!strcmp(key, "peer_addr"))
		return set_addr(c->peer_addr, value, key, errmsg);
	if (!strcmp(key, "peers"))
		return node_config_parse_peers(c, value, errmsg);
	if (!strcmp(key, "join"))
		return parse_bool(value, &c->join, key, errmsg);
	if (!strcmp(key, "checkpoint_entries"))
		return parse_u64(value, &c->checkpoint_entries, key, errmsg);
	if (!strcmp(key, "progress_ms"))
		return set_range(&c->progress_ms, value, 0,
		                 NODE_PROGRESS_MS_MAX, key, errmsg);
	if (!strcmp(key, "log_keep_entries"))
		return parse_u64(value, &c->log_keep_entries, key, errmsg);
	if (!strcmp(key, "election_ms"))
		return set_u32(&c->election_ms, value, key, errmsg);
	if (!strcmp(key, "heartbeat_ms"))
		return set_u32(&c->heartbeat_ms, value, key, errmsg);
	if (!strcmp(key, "log_level"))
		return parse_level(value, &c->log_level, errmsg);
	if (!strcmp(key, "query_memory_bytes"))
		return parse_bytes(value, &c->query_memory_bytes, key, errmsg);
	if (!strcmp(key, "statement_memory_bytes"))
		return parse_bytes(value, &c->statement_memory_bytes, key,
		                   errmsg);
	if (!strcmp(key, "statement_time_ms"))
		return set_range(&c->statement_time_ms, value,
		                 NODE_STATEMENT_TIME_MS_MIN,
		                 NODE_STATEMENT_TIME_MS_MAX, key, errmsg);
	if (!strcmp(key, "cdc_old_values"))
		return parse_bool(value, &c->cdc_old_values, key, errmsg);
	if (!strcmp(key, "proxy_batch_max"))
		return set_range(&c->proxy_batch_max, value, 1, NODE_BATCH_MAX,
		                 key, errmsg);
	if (!strcmp(key, "proxy_batch_inflight"))
		return set_range(&c->proxy_batch_inflight, value, 1, 64, key,
		                 errmsg);
	if (!strcmp(key, "peer_forward"))
		return parse_bool(value, &c->peer_forward, key, errmsg);
	if (!strcmp(key, "cursor_idle_ms"))
		return set_u32(&c->cursor_idle_ms, value, key, errmsg);
	if (!strncmp(key, "bolt_", 5))
		return node_config_set_bolt(c, key, value, errmsg);
	int rc = set_auth(c, key, value, errmsg);
	if (rc != 1)
		return rc;
	rc = node_config_set_tls(c, key, value, errmsg);
	if (rc != 1)
		return rc;
	return lora_errf(LORA_ECONFIG, errmsg, "unknown setting '%s'", key);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Applies one line of a config file; `#` starts a comment. */
static int config_line(struct node_config *c, char *line, int lineno,
                       const char *path, char *errmsg)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *s = trim(line);
	if (*s == '\0')
		return 0;
	char *eq = strchr(s, '=');
	if (eq == NULL)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "%s:%d: expected key = value", path, lineno);
	*eq = '\0';
	int rc = node_config_set(c, trim(s), trim(eq + 1), errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "%s:%d", path, lineno);
	return 0;
}

int node_config_load_file(struct node_config *c, const char *path, char *errmsg)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return lora_errf(LORA_ECONFIG, errmsg, "open %s: %s", path,
		                 strerror(errno));
	char line[NODE_CONFIG_LINE_BYTES_MAX];
	int lineno = 0, rc = 0;
	size_t total = 0;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		lineno++;
		total += strlen(line);
		if (total > NODE_CONFIG_FILE_BYTES_MAX)
			rc = lora_errf(LORA_ECONFIG, errmsg,
			               "%s: file too large", path);
		else
			rc = config_line(c, line, lineno, path, errmsg);
	}
	fclose(f);
	return rc;
}

int node_config_load_env(struct node_config *c, char *errmsg)
{
	static const char *map[][2] = {
	    {"LORA_ID", "id"},
	    {"LORA_DATA_DIR", "data_dir"},
	    {"LORA_IMPORT_DIR", "import_dir"},
	    {"LORA_HTTP_ADDR", "http_addr"},
	    {"LORA_CLIENT_ADDR", "client_addr"},
	    {"LORA_BOLT_ADDR", "bolt_addr"},
	    {"LORA_PEER_ADDR", "peer_addr"},
	    {"LORA_PEERS", "peers"},
	    {"LORA_JOIN", "join"},
	    {"LORA_LOG_LEVEL", "log_level"},
	    {"LORA_CHECKPOINT_ENTRIES", "checkpoint_entries"},
	    {"LORA_PROGRESS_MS", "progress_ms"},
	    {"LORA_QUERY_MEMORY_BYTES", "query_memory_bytes"},
	    {"LORA_STATEMENT_MEMORY_BYTES", "statement_memory_bytes"},
	    {"LORA_STATEMENT_TIME_MS", "statement_time_ms"},
	    {"LORA_CDC_OLD_VALUES", "cdc_old_values"},
	    {"LORA_PEER_FORWARD", "peer_forward"},
	    {"LORA_PROXY_BATCH_MAX", "proxy_batch_max"},
	    {"LORA_PROXY_BATCH_INFLIGHT", "proxy_batch_inflight"},
	    {"LORA_BACKUP_DIR", "backup_dir"},
	    {"LORA_SNAPSHOT_BYTES_MAX", "snapshot_bytes_max"},
	    {"LORA_AUTH", "auth"},
	    {"LORA_ADMIN_USER", "admin_user"},
	    {"LORA_ADMIN_PASSWORD", "admin_password"},
	    {"LORA_ADMIN_PASSWORD_FILE", "admin_password_file"},
	    {"LORA_TOKEN_TTL_MS", "token_ttl_ms"},
	    {"LORA_AUTH_TIMEOUT_MS", "auth_timeout_ms"},
	    {"LORA_PENDING_PER_SOURCE", "pending_per_source"},
	    {"LORA_NATIVE_PENDING_MAX", "native_pending_max"},
	    {"LORA_TLS", "tls"},
	    {"LORA_TLS_CERT", "tls_cert"},
	    {"LORA_TLS_KEY", "tls_key"},
	    {"LORA_TLS_CA", "tls_ca"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		const char *v = getenv(map[i][0]);
		if (v == NULL)
			continue;
		int rc = node_config_set(c, map[i][1], v, errmsg);
		if (rc)
			return lora_errwrap(rc, errmsg, "environment %s",
			                    map[i][0]);
	}
	return 0;
}

/* Flag name to config key; NULL value means a boolean flag. */
static const char *flag_key(const char *flag, int *takes_value)
{
	static const char *map[][2] = {
	    {"--id", "id"},
	    {"--data-dir", "data_dir"},
	    {"--import-dir", "import_dir"},
	    {"--http", "http_addr"},
	    {"--client", "client_addr"},
	    {"--bolt", "bolt_addr"},
	    {"--peer", "peer_addr"},
	    {"--peers", "peers"},
	    {"--checkpoint-entries", "checkpoint_entries"},
	    {"--progress-ms", "progress_ms"},
	    {"--log-keep-entries", "log_keep_entries"},
	    {"--election-ms", "election_ms"},
	    {"--heartbeat-ms", "heartbeat_ms"},
	    {"--log-level", "log_level"},
	    {"--query-memory-bytes", "query_memory_bytes"},
	    {"--statement-memory-bytes", "statement_memory_bytes"},
	    {"--statement-time-ms", "statement_time_ms"},
	    {"--cursor-idle-ms", "cursor_idle_ms"},
	    {"--cdc-old-values", "cdc_old_values"},
	    {"--peer-forward", "peer_forward"},
	    {"--proxy-batch-max", "proxy_batch_max"},
	    {"--proxy-batch-inflight", "proxy_batch_inflight"},
	    {"--backup-dir", "backup_dir"},
	    {"--snapshot-bytes-max", "snapshot_bytes_max"},
	    {"--auth", "auth"},
	    {"--admin-user", "admin_user"},
	    {"--admin-password-file", "admin_password_file"},
	    {"--token-ttl-ms", "token_ttl_ms"},
	    {"--auth-timeout-ms", "auth_timeout_ms"},
	    {"--pending-per-source", "pending_per_source"},
	    {"--native-pending-max", "native_pending_max"},
	    {"--metrics-auth", "metrics_auth"},
	    {"--tls", "tls"},
	    {"--tls-cert", "tls_cert"},
	    {"--tls-key", "tls_key"},
	    {"--tls-ca", "tls_ca"},
	};
	*takes_value = 1;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(flag, map[i][0]))
			return map[i][1];
	return NULL;
}

static int apply_flags(struct node_config *c, int argc, char **argv,
                       char *errmsg)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--config")) {
			i++;
			continue;
		}
		if (!strcmp(a, "--join")) {
			c->join = 1;
			continue;
		}
		int takes;
		const char *key = flag_key(a, &takes);
		if (key == NULL)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "unknown flag '%s'", a);
		if (i + 1 >= argc)
			return lora_errf(LORA_ECONFIG, errmsg,
			                 "%s needs a value", a);
		int rc = node_config_set(c, key, argv[++i], errmsg);
		if (rc)
			return lora_errwrap(rc, errmsg, "flag %s", a);
	}
	return 0;
}

int node_config_from_args(struct node_config *c, int argc, char **argv,
                          int *help_out, char *errmsg)
{
	node_config_defaults(c);
	*help_out = 0;
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			*help_out = 1;
			return 0;
		}
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc)
				return lora_errf(LORA_ECONFIG, errmsg,
				                 "--config needs a file");
			file = argv[i + 1];
		}
	}
	int rc = 0;
	if (file)
		rc = node_config_load_file(c, file, errmsg);
	if (rc == 0)
		rc = node_config_load_env(c, errmsg);
	if (rc == 0)
		rc = apply_flags(c, argc, argv, errmsg);
	if (rc == 0)
		rc = node_config_validate(c, errmsg);
	return rc;
}

const char *node_config_peer_addr(const struct node_config *c, uint64_t id)
{
	for (int i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return c->peers[i].addr;
	return NULL;
}

int node_config_validate(const struct node_config *c, char *errmsg)
{
	if (c->id == 0)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "id is not set (id = N)");
	if (!c->join && c->n_peers > 0 &&
	    node_config_peer_addr(c, c->id) == NULL)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "peers does not list this node's id %llu",
		                 (unsigned long long)c->id);
	for (int i = 0; i < c->n_peers; i++)
		for (int j = i + 1; j < c->n_peers; j++)
			if (c->peers[i].id == c->peers[j].id)
				return lora_errf(
				    LORA_ECONFIG, errmsg,
				    "peers lists id %llu twice",
				    (unsigned long long)c->peers[i].id);
	if (c->checkpoint_entries == 0)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "checkpoint_entries must be > 0");
	/* The core ticks every heartbeat_ms / 2 and needs an election
	 * timeout of at least 2 heartbeats + 2 ticks (3 heartbeats): a vote
	 * lease that outlasts one lost heartbeat and a timeout spread of at
	 * least 2 ticks (replication/core.c, check_config). */
	if (c->heartbeat_ms < NODE_HEARTBEAT_MS_MIN)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "heartbeat_ms %u must be >= %d",
		                 c->heartbeat_ms, NODE_HEARTBEAT_MS_MIN);
	if (c->election_ms / NODE_ELECTION_HEARTBEATS_MIN < c->heartbeat_ms)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "election_ms %u must be >= %d x heartbeat_ms "
		                 "(%u): raise election_ms to %llu or lower "
		                 "heartbeat_ms",
		                 c->election_ms, NODE_ELECTION_HEARTBEATS_MIN,
		                 c->heartbeat_ms,
		                 (unsigned long long)c->heartbeat_ms *
		                     NODE_ELECTION_HEARTBEATS_MIN);
	return node_config_validate_tls(c, errmsg);
}

const char *node_config_usage(void)
{
	return "usage: lorad [--config FILE] [--id N] [--data-dir DIR]\n"
	       "             [--http ADDR] [--client ADDR] [--peer ADDR]\n"
	       "             [--peers 1@host:port,...] [--join]\n"
	       "             [--checkpoint-entries N] [--log-keep-entries N]\n"
	       "             [--election-ms N] [--heartbeat-ms N]\n"
	       "             [--log-level debug|info|warn|error]\n"
	       "             [--query-memory-bytes BYTES] "
	       "[--statement-memory-bytes BYTES]\n"
	       "             [--statement-time-ms N] [--progress-ms N]\n"
	       "             [--cursor-idle-ms N] [--bolt ADDR|off]\n"
	       "             [--auth on|off]\n"
	       "             [--admin-user NAME] [--admin-password-file FILE]\n"
	       "             [--token-ttl-ms N] [--metrics-auth on|off]\n"
	       "             [--auth-timeout-ms N] [--pending-per-source N]\n"
	       "             [--native-pending-max N]\n"
	       "             [--tls required|optional|off] [--tls-cert FILE]\n"
	       "             [--tls-key FILE] [--tls-ca FILE]\n"
	       "Environment: LORA_ID LORA_DATA_DIR LORA_HTTP_ADDR "
	       "LORA_CLIENT_ADDR\n"
	       "             LORA_PEER_ADDR LORA_PEERS LORA_JOIN "
	       "LORA_LOG_LEVEL\n"
	       "             LORA_QUERY_MEMORY_BYTES "
	       "LORA_STATEMENT_MEMORY_BYTES\n"
	       "             LORA_AUTH LORA_ADMIN_USER LORA_ADMIN_PASSWORD "
	       "LORA_ADMIN_PASSWORD_FILE\n"
	       "             LORA_TOKEN_TTL_MS LORA_TLS LORA_TLS_CERT "
	       "LORA_TLS_KEY LORA_TLS_CA\n";
}
