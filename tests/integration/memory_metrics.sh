#!/usr/bin/env bash
# Where a node's memory is, in /metrics, on one real node (127.1.130.2):
# - lora_memory_bytes gives every part (RocksDB's caches, memtables and
#   table readers; the vector graphs, node table and vector columns),
#   lora_process_resident_bytes and glibc malloc's figures are there;
# - malloc's figures are read at most once per 10 s, whatever the scrapes
#   (lora_malloc_figure_reads_total);
# - the end of a vector index's background build returns malloc's free
#   memory (lora_malloc_trims_total counts it), and a statement past 64 MiB
#   of memory asks for a trim too (counted as done, or as skipped when it
#   comes within 10 s of the last one: lora_malloc_trims_skipped_total);
# - an exact vector query builds the vector column (vector_columns > 0;
#   storage_ncache checks that its build leaves the block cache alone);
# - apply's adjacency chunk cache shows once a relationship was created
#   (adjacency_cache > 0: its table and the chunks of the two ends).
# Usage: memory_metrics.sh LORAD
. "$(dirname "$0")/lib.sh"
it_setup 127.1.130 "$1"
ID=2
H="http://$IT_NET.$ID:4747"
it_start "$ID" "$ID@$IT_NET.$ID:4749" || it_done
[ -n "$(it_leader "$ID")" ] && it_ok "single node leads" || { it_fail "no leader"; it_done; }

metric() {
	curl -s -m 5 "$H/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
part() { metric "lora_memory_bytes{part=\"$1\"}"; }
has_parts() {
	local m p
	m=$(curl -s -m 5 "$H/metrics")
	for p in block_cache block_cache_pinned row_cache memtables table_readers \
		vector_graphs node_table vector_columns adjacency_cache; do
		grep -q "^lora_memory_bytes{part=\"$p\"} [0-9]" <<<"$m" || return 1
	done
	grep -q '^lora_malloc_bytes{state="free"} [0-9]' <<<"$m" &&
		grep -q '^lora_malloc_arenas [0-9]' <<<"$m"
}
it_check "/metrics: every memory part and malloc's figures" has_parts
it_check "/metrics: the resident set" [ "$(metric lora_process_resident_bytes)" -gt 0 ]
# four scrapes in a row read malloc's figures (each a walk of every arena
# under its lock) at most once more: the 10 s window may end between them
figures_cached() {
	local a b
	a=$(metric lora_malloc_figure_reads_total)
	metric lora_malloc_arenas >/dev/null
	metric lora_malloc_arenas >/dev/null
	b=$(metric lora_malloc_figure_reads_total)
	echo "figure reads $a -> $b over four scrapes"
	[ "$a" -ge 1 ] && [ $((b - a)) -le 1 ]
}
it_check "/metrics: malloc's figures read once, not per scrape" figures_cached

# 3,000 nodes with 8-d vectors, then the index: built in the background
it_query "$ID" '{"query":"UNWIND range(1, 3000) AS i CREATE (:P {i: i, v: vector([sin(i), cos(i), sin(2*i), cos(3*i), sin(5*i), cos(7*i), sin(11*i), 1.0], 8, FLOAT32)})"}'
it_check "3,000 vector nodes created" [ "$IT_STATUS" = 200 ]
trims0=$(metric lora_malloc_trims_total)
it_query "$ID" '{"query":"CREATE VECTOR INDEX pv FOR (p:P) ON (p.v) OPTIONS {indexConfig: {`vector.dimensions`: 8, `vector.similarity_function`: '"'cosine'"'}}"}'
it_check "vector index created" [ "$IT_STATUS" = 200 ]
online() { # the only index: ONLINE, none POPULATING
	it_query "$ID" '{"query":"SHOW INDEXES","format":"rowArrays"}'
	grep -q '"ONLINE"' <<<"$IT_BODY" && ! grep -q '"POPULATING"' <<<"$IT_BODY"
}
it_check "the index is ONLINE" it_wait 60 online
it_check "its graph shows in vector_graphs" [ "$(part vector_graphs)" -gt 0 ]
trimmed_since() { [ "$(metric lora_malloc_trims_total)" -gt "$1" ]; }
it_check "the end of the build returned malloc's free memory (a trim counted)" \
	trimmed_since "$trims0"

Q='[0.3, -0.2, 0.9, 0.1, -0.5, 0.4, 0.2, 1.0]'
it_query "$ID" "{\"query\":\"CALL db.index.vector.queryNodes('pv', 5, \$q, {exact: true}) YIELD node RETURN node.i AS i\",\"params\":{\"q\":$Q}}"
it_check "exact procedure answered" [ "$IT_STATUS" = 200 ]
it_check "it built the vector column (vector_columns > 0)" [ "$(part vector_columns)" -gt 0 ]

it_query "$ID" '{"query":"MATCH (a:P {i: 1}), (b:P {i: 2}) CREATE (a)-[:R]->(b)"}'
it_check "a relationship created" [ "$IT_STATUS" = 200 ]
it_check "apply's chunk cache shows in adjacency_cache" [ "$(part adjacency_cache)" -gt 0 ]

# a statement past 64 MiB (QRY_TRIM_PEAK_BYTES) gives its memory back
trims_asked() { echo $(($(metric lora_malloc_trims_total) + $(metric lora_malloc_trims_skipped_total))); }
asked_since() { [ "$(trims_asked)" -gt "$1" ]; }
asked1=$(trims_asked)
it_query "$ID" '{"query":"UNWIND range(1, 3000000) AS i WITH collect(i) AS l RETURN size(l) AS n"}'
it_check "a 3M-value list answered" bash -c '[ "$1" = 200 ] && grep -q "\"n\":3000000" <<<"$2"' _ "$IT_STATUS" "$IT_BODY"
it_check "after it, a trim asked for (done or skipped)" it_wait 10 asked_since "$asked1"
it_done
