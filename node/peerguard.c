/* peerguard.c - one log line per refused (peer, kind), rate limited. */
/*
 * A hostile or confused peer can send thousands of refused frames a second;
 * logging each would flood the log (and the disk under it). A refusal is
 * logged the first time a (peer, kind) pair is seen, then at most once per
 * NODE_REFUSAL_LOG_MS with the number refused since. The table is small
 * and fixed (NODE_REFUSAL_KEYS_MAX); when full, the oldest pair is
 * forgotten, so a flood of fake ids costs at most one line per slot reuse,
 * and never memory. Every refusal counts in node_peer_refused_total().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "node_int.h"

#define NODE_REFUSAL_KEYS_MAX   64
#define NODE_REFUSAL_KIND_BYTES 24
#define NODE_REFUSAL_MSG_BYTES  384

struct refusal_key {
	uint64_t peer;
	char kind[NODE_REFUSAL_KIND_BYTES];
	uint64_t logged_ms; /* 0: free slot */
	uint64_t since;     /* refused since the last line */
};

static pthread_mutex_t refusal_mu = PTHREAD_MUTEX_INITIALIZER;
static struct refusal_key refusal_keys[NODE_REFUSAL_KEYS_MAX];
static atomic_uint_fast64_t refusal_total;

/* The slot of (peer, kind), or the one to reuse; refusal_mu held. */
static struct refusal_key *refusal_slot(uint64_t peer, const char *kind)
{
	struct refusal_key *oldest = &refusal_keys[0];
	for (int i = 0; i < NODE_REFUSAL_KEYS_MAX; i++) {
		struct refusal_key *k = &refusal_keys[i];
		if (k->logged_ms != 0 && k->peer == peer &&
		    strcmp(k->kind, kind) == 0)
			return k;
		if (k->logged_ms < oldest->logged_ms)
			oldest = k;
	}
	memset(oldest, 0, sizeof *oldest);
	oldest->peer = peer;
	snprintf(oldest->kind, sizeof oldest->kind, "%s", kind);
	return oldest;
}

void node_peer_refused(uint64_t peer, const char *kind, const char *fmt, ...)
{
	atomic_fetch_add(&refusal_total, 1);
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&refusal_mu);
	struct refusal_key *k = refusal_slot(peer, kind);
	int log_now =
	    k->logged_ms == 0 || now - k->logged_ms >= NODE_REFUSAL_LOG_MS;
	uint64_t since = k->since;
	if (log_now) {
		k->logged_ms = now ? now : 1;
		k->since = 0;
	} else {
		k->since++;
	}
	pthread_mutex_unlock(&refusal_mu);
	if (!log_now)
		return;
	char msg[NODE_REFUSAL_MSG_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	LOG_WARN("peer %llu: refused %s: %s (logged once per %d s for this "
	         "peer and kind; %llu more refused since the last line)",
	         (unsigned long long)peer, kind, msg,
	         NODE_REFUSAL_LOG_MS / 1000, (unsigned long long)since);
}

uint64_t node_peer_refused_total(void)
{
	return atomic_load(&refusal_total);
}
