/* native_flood.c - test tool: connections to a native port that never
 * authenticate, all dialed from one source address.
 *
 *   native_flood ADDR SOURCE_IP CONNS SECONDS
 *
 * Opens CONNS nng req0 sockets dialing tcp://ADDR (tls+tcp:// with LORA_CA
 * set: tool_tls.h) from SOURCE_IP (port 0)
 * and sends nothing on them; each one the node closes is dialed again at
 * once (every 10-50 ms), so that the node's caps on unauthenticated
 * connections stay full. Prints "flooding" once the dialers run, then
 * exits after SECONDS (or when killed).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "tool_tls.h"

#define NF_CONNS_MAX 256

static int flood_one(const char *addr, const struct in_addr *src, nng_socket *s)
{
	nng_sockaddr sa = {
	    .s_in = {.sa_family = NNG_AF_INET, .sa_addr = src->s_addr}};
	if (nng_req0_open(s) != 0)
		return -1;
	nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, 50);
	return tool_dial(*s, addr, &sa, NNG_FLAG_NONBLOCK) ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct in_addr src;
	int conns = argc == 5 ? atoi(argv[3]) : 0;
	if (conns < 1 || conns > NF_CONNS_MAX ||
	    inet_pton(AF_INET, argv[2], &src) != 1) {
		fprintf(stderr,
		        "usage: native_flood ADDR SOURCE_IP CONNS (1-%d) "
		        "SECONDS\n",
		        NF_CONNS_MAX);
		return 2;
	}
	static nng_socket socks[NF_CONNS_MAX];
	for (int i = 0; i < conns; i++)
		if (flood_one(argv[1], &src, &socks[i]) != 0) {
			fprintf(stderr,
			        "native_flood: cannot dial %s from %s\n",
			        argv[1], argv[2]);
			return 1;
		}
	printf("flooding\n");
	fflush(stdout);
	struct timespec ts = {atoi(argv[4]), 0};
	while (nanosleep(&ts, &ts) != 0)
		;
	for (int i = 0; i < conns; i++)
		nng_close(socks[i]);
	return 0;
}
