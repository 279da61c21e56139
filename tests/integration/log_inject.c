/* log_inject.c - test tool: appends one entry to a stopped node's Raft log,
 * as an older or buggy version might have written it, and marks it
 * committed (for a one-node cluster).
 *
 *   log_inject RAFTLOG_DIR NODE_ID DEPTH    a CreateNode NODE_ID whose
 *                                           property p is DEPTH lists deep
 *   log_inject RAFTLOG_DIR NODE_ID garbage  bytes that do not decode
 *
 * Prints the new entry's index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"
#include "wire_build.h"

static void batch_bytes(struct wire *w, uint64_t id, const char *what)
{
	if (!strcmp(what, "garbage")) {
		memset(w, 0, sizeof *w);
		const uint8_t junk[] = {1 << 3 | 2, 40, 0xff, 0xff}; /* short */
		wb_prepend(w, junk, sizeof junk);
		return;
	}
	wb_value(w, WB_LIST, strtol(what, NULL, 10));
	wb_wrap(w, 2);        /* Property.value */
	wb_string(w, 1, "p"); /* Property.key */
	wb_wrap(w, 3);        /* CreateNode.properties */
	wb_varint(w, id);     /* CreateNode.id */
	wb_varint(w, 1 << 3);
	wb_wrap(w, 1); /* Mutation.create_node */
	wb_wrap(w, 1); /* MutationBatch.mutations */
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s RAFTLOG_DIR NODE_ID DEPTH|garbage\n",
		        argv[0]);
		return 2;
	}
	char msg[LORA_ERRMSG_BYTES] = "";
	struct sto_log *l;
	if (sto_log_open(argv[1], &l, msg) != 0) {
		fprintf(stderr, "open %s: %s\n", argv[1], msg);
		return 1;
	}
	struct wire w;
	batch_bytes(&w, strtoull(argv[2], NULL, 10), argv[3]);
	struct sto_hard_state hs;
	struct sto_log_entry e = {
	    .index = sto_log_last_index(l) + 1,
	    .type = LORA__ENTRY_TYPE__ENTRY_NORMAL,
	    .data = w.p + w.start,
	    .len = wb_len(&w),
	};
	int rc = sto_log_hard_state(l, &hs);
	if (rc == 0)
		rc = sto_log_term(l, e.index - 1, &e.term);
	if (rc == 0)
		rc = sto_log_append(l, &e, 1, msg);
	hs.commit = e.index;
	if (rc == 0)
		rc = sto_log_set_hard_state(l, &hs, msg);
	wb_free(&w);
	sto_log_close(l);
	if (rc != 0) {
		fprintf(stderr, "append: %s %s\n", lora_err_code(rc), msg);
		return 1;
	}
	printf("%llu\n", (unsigned long long)e.index);
	return 0;
}
