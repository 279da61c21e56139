/*
 * fuzz_peer.c - fuzz target for what a node decodes from its peers and its
 * disk besides Raft messages (fuzz_raft.c). The first byte picks:
 *   0 a gossip frame (node_gossip_parse, node/status.c);
 *   1 a snapshot chunk (node_snapshot_chunk_decode, node/snapshot.c) and
 *     its snapshot meta (node_meta_from_pb);
 *   2 an install marker read back at start-up (sto_install_marker_parse,
 *     storage/install.c) and the snapshot meta kept in it
 *     (node_snapshot_meta_unpack).
 * Checked, besides "no crash, no overread, no leak": answers are 0 or
 * LORA_ECORRUPT; a gossip frame's fields are terminated and within their
 * sizes; a chunk's file name cannot leave the staging directory; a meta
 * has at most REP_MEMBERS_MAX voters and learners; a marker's staged
 * directory name is terminated and within its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc)
{
	if (rc != 0 && rc != LORA_ECORRUPT)
		abort();
}

static void gossip(const uint8_t *p, size_t len)
{
	struct node_gossip g;
	int rc = node_gossip_parse(p, len, &g);
	check_rc(rc);
	if (rc == 0 && (strnlen(g.peer, sizeof g.peer) == sizeof g.peer ||
	                strnlen(g.http, sizeof g.http) == sizeof g.http ||
	                strnlen(g.client, sizeof g.client) == sizeof g.client ||
	                strnlen(g.role, sizeof g.role) == sizeof g.role))
		abort();
}

static void meta_ok(const Lora__SnapshotMeta *pb)
{
	struct rep_snapshot_meta m;
	int rc = node_meta_from_pb(pb, &m);
	check_rc(rc);
	if (rc == 0 &&
	    (m.n_voters > REP_MEMBERS_MAX || m.n_learners > REP_MEMBERS_MAX))
		abort();
}

static void chunk(const uint8_t *p, size_t len)
{
	Lora__SnapshotChunk *c = NULL;
	int rc = node_snapshot_chunk_decode(len ? p : NULL, len, &c);
	check_rc(rc);
	if (rc)
		return;
	size_t n = strlen(c->file);
	if (n == 0 || n > 255 || strchr(c->file, '/') || c->file[0] == '.')
		abort(); /* a path out of the staging directory */
	meta_ok(c->meta);
	lora__snapshot_chunk__free_unpacked(c, &lora_pb_allocator);
}

static void marker(const uint8_t *p, size_t len)
{
	struct sto_install_info info;
	char staged[256];
	memset(staged, 'x', sizeof staged);
	int rc = sto_install_marker_parse((const char *)p, len, &info, staged,
	                                  sizeof staged);
	check_rc(rc);
	if (rc)
		return;
	if (strnlen(staged, sizeof staged) == sizeof staged ||
	    info.extra_len > sizeof info.extra ||
	    strnlen(info.digest, sizeof info.digest) == sizeof info.digest)
		abort();
	struct rep_snapshot_meta m;
	rc = node_snapshot_meta_unpack(&info, &m);
	check_rc(rc);
	if (rc == 0 &&
	    (m.n_voters > REP_MEMBERS_MAX || m.n_learners > REP_MEMBERS_MAX))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1); /* exact, for ASan */
	memcpy(p, data + 1, len);
	switch (data[0] % 3) {
	case 0:
		gossip(p, len);
		break;
	case 1:
		chunk(p, len);
		break;
	default:
		marker(p, len);
		break;
	}
	free(p);
	return 0;
}
