/* snap_chunk_send.c - test tool: sends one SnapshotChunk peer frame, as a
 * leader streaming a checkpoint would, to a lorad peer address.
 *
 *   snap_chunk_send PEER_ADDR FROM TERM INDEX FILE
 *
 * The chunk is the whole (one-line) file FILE of snapshot INDEX, last of
 * the checkpoint, with voters 1, 2, 3; TERM is the leader term it claims.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>

#include "lora.h"
#include "lora_pb.h"

#define SNAP_FRAME_KIND   2 /* node/transport.h NODE_FRAME_SNAPSHOT */
#define SNAP_HEADER_BYTES 9 /* kind + be64 sender id */
#define SNAP_LINGER_MS    300

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s PEER_ADDR FROM TERM INDEX FILE\n",
		        argv[0]);
		return 2;
	}
	uint64_t voters[3] = {1, 2, 3};
	Lora__ConfState conf = LORA__CONF_STATE__INIT;
	conf.n_voters = 3;
	conf.voters = voters;
	Lora__SnapshotMeta meta = LORA__SNAPSHOT_META__INIT;
	meta.index = strtoull(argv[4], NULL, 10);
	meta.term = 1;
	meta.conf = &conf;
	static const char data[] = "not a checkpoint\n";
	Lora__SnapshotChunk c = LORA__SNAPSHOT_CHUNK__INIT;
	c.meta = &meta;
	c.file = argv[5];
	c.data.data = (uint8_t *)data;
	c.data.len = sizeof data - 1;
	c.last_of_file = 1;
	c.last = 1;
	c.term = strtoull(argv[3], NULL, 10);
	size_t len = lora__snapshot_chunk__get_packed_size(&c);
	uint8_t *frame = malloc(SNAP_HEADER_BYTES + len);
	if (frame == NULL)
		return 1;
	frame[0] = SNAP_FRAME_KIND;
	lora_put_be64(frame + 1, strtoull(argv[2], NULL, 10));
	lora__snapshot_chunk__pack(&c, frame + SNAP_HEADER_BYTES);
	char url[256];
	snprintf(url, sizeof url, "tcp://%s", argv[1]);
	nng_socket sock;
	int rv = nng_push0_open(&sock);
	if (rv == 0)
		rv = nng_dial(sock, url, NULL, 0);
	if (rv == 0)
		rv = nng_send(sock, frame, SNAP_HEADER_BYTES + len, 0);
	free(frame);
	if (rv != 0) {
		fprintf(stderr, "send to %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	/* nng_close does not wait for delivery */
	struct timespec ts = {0, SNAP_LINGER_MS * 1000000L};
	nanosleep(&ts, NULL);
	nng_close(sock);
	return 0;
}
