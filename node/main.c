/* main.c - lorad: the LoraDB node daemon. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>

#include "log.h"
#include "node_int.h"
#include "storage.h"

int main(int argc, char **argv)
{
	struct node_config cfg;
	char err[LORA_ERRMSG_BYTES] = "";
	int help = 0;
	int rc = node_config_from_args(&cfg, argc, argv, &help, err);
	if (help) {
		fputs(node_config_usage(), stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "lorad: %s\n%s", err, node_config_usage());
		return 2;
	}
	node_log_init(cfg.id, cfg.log_level);
	/* Signals are taken synchronously by the main thread only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct lnode *n;
	rc = lnode_open(&cfg, &n, err);
	if (rc) {
		LOG_ERROR("cannot start: %s", err[0] ? err : lora_strerror(rc));
		return 1;
	}
	fprintf(stderr, "lorad %llu ready http=%s client=%s peer=%s\n",
	        (unsigned long long)cfg.id, cfg.http_addr, cfg.client_addr,
	        cfg.peer_addr);
	LOG_INFO("RocksDB's CRC32C: %s", sto_crc32c_impl());
	int sig = 0;
	for (;;) {
		sigwait(&set, &sig);
		if (sig != SIGHUP)
			break;
		LOG_INFO("SIGHUP ignored (restart to change configuration)");
	}
	LOG_INFO("signal %d: shutting down", sig);
	lnode_close(n);
	nng_fini(); /* every socket is closed: let nng's threads finish */
	LOG_INFO("stopped");
	return 0;
}
