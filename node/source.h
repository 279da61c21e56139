/*
 * source.h - where a client connection comes from, for the per-source
 * limits of the native port (native.c) and HTTP (http.c): an address in
 * one 16-byte form that compares IPv4 addresses whole and IPv6 ones by
 * their /64 prefix (one host usually owns a whole /64, so counting single
 * IPv6 addresses would be no limit), its text for the log, and a small
 * table that says when a refusal from a source may be logged again (at
 * most one line per source per NODE_SOURCE_LOG_MS).
 *
 * Plain values, no locks: each caller keeps its table under its own lock.
 */
#ifndef LORA_NODE_SOURCE_H
#define LORA_NODE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_SOURCE_BYTES      16
#define NODE_SOURCE_TEXT_BYTES 48    /* INET6_ADDRSTRLEN and "/64" */
#define NODE_SOURCE_LOG_SLOTS  64    /* sources remembered for the log */
#define NODE_SOURCE_LOG_MS     10000 /* one line per source per */

/* An address: IPv4 as ::ffff:a.b.c.d, IPv6 with its last 64 bits zero;
 * or unknown (known 0: an address that could not be read), which equals
 * no source, itself included, so that unreadable addresses never share
 * one source's limits. */
struct node_source {
	uint8_t b[NODE_SOURCE_BYTES];
	uint8_t known;
};

/* From an IPv4 address (4 bytes, network order) or an IPv6 one (16; an
 * IPv4-mapped one, ::ffff:a.b.c.d as a dual-stack listener sees IPv4
 * clients, is that IPv4 address); any other length: unknown. */
void node_source_set(struct node_source *s, const void *addr, size_t len);
/* An unknown source (matches none). */
void node_source_unknown(struct node_source *s);
/* From a struct sockaddr (AF_INET or AF_INET6; anything else: unknown). */
void node_source_from_sockaddr(struct node_source *s, const void *sa);
/* 1 when a and b are the same known source. */
int node_source_eq(const struct node_source *a, const struct node_source *b);
/* "192.0.2.7", "2001:db8::/64" or "an unknown address" into out (bytes
 * of room). */
void node_source_text(const struct node_source *s, char *out, size_t bytes);

/* When refusals from a source were last logged. */
struct node_source_log {
	struct {
		struct node_source src;
		uint64_t logged_ms; /* 0: slot free */
		uint64_t quiet;     /* refusals not logged since */
	} slots[NODE_SOURCE_LOG_SLOTS];
};

/* 1 when a refusal from s at now_ms should be logged (then *quiet is the
 * number of refusals from s left unlogged since its last line), 0 when
 * it is counted quietly. A source not in the table takes the slot logged
 * longest ago; unknown sources share one slot (for the log only). */
int node_source_log_due(struct node_source_log *l, const struct node_source *s,
                        uint64_t now_ms, uint64_t *quiet);

#endif /* LORA_NODE_SOURCE_H */
