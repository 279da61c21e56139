/*
 * fuzz_raft.c - stateful fuzz target for the Raft core (replication/) and
 * the node's decoding of peer messages (node/raftconv.c).
 *
 * One core (node 1 of voters {1, 2, 3}) lives for one input, which is a
 * sequence of operations, one byte each plus arguments: a tick, a peer
 * message in protobuf bytes (node_raft_msg_unpack, as the Raft loop
 * decodes frames), a message built from a few bytes (types, peers, terms
 * and indexes near the core's own, so that elections, appends, snapshots
 * and reads get somewhere), a proposal, a conf change, a read-index
 * request, a compaction, a leadership transfer, or a report. After every
 * operation the Ready is handled as the caller's loop does (persist,
 * apply, advance). Checked, besides "no crash, no assertion, no leak":
 *   - the term and the commit index never decrease, and the core never
 *     votes for two nodes in one term;
 *   - the entries handed out for applying follow on from the last one
 *     applied (or the installed snapshot), and each is the entry persisted
 *     at its index (same term) - entries are applied only once durable;
 *   - an entry once applied is never replaced in the persisted log.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "raft.h"

#define FZ_LOG_SLOTS     4096 /* persisted terms remembered, by index */
#define FZ_ENTRIES_MAX   4    /* entries in a built message */
#define FZ_RAW_BYTES_MAX 255

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p, *end;
};

static uint8_t next(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* What the caller persisted and applied, to check the core against. */
struct durable {
	uint64_t slot_index[FZ_LOG_SLOTS], slot_term[FZ_LOG_SLOTS];
	uint64_t snap_index, applied, commit, term, vote_term, vote;
};

static void persist(struct durable *d, const struct rep_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t s = e[i].index % FZ_LOG_SLOTS;
		if (e[i].index <= d->applied &&
		    d->slot_index[s] == e[i].index &&
		    d->slot_term[s] != e[i].term)
			abort(); /* an applied entry replaced */
		d->slot_index[s] = e[i].index;
		d->slot_term[s] = e[i].term;
	}
}

static void hard_state(struct durable *d, const struct rep_hard_state *hs)
{
	if (hs->term < d->term || hs->commit < d->commit)
		abort(); /* term or commit went back */
	if (hs->vote && hs->term == d->vote_term && d->vote &&
	    hs->vote != d->vote)
		abort(); /* two votes in one term */
	d->term = hs->term;
	d->commit = hs->commit;
	if (hs->vote) {
		d->vote = hs->vote;
		d->vote_term = hs->term;
	}
}

static void apply(struct durable *d, const struct rep_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i].index != d->applied + 1)
			abort(); /* a gap or a repeat */
		size_t s = e[i].index % FZ_LOG_SLOTS;
		if (e[i].index > d->snap_index &&
		    (d->slot_index[s] != e[i].index ||
		     d->slot_term[s] != e[i].term))
			abort(); /* applied before it was persisted */
		d->applied = e[i].index;
	}
}

/* The caller's loop, once. */
static void handle_ready(struct rep *r, struct durable *d)
{
	if (!rep_has_ready(r))
		return;
	struct rep_ready rd;
	rep_ready(r, &rd);
	if (rd.has_snapshot) {
		if (rd.snapshot.index < d->applied)
			abort(); /* a snapshot behind what was applied */
		d->snap_index = d->applied = rd.snapshot.index;
	}
	persist(d, rd.entries, rd.n_entries);
	if (rd.has_hard_state)
		hard_state(d, &rd.hs);
	apply(d, rd.committed, rd.n_committed);
	rep_advance(r, &rd);
}

/* A term near t: t - 1 .. t + 2 (never below 0). */
static uint64_t near(uint64_t t, uint8_t b)
{
	uint64_t d = b % 4;
	return d == 0 ? (t ? t - 1 : 0) : t + d - 1;
}

