/* raftconv.c - Raft messages and snapshot metadata: C structs <-> protobuf. */
#include <string.h>

#include "node_int.h"

void node_meta_to_pb(const struct rep_snapshot_meta *m, Lora__SnapshotMeta *pb,
                     Lora__ConfState *conf)
{
	lora__snapshot_meta__init(pb);
	lora__conf_state__init(conf);
	pb->index = m->index;
	pb->term = m->term;
	conf->n_voters = m->n_voters;
	conf->voters = (uint64_t *)m->voters;
	conf->n_learners = m->n_learners;
	conf->learners = (uint64_t *)m->learners;
	pb->conf = conf;
}

int node_meta_from_pb(const Lora__SnapshotMeta *pb, struct rep_snapshot_meta *m)
{
	memset(m, 0, sizeof *m);
	if (pb == NULL)
		return 0;
	m->index = pb->index;
	m->term = pb->term;
	if (pb->conf) {
		if (pb->conf->n_voters > REP_MEMBERS_MAX ||
		    pb->conf->n_learners > REP_MEMBERS_MAX)
			return LORA_ECORRUPT;
		m->n_voters = (uint32_t)pb->conf->n_voters;
		m->n_learners = (uint32_t)pb->conf->n_learners;
		if (m->n_voters)
			memcpy(m->voters, pb->conf->voters,
			       m->n_voters * sizeof(uint64_t));
		if (m->n_learners)
			memcpy(m->learners, pb->conf->learners,
			       m->n_learners * sizeof(uint64_t));
	}
	return 0;
}

/* Packs m into a fresh buffer (lora_free it). */
int node_raft_msg_pack(const struct rep_msg *m, uint8_t **out, size_t *len)
{
	Lora__RaftMessage pb = LORA__RAFT_MESSAGE__INIT;
	Lora__SnapshotMeta meta;
	Lora__ConfState conf;
	pb.type = m->type;
	pb.from = m->from;
	pb.to = m->to;
	pb.term = m->term;
	pb.log_term = m->log_term;
	pb.index = m->index;
	pb.commit = m->commit;
	pb.reject = m->reject != 0;
	pb.reject_hint = m->reject_hint;
	pb.hint_term = m->hint_term;
	pb.context.data = (uint8_t *)m->context;
	pb.context.len = m->context_len;
	if (m->type == REP_MSG_SNAPSHOT) {
		node_meta_to_pb(&m->snapshot, &meta, &conf);
		pb.snapshot = &meta;
	}
	Lora__Entry *ents = NULL;
	Lora__Entry **ptrs = NULL;
	if (m->n_entries) {
		ents = lora_calloc(m->n_entries, sizeof *ents);
		ptrs = lora_calloc(m->n_entries, sizeof *ptrs);
		if (!ents || !ptrs) {
			lora_free(ents);
			lora_free(ptrs);
			return LORA_ENOMEM;
		}
		for (size_t i = 0; i < m->n_entries; i++) {
			const struct rep_entry *e = &m->entries[i];
			lora__entry__init(&ents[i]);
			ents[i].term = e->term;
			ents[i].index = e->index;
			ents[i].type = (Lora__EntryType)e->type;
			ents[i].data.data = e->data;
			ents[i].data.len = e->len;
			ptrs[i] = &ents[i];
		}
		pb.entries = ptrs;
		pb.n_entries = m->n_entries;
	}
	size_t n = lora__raft_message__get_packed_size(&pb);
	uint8_t *buf = lora_malloc(n);
	int rc = 0;
	if (buf == NULL)
		rc = LORA_ENOMEM;
	else
		lora__raft_message__pack(&pb, buf);
	lora_free(ents);
	lora_free(ptrs);
	*out = buf;
	*len = n;
	return rc;
}

/*
 * Unpacks a peer's RaftMessage into m. *pb_out and *ents_out own the
 * memory m points into: free with node_raft_msg_release. Never trusts the
 * bytes: LORA_ECORRUPT when they do not decode or break a limit.
 */
int node_raft_msg_unpack(const uint8_t *p, size_t len, struct rep_msg *m,
                         Lora__RaftMessage **pb_out,
                         struct rep_entry **ents_out)
{
	*pb_out = NULL;
	*ents_out = NULL;
	Lora__RaftMessage *pb =
	    lora__raft_message__unpack(&lora_pb_allocator, len, p);
	if (pb == NULL)
		return LORA_ECORRUPT;
	memset(m, 0, sizeof *m);
	if (pb->type == 0 || pb->type > REP_MSG_TYPE_MAX ||
	    pb->context.len > REP_CONTEXT_BYTES_MAX ||
	    pb->n_entries > REP_MSG_ENTRIES_MAX)
		goto corrupt;
	m->type = pb->type;
	m->from = pb->from;
	m->to = pb->to;
	m->term = pb->term;
	m->log_term = pb->log_term;
	m->index = pb->index;
	m->commit = pb->commit;
	m->reject = pb->reject;
	m->reject_hint = pb->reject_hint;
	m->hint_term = pb->hint_term;
	m->context_len = (uint32_t)pb->context.len;
	if (pb->context.len)
		memcpy(m->context, pb->context.data, pb->context.len);
	if (node_meta_from_pb(pb->snapshot, &m->snapshot))
		goto corrupt;
	if (pb->n_entries) {
		struct rep_entry *ents =
		    lora_calloc(pb->n_entries, sizeof *ents);
		if (ents == NULL) {
			lora__raft_message__free_unpacked(pb,
			                                  &lora_pb_allocator);
			return LORA_ENOMEM;
		}
		for (size_t i = 0; i < pb->n_entries; i++) {
			ents[i].index = pb->entries[i]->index;
			ents[i].term = pb->entries[i]->term;
			ents[i].type = (uint32_t)pb->entries[i]->type;
			ents[i].data = pb->entries[i]->data.data;
			ents[i].len = pb->entries[i]->data.len;
		}
		m->entries = ents;
		m->n_entries = pb->n_entries;
		*ents_out = ents;
	}
	*pb_out = pb;
	return 0;
corrupt:
	lora__raft_message__free_unpacked(pb, &lora_pb_allocator);
	return LORA_ECORRUPT;
}

void node_raft_msg_release(Lora__RaftMessage *pb, struct rep_entry *ents)
{
	lora_free(ents);
	if (pb)
		lora__raft_message__free_unpacked(pb, &lora_pb_allocator);
}
