/* source.c - client source addresses and their log table (source.h). */
#include "source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void node_source_set(struct node_source *s, const void *addr, size_t len)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
	                                     0, 0, 0, 0, 0xff, 0xff};
	memset(s, 0, sizeof *s);
	if (len == NODE_SOURCE_BYTES &&
	    memcmp(addr, v4mapped, sizeof v4mapped) == 0) {
		addr = (const uint8_t *)addr + sizeof v4mapped;
		len = 4; /* ::ffff:a.b.c.d is a.b.c.d */
	}
	if (len == 4) {
		s->b[10] = s->b[11] = 0xff;
		memcpy(s->b + 12, addr, 4);
		s->known = 1;
	} else if (len == NODE_SOURCE_BYTES) {
		memcpy(s->b, addr, 8); /* the /64 prefix */
		s->known = 1;
	}
}

void node_source_unknown(struct node_source *s)
{
	memset(s, 0, sizeof *s);
}

void node_source_from_sockaddr(struct node_source *s, const void *sa)
{
	const struct sockaddr *a = sa;
	if (a->sa_family == AF_INET)
		node_source_set(s, &((const struct sockaddr_in *)sa)->sin_addr,
		                4);
	else if (a->sa_family == AF_INET6)
		node_source_set(
		    s, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	else
		node_source_unknown(s);
}

int node_source_eq(const struct node_source *a, const struct node_source *b)
{
	return a->known && b->known && memcmp(a->b, b->b, sizeof a->b) == 0;
}

/* Same slot of the log table: equal, or both unknown. */
static int log_same(const struct node_source *a, const struct node_source *b)
{
	return a->known == b->known && memcmp(a->b, b->b, sizeof a->b) == 0;
}

void node_source_text(const struct node_source *s, char *out, size_t bytes)
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0,    0,
	                               0, 0, 0, 0, 0xff, 0xff};
	char t[INET6_ADDRSTRLEN] = "?";
	if (!s->known) {
		snprintf(out, bytes, "an unknown address");
		return;
	}
	int is4 = memcmp(s->b, v4, sizeof v4) == 0;
	inet_ntop(is4 ? AF_INET : AF_INET6, is4 ? s->b + 12 : s->b, t,
	          sizeof t);
	snprintf(out, bytes, "%s%s", t, is4 ? "" : "/64");
}

int node_source_log_due(struct node_source_log *l, const struct node_source *s,
                        uint64_t now_ms, uint64_t *quiet)
{
	int at = -1, oldest = 0;
	for (int i = 0; i < NODE_SOURCE_LOG_SLOTS && at < 0; i++) {
		if (l->slots[i].logged_ms && log_same(&l->slots[i].src, s))
			at = i;
		else if (l->slots[i].logged_ms < l->slots[oldest].logged_ms)
			oldest = i;
	}
	*quiet = 0;
	if (at >= 0 && now_ms - l->slots[at].logged_ms < NODE_SOURCE_LOG_MS) {
		l->slots[at].quiet++;
		return 0;
	}
	if (at < 0) {
		at = oldest;
		l->slots[at].src = *s;
		l->slots[at].quiet = 0;
	}
	*quiet = l->slots[at].quiet;
	l->slots[at].quiet = 0;
	l->slots[at].logged_ms = now_ms ? now_ms : 1;
	return 1;
}