static void built_msg(struct rep *r, struct input *in)
{
	struct rep_status st;
	rep_status(r, &st);
	struct rep_msg m;
	struct rep_entry ents[FZ_ENTRIES_MAX];
	uint8_t data[FZ_ENTRIES_MAX];
	memset(&m, 0, sizeof m);
	uint8_t a = next(in), b = next(in), c = next(in), e = next(in);
	m.type = 1 + a % REP_MSG_TYPE_MAX;
	m.from = 1 + (a / REP_MSG_TYPE_MAX) % 4; /* 4: not a member */
	m.to = 1;
	m.term = (b & 0x80) ? 0 : near(st.term, b);
	m.index = st.last_index + (uint64_t)(c % 8) >= 4
	              ? st.last_index + (uint64_t)(c % 8) - 4
	              : 0;
	m.log_term = near(st.term, c / 8);
	m.commit = m.index + (e % 3);
	m.reject = e & 0x80;
	m.reject_hint = m.index ? m.index - 1 : 0;
	m.hint_term = near(st.term, e / 4);
	m.context_len = e & 0x40 ? 1 : 0;
	m.context[0] = b;
	m.n_entries = (size_t)(e / 8 % (FZ_ENTRIES_MAX + 1));
	for (size_t i = 0; i < m.n_entries; i++) {
		data[i] = next(in);
		ents[i].index = m.index + 1 + i;
		ents[i].term = m.log_term + (data[i] & 1);
		ents[i].type =
		    data[i] & 0x80 ? REP_ENTRY_CONF_CHANGE : REP_ENTRY_NORMAL;
		ents[i].data = &data[i];
		ents[i].len = data[i] & 2 ? 1 : 0;
	}
	m.entries = ents;
	if (m.type == REP_MSG_SNAPSHOT) {
		m.snapshot.index = m.index + 4;
		m.snapshot.term = m.log_term;
		m.snapshot.n_voters = 3;
		for (int i = 0; i < 3; i++)
			m.snapshot.voters[i] = (uint64_t)i + 1;
	}
	rep_step(r, &m);
}

static void raw_msg(struct rep *r, struct input *in)
{
	size_t n = next(in);
	if ((size_t)(in->end - in->p) < n)
		n = (size_t)(in->end - in->p);
	uint8_t *p = malloc(n ? n : 1); /* exact, for ASan */
	memcpy(p, in->p, n);
	in->p += n;
	struct rep_msg m;
	Lora__RaftMessage *pb;
	struct rep_entry *ents;
	if (node_raft_msg_unpack(p, n, &m, &pb, &ents) == 0) {
		m.to = 1; /* the Raft loop drops others */
		rep_step(r, &m);
		node_raft_msg_release(pb, ents);
	}
	free(p);
}

static void operation(struct rep *r, struct input *in)
{
	uint8_t op = next(in), x = next(in);
	struct rep_status st;
	switch (op % 10) {
	case 0:
	case 1:
		for (int i = 0; i <= x % 16; i++)
			rep_tick(r);
		break;
	case 2:
		in->p--; /* x is the length */
		raw_msg(r, in);
		break;
	case 3:
	case 4:
		in->p--;
		built_msg(r, in);
		break;
	case 5:
		rep_propose(r, "ab", x % 3, NULL, NULL, NULL);
		break;
	case 6:
		rep_propose_conf_change(r, x % 3, 1 + x / 4 % 5, &x, 1, NULL,
		                        NULL, NULL);
		break;
	case 7:
		rep_read_index(r, &x, 1);
		break;
	case 8:
		rep_status(r, &st);
		rep_compact(r, st.applied > (uint64_t)(x % 4)
		                   ? st.applied - (uint64_t)(x % 4)
		                   : 0);
		break;
	default:
		if (x % 3 == 0)
			rep_transfer_leader(r, 1 + x / 3 % 4);
		else if (x % 3 == 1)
			rep_report_unreachable(r, 1 + x / 3 % 4);
		else
			rep_report_snapshot(r, 1 + x / 3 % 4, x & 0x80);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rep_config cfg;
	rep_config_init(&cfg, 1);
	cfg.n_voters = 3;
	for (int i = 0; i < 3; i++)
		cfg.voters[i] = (uint64_t)i + 1;
	cfg.election_ticks = 4;
	cfg.seed = size ? data[0] : 0;
	struct rep *r;
	if (rep_new(&cfg, NULL, &r, NULL) != 0)
		abort();
	static struct durable d;
	memset(&d, 0, sizeof d);
	struct input in = {data, data + size};
	while (in.p < in.end) {
		operation(r, &in);
		handle_ready(r, &d);
		struct rep_status st;
		rep_status(r, &st);
		if (st.term < d.term || st.commit < d.commit)
			abort();
	}
	rep_free(r);
	return 0;
}
