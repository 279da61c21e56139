/*
 * snapshot.h - shipping a checkpoint to a follower that is too far behind
 * (snapshot.c): the leader streams it in SnapshotChunk frames, the
 * follower stages the chunks and, once the whole copy verifies, hands it
 * to the raft core, whose Ready makes the raft loop install it.
 *
 * struct lnode owns the receiving side (n->snap_recv, made at the first
 * chunk or send) and the senders' threads; node_snapshot_cleanup, after
 * the transport stopped, waits for the senders and frees it.
 *
 * The stager (nsnap_*) is the follower's part without a node: chunks of
 * one snapshot into one staging directory, bounded and in order, and the
 * staged copy verified (applied index, digest) before it counts as staged.
 * Who may send chunks (the leader of the chunk's term) is the node's check,
 * made before. tests/node/test_snapshot.c drives a stager alone.
 */
#ifndef LORA_NODE_SNAPSHOT_H
#define LORA_NODE_SNAPSHOT_H

#include <stdint.h>

#include "applier.h"
#include "config.h"
#include "lora_pb.h"
#include "raft.h"
#include "storage.h"

#define NODE_SNAP_CHUNK_BYTES         (256u << 10)
#define NODE_SNAP_FILE_NAME_BYTES_MAX 255
#define NODE_SNAP_FILES_MAX           100000
#define NODE_SNAP_STAGING             "snapshot-staging" /* inside data_dir */
/* Free disk kept when staging a snapshot (beside the state's own). */
#define NODE_SNAP_RESERVE_BYTES (64u << 20)
/* A staged snapshot handed to the raft loop is not replaced by a newer
 * one for this long (it is being installed, or was refused by the core
 * and will never be). */
#define NODE_SNAP_STAGED_HOLD_MS 30000

/* One follower's staging; the caller serialises the calls (one lock). */
struct nsnap_stager {
	char data_dir[NODE_PATH_BYTES_MAX]; /* the staging dir is inside */
	uint64_t bytes_max;                 /* a snapshot's bytes in all */
	uint64_t from;
	uint64_t index;     /* meta.index being staged, 0 when none */
	int broken;         /* a chunk was lost: ignore until the next start */
	uint64_t staged;    /* index staged and handed over, 0: none */
	uint64_t staged_ms; /* when */
	/* the snapshot being staged: files in order, each from offset 0 */
	char file[NODE_SNAP_FILE_NAME_BYTES_MAX + 1];
	uint64_t file_off;            /* bytes of `file` written */
	uint64_t bytes;               /* bytes staged, <= bytes_max */
	uint64_t files;               /* files begun, <= NODE_SNAP_FILES_MAX */
	struct node_space space;      /* disk guard of the data directory */
	struct sto_install_info info; /* verified staged copy (staged != 0) */
};

/* What nsnap_stage did with a chunk. */
enum nsnap_result {
	NSNAP_REFUSED = -1, /* out of order, too large, unwritable, or the
	                     * copy did not verify: staging starts over */
	NSNAP_TAKEN = 0,    /* written; more to come */
	NSNAP_STAGED = 1,   /* the last chunk: the copy is staged, verified
	                     * (s->info): hand it to the core */
	NSNAP_AGAIN = 2,    /* the staged one's last chunk again: hand it over
	                     * again */
	NSNAP_IGNORED = 3,  /* a chunk of one staged, or of a newer one while
	                     * the staged one may be installing */
};

void nsnap_stager_init(struct nsnap_stager *s, const char *data_dir,
                       uint64_t bytes_max);
/* The staging directory of s into out. */
void nsnap_staging_dir(const struct nsnap_stager *s, char *out, size_t len);
/* Stages chunk c (decoded by node_snapshot_chunk_decode, its meta m) from
 * node `from` at now_ms. Refusals are logged (node_peer_refused) and the
 * staged part is removed. */
enum nsnap_result nsnap_stage(struct nsnap_stager *s, uint64_t from,
                              const Lora__SnapshotChunk *c,
                              const struct rep_snapshot_meta *m,
                              uint64_t now_ms);

/* ---- the node's snapshots ---------------------------------------------- */

struct lnode;

/* Leader: stream the newest checkpoint to `to` for meta (own thread). */
void node_snapshot_send(struct lnode *n, uint64_t to,
                        const struct rep_snapshot_meta *meta);
/* A chunk's bytes from a peer, decoded (pure, fuzzed): 0 with *out
 * (free with lora__snapshot_chunk__free_unpacked), or LORA_ECORRUPT when
 * they do not decode, lack the meta or the file name, or name a file
 * outside the staging directory (empty, with '/', starting with '.', or
 * longer than 255 bytes). */
int node_snapshot_chunk_decode(const uint8_t *p, size_t len,
                               Lora__SnapshotChunk **out);
/* Follower: a chunk arrived. */
void node_snapshot_on_chunk(struct lnode *n, uint64_t from, const uint8_t *p,
                            size_t len);
/* Raft loop: swap the staged checkpoint in for state/. */
int node_snapshot_install(struct lnode *n, const struct rep_snapshot_meta *m,
                          char *errmsg);
/* The node's own install step, also redone at start-up after a crash:
 * empties the raft log up to the snapshot and saves snapshot.meta. n->log
 * must be open. */
int node_snapshot_adopt(struct lnode *n, const struct rep_snapshot_meta *m,
                        char *errmsg);
/* The snapshot meta an install marker carries (sto_install_info.extra). */
int node_snapshot_meta_unpack(const struct sto_install_info *info,
                              struct rep_snapshot_meta *m);
/* After the transport stopped: waits for the senders, frees n->snap_recv. */
void node_snapshot_cleanup(struct lnode *n);

#endif
