/* test_intx.c - CALL { ... } IN TRANSACTIONS against a real store: each
 * chunk is committed through the request's callback (here sto_apply plus
 * a fresh view, as a node's writer does through Raft) and is visible when
 * the callback returns; OF n ROWS boundaries; a failing chunk leaves the
 * chunks before it committed and says so; rows returned by the subquery;
 * where the clause is refused; memory of one chunk, not of the statement;
 * and the errors that name IN TRANSACTIONS as the way out of a statement
 * too big for one transaction. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qint.h" /* g_loads_total, g_index_seeks_total */
#include "qtest_store.h"

/* what the callback saw: one entry per chunk */
#define CHUNKS_MAX 64
struct commits {
	int n;
	int64_t count_after[CHUNKS_MAX]; /* count(label) right after */
	const char *label;
	struct sto_view *mine; /* the view the callback opened last */
	const char *sneak;     /* run and applied after the first chunk, as
	                        * another writer's statement would be (after
	                        * the chunks in flight with it: a leader's
	                        * chunks in flight are consecutive entries) */
	int refuse_at; /* the refuse_at-th commit or proposal (from 1) fails
	                * with refuse_code (default LORA_EUNAVAILABLE, as a node
	                * that lost its leadership answers) */
	int refuse_code;
	/* pipelined: the chunks proposed, oldest first, packed (with 1) or
	 * applied when proposed (with 2) */
	struct flight {
		uint8_t *buf;
		size_t len;
		uint64_t index;
		int applied;
	} fly[QRY_CHUNKS_IN_FLIGHT];
	int nfly, nfly_max; /* in flight now, and at most */
	int reject_at;  /* pipelined 1: the reject_at-th wait (from 1) applies
	                 * a batch apply refuses in its chunk's place */
	int attempts;   /* commits and proposals asked for */
	int rejects;    /* waits counted for reject_at */
	int waits;      /* wait_cb calls */
	int sneaked;    /* sneak ran */
	int unknown_at; /* the unknown_at-th wait (from 1) applies its
	                 * chunk but answers LORA_EUNKNOWN_OUTCOME, as a
	                 * node whose answer did not come in time */
	int noview_at;  /* the noview_at-th wait (from 1) applies its chunk
	                 * but opens no view after it (LORA_EIO), as a node
	                 * whose store failed a read */
	int noviews;    /* waits counted for noview_at */
};

/* 1 or 2: the engine is given propose_chunk and wait_chunk as well (a
 * node's writer does), so chunk n+1 runs while chunk n commits: with 1
 * the chunk is applied when it is waited for (the engine lays it over
 * the view meanwhile), with 2 when it is proposed (the view the proposal
 * hands back already sees it). Every test runs all three ways (the
 * tcases "intx", "intx_pipelined" and "intx_pipelined_fast"). */
static int pipelined;

static int run(const char *q, struct commits *k, char *out, size_t cap,
               struct qry_error *err);

/* count(n:label) on a fresh view */
static int64_t count_label(const char *label)
{
	char q[128];
	snprintf(q, sizeof q, "MATCH (n:%s) RETURN count(n)", label);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	struct qry_request req = {.query = q, .view = v};
	qry_limits_init(&req.limits);
	struct qry_cursor *cur;
	struct qry_error e;
	ck_assert_int_eq(qry_open(&req, &cur, &e), 0);
	const Lora__Value *const *row;
	int done;
	ck_assert_int_eq(qry_cursor_next(cur, &row, &done, &e), 0);
	ck_assert(!done);
	int64_t n = row[0]->int_value;
	qry_cursor_free(cur);
	sto_view_close(v);
	return n;
}

static int apply_and_view(struct commits *k, const Lora__MutationBatch *b,
                          struct sto_view **nv, struct qry_error *err);

static int refused(struct commits *k, struct qry_error *err)
{
	if (!k->refuse_at || ++k->attempts != k->refuse_at)
		return 0;
	snprintf(err->message, sizeof err->message,
	         "the chunk was not proposed (test)");
	return err->code = k->refuse_code ? k->refuse_code : LORA_EUNAVAILABLE;
}

/* commits like a node's writer: apply, then a view at the new index */
static int commit_cb(void *arg, const Lora__MutationBatch *b,
                     struct sto_view **nv, struct qry_error *err)
{
	struct commits *k = arg;
	if (refused(k, err))
		return err->code;
	return apply_and_view(k, b, nv, err);
}

/* a fresh view for the engine (closing the one the callbacks gave it) */
static void new_view(struct commits *k, struct sto_view **nv)
{
	if (k->mine)
		sto_view_close(k->mine);
	ck_assert_int_eq(sto_view_open(st, nv), 0);
	k->mine = *nv;
}

/* pipelined: a proposal keeps the batch's bytes (the engine lends b for
 * the call only) and the wait applies them, or (2) it applies b at once;
 * its entry is the one it is applied at */
static int propose_cb(void *arg, const Lora__MutationBatch *b,
                      const uint8_t *packed, size_t plen, struct sto_view **nv,
                      uint64_t *index, struct qry_error *err)
{
	/* the engine's packed bytes are b's encoding */
	size_t blen = lora__mutation_batch__get_packed_size(b);
	uint8_t *mine = malloc(blen + 1);
	lora__mutation_batch__pack(b, mine);
	ck_assert_uint_eq(plen, blen);
	ck_assert(memcmp(mine, packed, blen) == 0);
	free(mine);
	struct commits *k = arg;
	ck_assert_int_lt(k->nfly, QRY_CHUNKS_IN_FLIGHT);
	/* the writer gives the engine's view back before it proposes */
	if (k->mine)
		sto_view_close(k->mine);
	k->mine = NULL;
	if (refused(k, err))
		return err->code;
	int waiting = 0;
	for (int i = 0; i < k->nfly; i++)
		waiting += !k->fly[i].applied;
	*index = applied + 1 + (uint64_t)waiting;
	struct flight *f = &k->fly[k->nfly++];
	if (k->nfly > k->nfly_max)
		k->nfly_max = k->nfly;
	memset(f, 0, sizeof *f);
	f->index = *index;
	if (pipelined == 2) {
		f->applied = 1;
		return apply_and_view(k, b, nv, err);
	}
	/* as the writer proposes it: naming the chunk before it in flight */
	f->buf = malloc(blen + LORA_BATCH_AFTER_INDEX_BYTES_MAX);
	memcpy(f->buf, packed, blen);
	f->len = blen;
	if (k->nfly > 1)
		f->len += lora_batch_put_after_index(f->buf + blen,
		                                     k->fly[k->nfly - 2].index);
	new_view(k, nv);
	return 0;
}

static int wait_cb(void *arg, struct sto_view **nv, int *landed,
                   struct qry_error *err)
{
	struct commits *k = arg;
	ck_assert_int_gt(k->nfly, 0);
	struct flight f = k->fly[0];
	k->nfly--;
	memmove(&k->fly[0], &k->fly[1], (size_t)k->nfly * sizeof f);
	/* the writer gives the engine's view back before it waits */
	if (k->mine)
		sto_view_close(k->mine);
	k->mine = NULL;
	int rc = 0;
	if (f.applied) {
		new_view(k, nv);
	} else if (k->reject_at && ++k->rejects == k->reject_at) {
		/* refused at apply: an edge between nodes that do not exist,
		 * recorded as the chunk's entry's rejection */
		free(f.buf);
		Lora__CreateEdge ce = LORA__CREATE_EDGE__INIT;
		ce.id = 1u << 30;
		ce.type = "NOPE";
		ce.from_id = ce.to_id = 1u << 30;
		Lora__Mutation m = LORA__MUTATION__INIT, *mp = &m;
		m.op_case = LORA__MUTATION__OP_CREATE_EDGE;
		m.create_edge = &ce;
		Lora__MutationBatch bad = LORA__MUTATION_BATCH__INIT;
		bad.n_mutations = 1;
		bad.mutations = &mp;
		ck_assert_uint_eq(applied + 1, f.index);
		rc = sto_apply(st, ++applied, &bad, err->message);
		ck_assert_int_ne(rc, 0);
		err->code = rc;
	} else {
		Lora__MutationBatch *b =
		    lora__mutation_batch__unpack(NULL, f.len, f.buf);
		ck_assert_ptr_nonnull(b);
		free(f.buf);
		ck_assert_uint_eq(applied + 1, f.index);
		rc = apply_and_view(k, b, nv, err);
		lora__mutation_batch__free_unpacked(b, NULL);
	}
	if (rc == 0 && k->noview_at && ++k->noviews == k->noview_at) {
		sto_view_close(k->mine);
		k->mine = *nv = NULL;
		*landed = 1;
		snprintf(err->message, sizeof err->message,
		         "cannot open a read view (test)");
		return err->code = LORA_EIO;
	}
	if (rc == 0 && k->unknown_at && ++k->waits == k->unknown_at) {
		snprintf(err->message, sizeof err->message,
		         "no answer in time for a chunk (test): it may still "
		         "commit");
		return err->code = LORA_EUNKNOWN_OUTCOME;
	}
	return rc;
}

static int apply_and_view(struct commits *k, const Lora__MutationBatch *b,
                          struct sto_view **nv, struct qry_error *err)
{
	int rc = sto_apply(st, ++applied, b, err->message);
	if (rc)
		return err->code = rc;
	if (k->mine) /* the engine no longer uses it */
		sto_view_close(k->mine);
	k->mine = NULL;
	int waiting = 0;
	for (int i = 0; i < k->nfly; i++)
		waiting += !k->fly[i].applied;
	if (k->sneak && !k->sneaked && !waiting) {
		struct qry_error e;
		k->sneaked = 1;
		ck_assert_int_eq(run(k->sneak, NULL, NULL, 0, &e), 0);
	}
	ck_assert_int_eq(sto_view_open(st, nv), 0);
	k->mine = *nv;
	if (k->n < CHUNKS_MAX)
		k->count_after[k->n] = k->label ? count_label(k->label) : 0;
	k->n++;
	return 0;
}

/* LOAD CSV's import directory for run_lim (NULL: none) */
static const char *imp_dir;

/* Creates dir/import (once) and writes body to a file name there; the
 * import directory's path in imp. */
static void import_file(char *imp, size_t cap, const char *name,
                        const char *body)
{
	snprintf(imp, cap, "%s/import", dir);
	ck_assert(mkdir(imp, 0700) == 0 || errno == EEXIST);
	char p[600];
	snprintf(p, sizeof p, "%s/%s", imp, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(body, f);
	fclose(f);
}

/* the parameters of the next run (NULL: none) */
static const Lora__ValueMap *run_params;

/* One parameter, $n = v, in m (its entry in *me), for run_params. */
static const Lora__ValueMap *param_n(Lora__ValueMap *m, Lora__MapEntry **mep,
                                     Lora__MapEntry *me, Lora__Value *v)
{
	lora__map_entry__init(me);
	me->key = "n";
	me->value = v;
	*mep = me;
	lora__value_map__init(m);
	m->n_entries = 1;
	m->entries = mep;
	return m;
}

/* Runs q with the callback (k may be NULL: no callback); rows as
 * "a,b;c,d;" in out. Returns the error code. */
static int run_lim(const char *q, struct commits *k, const struct qry_limits *l,
                   size_t batch_max, char *out, size_t cap,
                   struct qry_error *err)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	struct qry_request req = {.query = q,
	                          .view = v,
	                          .import_dir = imp_dir,
	                          .batch_bytes_max = batch_max,
	                          .commit_chunk = k ? commit_cb : NULL,
	                          .propose_chunk =
	                              k && pipelined ? propose_cb : NULL,
	                          .wait_chunk = k && pipelined ? wait_cb : NULL,
	                          .commit_arg = k};
	if (l)
		req.limits = *l;
	else
		qry_limits_init(&req.limits);
	req.params = run_params;
	struct qry_cursor *cur;
	int rc = qry_open(&req, &cur, err);
	if (out)
		out[0] = 0;
	if (!rc && qry_cursor_batch(cur)) {
		char em[LORA_ERRMSG_BYTES];
		ck_assert_int_eq(
		    sto_apply(st, ++applied, qry_cursor_batch(cur), em), 0);
	}
	const char *const *cols;
	size_t nc = rc ? 0 : qry_cursor_columns(cur, &cols);
	while (!rc) {
		const Lora__Value *const *row;
		int done;
		rc = qry_cursor_next(cur, &row, &done, err);
		if (rc || done)
			break;
		struct lora_buf b = {0};
		for (size_t j = 0; j < nc; j++) {
			if (j)
				lora_buf_putc(&b, ',');
			qry_value_format(row[j], &b);
		}
		lora_buf_putc(&b, ';');
		if (out)
			strncat(out, b.data, cap - strlen(out) - 1);
		lora_buf_free(&b);
	}
	if (cur)
		qry_cursor_free(cur);
	sto_view_close(v);
	/* chunks left in flight by a failed statement commit, as a node's
	 * proposals do */
	while (k && k->nfly) {
		struct sto_view *fv = NULL;
		struct qry_error fe;
		int landed = 0;
		k->unknown_at = k->noview_at = 0;
		int wrc = wait_cb(k, &fv, &landed, &fe);
		ck_assert(wrc == 0 || k->reject_at);
	}
	if (k && k->mine) {
		sto_view_close(k->mine);
		k->mine = NULL;
	}
	return rc;
}

static int run(const char *q, struct commits *k, char *out, size_t cap,
               struct qry_error *err)
{
	return run_lim(q, k, NULL, 0, out, cap, err);
}

START_TEST(chunks_commit_as_they_go)
{
	struct commits k = {.label = "P"};
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 2500) AS i CALL { WITH i "
	                     "CREATE (:P {id: i}) } IN TRANSACTIONS OF 1000 "
	                     "ROWS",
	                     &k, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(k.n, 3);
	ck_assert_int_eq(k.count_after[0], 1000);
	ck_assert_int_eq(k.count_after[1], 2000);
	ck_assert_int_eq(k.count_after[2], 2500);
	/* pipelined: two chunks were in flight at once */
	ck_assert_int_eq(k.nfly_max, pipelined ? QRY_CHUNKS_IN_FLIGHT : 0);
	/* ids are unique across chunks */
	char out[64];
	ck_assert_int_eq(run("MATCH (n:P) RETURN count(DISTINCT id(n)), "
	                     "sum(n.id)",
	                     NULL, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "2500,3126250;");
	/* no OF: 1,000 rows a transaction; ROW works too */
	struct commits d = {.label = "D"};
	ck_assert_int_eq(run("UNWIND range(1, 1500) AS i CALL { WITH i "
	                     "CREATE (:D) } IN TRANSACTIONS",
	                     &d, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(d.n, 2);
	ck_assert_int_eq(d.count_after[0], 1000);
	struct commits one = {.label = "O"};
	ck_assert_int_eq(run("UNWIND [1, 2] AS i CALL { WITH i CREATE (:O) } "
	                     "IN TRANSACTIONS OF 1 ROW ON ERROR FAIL",
	                     &one, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(one.n, 2);
}
END_TEST

/* A chunk's subquery is a write: the EXISTS and COUNT subqueries its
 * MATCH evaluates run inside MATCH's scratch memory, also after a chunk
 * failed inside one of them under ON ERROR CONTINUE (review s17-a/b). */
START_TEST(subqueries_in_chunk_match)
{
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 3) AS i CREATE (:N {id: i, "
	                     "s: 'n' + toString(i)}) WITH 1 AS x LIMIT 1 "
	                     "UNWIND range(1, 5) AS j CREATE (:L {name: "
	                     "'l' + toString(j)})",
	                     NULL, NULL, 0, &e),
	                 0);
	struct commits k = {.label = "M"};
	ck_assert_msg(
	    run("UNWIND [1, 2] AS i CALL { WITH i MATCH (n:N {id: i}) "
	        "WHERE COUNT { MATCH (x:L) RETURN x.name AS nm } = 5 "
	        "AND EXISTS { MATCH (x:L) WITH x ORDER BY x.name DESC "
	        "RETURN x.name AS nm UNION MATCH (y:N) WHERE y.id = i "
	        "RETURN y.s AS nm } "
	        "CREATE (:M {id: n.id}) } IN TRANSACTIONS OF 1 ROW",
	        &k, NULL, 0, &e) == 0,
	    "%s", e.message);
	ck_assert_int_eq(count_label("M"), 2);
	/* the chunk of d = 0 fails inside EXISTS; the others create one
	 * node for each of the two (:N) with id <= 2 */
	struct commits k2 = {.label = "M2"};
	char out[256];
	ck_assert_msg(
	    run("UNWIND [1, 0, 2] AS d CALL { WITH d MATCH (n:N) WHERE n.id "
	        "<= 2 AND EXISTS { MATCH (x:L) WITH x ORDER BY x.name "
	        "WHERE 10 / d > 0 RETURN x } CREATE (:M2 {d: d, s: n.s}) } "
	        "IN TRANSACTIONS OF 1 ROW ON ERROR CONTINUE REPORT STATUS "
	        "AS s RETURN d, s.committed",
	        &k2, out, sizeof out, &e) == 0,
	    "%s", e.message);
	ck_assert_str_eq(out, "1,true;0,false;2,true;");
	ck_assert_int_eq(count_label("M2"), 4);
}
END_TEST

START_TEST(chunks_see_earlier_chunks)
{
	/* MERGE in chunk 2 finds what chunk 1 committed; a MATCH outside
	 * streams over the committed graph */
	struct commits k = {.label = "K"};
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND [1, 2, 1, 2, 3] AS i CALL { WITH i "
	                     "MERGE (:K {id: i}) } IN TRANSACTIONS OF 2 ROWS",
	                     &k, NULL, 0, &e),
	                 0);
	/* chunk 2 matched what chunk 1 made: nothing to commit */
	ck_assert_int_eq(k.n, 2);
	ck_assert_int_eq(count_label("K"), 3);
	struct commits s = {.label = "K"};
	char out[64];
	ck_assert_int_eq(run("MATCH (n:K) CALL { WITH n SET n.seen = true } "
	                     "IN TRANSACTIONS OF 1 ROWS",
	                     &s, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(run("MATCH (n:K) WHERE n.seen RETURN count(n)", NULL,
	                     out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "3;");
}
END_TEST

/* What the outer part reads from a node survives the chunks: each
 * chunk gives the graph cache back, and the outer UNWIND's list came
 * from a node the outer MATCH had loaded there (two labels to check), so
 * after the first chunk it read freed memory. */
START_TEST(outer_values_outlive_chunks)
{
	struct qry_error e;
	ck_assert_int_eq(run("CREATE (:Doc:Pub {tags: ['a', 'b', 'c', 'd', "
	                     "'e']}), (:Doc:Pub {tags: ['f', 'g', 'h']})",
	                     NULL, NULL, 0, &e),
	                 0);
	const char *q[] = {
	    "MATCH (d:Doc:Pub) UNWIND d.tags AS t CALL { WITH t MERGE "
	    "(:Tag {name: t}) } IN TRANSACTIONS OF 2 ROWS",
	    "MATCH (d:Doc:Pub) WITH properties(d) AS p UNWIND p.tags AS t "
	    "CALL { WITH t MERGE (:Tag2 {name: t}) } IN TRANSACTIONS OF 2 "
	    "ROWS",
	};
	const char *check[] = {
	    "MATCH (t:Tag) RETURN t.name ORDER BY t.name",
	    "MATCH (t:Tag2) RETURN t.name ORDER BY t.name",
	};
	for (size_t i = 0; i < 2; i++) {
		struct commits k = {.label = i ? "Tag2" : "Tag"};
		ck_assert_int_eq(run(q[i], &k, NULL, 0, &e), 0);
		ck_assert_int_eq(k.n, 4);
		char out[128];
		ck_assert_int_eq(run(check[i], NULL, out, sizeof out, &e), 0);
		ck_assert_str_eq(out, "a;b;c;d;e;f;g;h;");
	}
}
END_TEST

/* An outer row's node that a chunk deleted is an error to read whole,
 * not a crash (a map projection dereferenced NULL); type() and
 * startNode() of a deleted relationship answer or raise, never crash. */
START_TEST(outer_reads_of_deleted_entities)
{
	struct qry_error e;
	const char *q[] = {
	    "MATCH (n:DelX) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS "
	    "OF 1 ROWS RETURN n {.*} AS m",
	    "MATCH ()-[r:DelY]->() CALL { WITH r DELETE r } IN TRANSACTIONS "
	    "OF 1 ROWS RETURN type(r) AS t",
	    "MATCH ()-[r:DelY]->() CALL { WITH r DELETE r } IN TRANSACTIONS "
	    "OF 1 ROWS RETURN startNode(r) AS s",
	};
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		ck_assert_int_eq(run("CREATE (:DelX {a: 1})-[:DelY]->(:DelX)",
		                     NULL, NULL, 0, &e),
		                 0);
		struct commits k = {.label = "DelX"};
		char out[256];
		int rc = run(q[i], &k, out, sizeof out, &e);
		/* the relationship's type and ends may still be known from
		 * the chunk that deleted it; its properties are not */
		ck_assert_msg(rc == LORA_ENOTFOUND || (i > 0 && rc == 0),
		              "%s: %d %s", q[i], rc, e.message);
		if (rc)
			ck_assert_ptr_nonnull(
			    strstr(e.message, "DeletedEntityAccess"));
		ck_assert_int_eq(
		    run("MATCH (n:DelX) DETACH DELETE n", NULL, NULL, 0, &e),
		    0);
	}
}
END_TEST

/* A scan that feeds IN TRANSACTIONS sees the nodes there were when it
 * started, not those its own chunks create (the streamed label scan went
 * on over each chunk's new view: 45,149 chunks in 3 s). */
START_TEST(scan_input_is_fixed)
{
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 6) AS i CREATE (:P {id: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	struct qry_limits l;
	qry_limits_init(&l);
	l.time_ms_max = 10000;
	struct commits k = {.label = "P"};
	ck_assert_int_eq(run_lim("MATCH (n:P) CALL { WITH n CREATE (:P {id: "
	                         "n.id + 100}) } IN TRANSACTIONS OF 2 ROWS",
	                         &k, &l, 0, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(k.n, 3);
	ck_assert_int_eq(count_label("P"), 12);
	struct commits q = {.label = "Q"};
	ck_assert_int_eq(run_lim("MATCH (n) CALL { WITH n CREATE (:Q) } IN "
	                         "TRANSACTIONS OF 5 ROWS",
	                         &q, &l, 0, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(count_label("Q"), 12);
}
END_TEST

/* The outer MATCH's nodes keep their full check in every chunk (its
 * candidates were found on the view it opened on, and chunks commit
 * between its steps): a node listed by id of another label, or one an
 * earlier chunk deleted (found by id or by a scan of its label), is not
 * matched. */
START_TEST(id_seek_checks_labels_in_every_chunk)
{
	struct qry_error e;
	char out[256];
	ck_assert_int_eq(run("UNWIND range(1, 6) AS i CREATE (:Ip {i: i}), "
	                     "(:Iq {i: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(run("MATCH (n) WHERE n:Ip OR n:Iq "
	                     "RETURN collect(id(n))",
	                     NULL, out, sizeof out, &e),
	                 0);
	/* every id, of both labels: "[a,b,...];" */
	char q[512];
	out[strlen(out) - 1] = '\0';
	struct qry_limits l;
	qry_limits_init(&l);
	l.time_ms_max = 10000;
	struct commits k = {.label = "Ip"};
	snprintf(q, sizeof q,
	         "MATCH (n:Ip) WHERE id(n) IN %s CALL { WITH n SET n.hit = 1 "
	         "} IN TRANSACTIONS OF 1 ROW",
	         out);
	ck_assert_int_eq(run_lim(q, &k, &l, 0, NULL, 0, &e), 0);
	ck_assert_int_eq(run("MATCH (n) WHERE n.hit = 1 RETURN count(n), "
	                     "sum(CASE WHEN n:Ip THEN 1 ELSE 0 END)",
	                     NULL, out + 200, 56, &e),
	                 0);
	ck_assert_str_eq(out + 200, "6,6;");
	/* a chunk deletes a later candidate: it is not matched again */
	ck_assert_int_eq(run("MATCH (n:Ip) RETURN collect(id(n))", NULL, out,
	                     sizeof out, &e),
	                 0);
	out[strlen(out) - 1] = '\0';
	struct commits d = {.label = "Ip"};
	snprintf(q, sizeof q,
	         "MATCH (n:Ip) WHERE id(n) IN %s CALL { WITH n "
	         "MATCH (m:Ip) WHERE m.i = n.i + 1 DETACH DELETE m } "
	         "IN TRANSACTIONS OF 1 ROW",
	         out);
	ck_assert_int_eq(run_lim(q, &d, &l, 0, NULL, 0, &e), 0);
	/* 1 deletes 2, 3 deletes 4, 5 deletes 6 */
	ck_assert_int_eq(count_label("Ip"), 3);
	/* the same with a scan of the label: a node an earlier chunk
	 * deleted is not matched (reading its i would fail the statement) */
	ck_assert_int_eq(run("UNWIND range(1, 6) AS i CREATE (:Is {i: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	struct commits sc = {.label = "Is"};
	ck_assert_int_eq(run_lim("MATCH (n:Is) CALL { WITH n MATCH (m:Is) "
	                         "WHERE m.i = n.i + 1 DETACH DELETE m } "
	                         "IN TRANSACTIONS OF 1 ROW",
	                         &sc, &l, 0, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(count_label("Is"), 3);
	/* and with no label at all (the pattern would not load the node) */
	ck_assert_int_eq(run("UNWIND range(1, 6) AS i CREATE (:Iu {i: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(run("MATCH (n:Iu) RETURN collect(id(n))", NULL, out,
	                     sizeof out, &e),
	                 0);
	out[strlen(out) - 1] = '\0';
	struct commits u = {.label = "Iu"};
	snprintf(q, sizeof q,
	         "MATCH (n) WHERE id(n) IN %s CALL { WITH n "
	         "MATCH (m:Iu) WHERE m.i = n.i + 1 DETACH DELETE m } "
	         "IN TRANSACTIONS OF 1 ROW",
	         out);
	ck_assert_int_eq(run_lim(q, &u, &l, 0, NULL, 0, &e), 0);
	ck_assert_int_eq(count_label("Iu"), 3);
}
END_TEST

/* A chunk's MATCH by an exact index seek ({id: v} on the indexed label)
 * binds stored nodes without loading them, as outside IN TRANSACTIONS
 * (exec.c match_open): the KNOWS load of bench_loadcsv.sh reads no node
 * record. A cursor of the outer query, whose candidates outlive a chunk
 * commit, still reads each from the view of its turn: a node an earlier
 * chunk deleted is not matched. */
START_TEST(chunk_seeks_load_no_node)
{
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 50) AS i CREATE (:S {id: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (s:S) ON (s.id)", NULL, NULL, 0, &e), 0);
	struct commits k = {0};
	uint64_t l0 = g_loads_total();
	ck_assert_int_eq(run("UNWIND range(1, 40) AS i CALL { WITH i "
	                     "MATCH (a:S {id: i}), (b:S {id: 51 - i}) "
	                     "CREATE (a)-[:K]->(b) } IN TRANSACTIONS OF 10 "
	                     "ROWS",
	                     &k, NULL, 0, &e),
	                 0);
	ck_assert_uint_eq(g_loads_total() - l0, 0);
	ck_assert_int_eq(k.n, 4);
	char out[64];
	ck_assert_int_eq(run("MATCH (a:S)-[:K]->(b:S) WHERE a.id + b.id = 51 "
	                     "RETURN count(*)",
	                     NULL, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "40;");
	/* outer candidates: the first chunk deletes both nodes the outer
	 * seek found; the second is not handed out */
	ck_assert_int_eq(
	    run("CREATE (:S {id: 60}), (:S {id: 60})", NULL, NULL, 0, &e), 0);
	struct commits d = {0};
	ck_assert_int_eq(run("MATCH (a:S {id: 60}) CALL { WITH a MATCH (b:S "
	                     "{id: 60}) DETACH DELETE b } IN TRANSACTIONS OF "
	                     "1 ROW RETURN count(*)",
	                     &d, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;");
	ck_assert_int_eq(d.n, 1);
}
END_TEST

/* The seek cache (graph.c): over chunks that only create relationships,
 * a value is sought in the stored index once; a chunk that creates,
 * changes or deletes nodes, or another write applied between two chunks,
 * drops it, and the next chunk finds what they did. */
START_TEST(seek_cache_follows_commits)
{
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 10) AS i CREATE (:C {id: i, "
	                     "s: 'c' + i})",
	                     NULL, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (c:C) ON (c.id)", NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (c:C) ON (c.s)", NULL, NULL, 0, &e), 0);
	/* 60 rows over 6 chunks seek 3 integer and 3 string values */
	struct commits k = {0};
	uint64_t s0 = g_index_seeks_total();
	ck_assert_int_eq(run("UNWIND range(0, 59) AS i CALL { WITH i "
	                     "MATCH (a:C {id: i % 3 + 1}), (b:C {s: 'c' + "
	                     "(i % 3 + 4)}) CREATE (a)-[:E]->(b) } IN "
	                     "TRANSACTIONS OF 10 ROWS",
	                     &k, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(k.n, 6);
	ck_assert_uint_eq(g_index_seeks_total() - s0, 6);
	char out[128];
	ck_assert_int_eq(run("MATCH (a:C)-[:E]->(b:C) WHERE b.id = a.id + 3 "
	                     "RETURN count(*)",
	                     NULL, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "60;");
	/* a chunk that creates the value sought: the next one finds it */
	struct commits g = {0};
	ck_assert_int_eq(run("UNWIND range(1, 3) AS i CALL { WITH i MATCH (a:C "
	                     "{id: 1}) CREATE (:C {id: 1}) RETURN count(*) AS "
	                     "n } IN TRANSACTIONS OF 1 ROW RETURN n",
	                     &g, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;2;4;");
	/* a chunk that changes a property, or deletes, likewise */
	ck_assert_int_eq(run("UNWIND [2, 2] AS i CALL { WITH i MATCH (a:C {id: "
	                     "i}) SET a.id = 20 RETURN count(*) AS n } IN "
	                     "TRANSACTIONS OF 1 ROW RETURN n",
	                     &g, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;0;");
	ck_assert_int_eq(run("UNWIND [3, 3] AS i CALL { WITH i MATCH (a:C {s: "
	                     "'c' + i}) DETACH DELETE a RETURN count(*) AS n } "
	                     "IN TRANSACTIONS OF 1 ROW RETURN n",
	                     &g, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;0;");
	/* another write between two edge-only chunks (a node's writer
	 * runs IN TRANSACTIONS alone, so not when pipelined: there chunk 2
	 * ran before the write was made) */
	struct commits w = {.sneak = "CREATE (:C {id: 7})"};
	ck_assert_int_eq(
	    run("UNWIND [7, 7] AS i CALL { WITH i MATCH (a:C {id: "
	        "i}), (b:C {id: 8}) CREATE (a)-[:F]->(b) RETURN "
	        "count(*) AS n } IN TRANSACTIONS OF 1 ROW RETURN n",
	        &w, out, sizeof out, &e),
	    0);
	ck_assert_str_eq(out, pipelined == 1 ? "1;1;" : "1;2;");
}
END_TEST

/* The seek cache is an aid: a load over many distinct values that fits
 * in a small statement limit without it still runs under that limit
 * (the cache keeps to an eighth of it, graph.c sc_room). */
START_TEST(seek_cache_keeps_to_its_share)
{
	struct qry_error e;
	ck_assert_int_eq(run("UNWIND range(1, 30000) AS i CREATE (:Q {id: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (q:Q) ON (q.id)", NULL, NULL, 0, &e), 0);
	struct qry_limits l;
	qry_limits_init(&l);
	/* pipelined, the chunks in flight laid over the view take their
	 * share as well (~330 KB for 500 relationships) */
	l.mem_bytes_max = pipelined ? (4u << 20) + (1u << 19) : 4u << 20;
	struct commits k = {0};
	int rc = run_lim("UNWIND range(1, 30000) AS i CALL { WITH i "
	                 "MATCH (a:Q {id: i}), (b:Q {id: 30001 - i}) "
	                 "CREATE (a)-[:QQ]->(b) } IN TRANSACTIONS OF 500 ROWS",
	                 &k, &l, 0, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(k.n, 60);
	char out[64];
	ck_assert_int_eq(run("MATCH (:Q)-[r:QQ]->(:Q) RETURN count(r)", NULL,
	                     out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "30000;");
}
END_TEST

START_TEST(failing_chunk_keeps_earlier)
{
	struct commits k = {.label = "Q"};
	struct qry_error e;
	int rc = run("UNWIND range(1, 30) AS i CALL { WITH i "
	             "CREATE (:Q {v: 10 / (i - 25)}) } IN TRANSACTIONS OF 10 "
	             "ROWS",
	             &k, NULL, 0, &e);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(e.message, "20 input rows in 2 transactions "
	                                "committed"),
	              "%s", e.message);
	ck_assert_int_eq(k.n, 2);
	ck_assert_int_eq(count_label("Q"), 20);
}
END_TEST

/* An error of the input, not of a chunk (the outer query's expression, a
 * bad CSV row), after chunks committed says how many, as a failing chunk
 * does (it said nothing, and a user who fixed the input and ran it again
 * created those rows twice); before any chunk ran it is the input's error
 * alone. */
START_TEST(failing_input_keeps_earlier)
{
	struct commits k = {.label = "IE"};
	struct qry_error e;
	int rc = run("UNWIND [1, 2, 3, 4, 5, 6, 7, 0, 9] AS i WITH 10 / i AS x "
	             "CALL { WITH x CREATE (:IE {x: x}) } IN TRANSACTIONS OF 3 "
	             "ROWS",
	             &k, NULL, 0, &e);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(e.message, "by zero") &&
	                  strstr(e.message, "6 input rows in 2 transactions "
	                                    "committed before the input "
	                                    "failed"),
	              "%s", e.message);
	ck_assert_int_eq(count_label("IE"), 6);
	rc = run("UNWIND [0, 1] AS i WITH 10 / i AS x CALL { WITH x CREATE "
	         "(:IE0 {x: x}) } IN TRANSACTIONS OF 1 ROW",
	         NULL, NULL, 0, &e);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(e.message, "by zero") &&
	                  !strstr(e.message, "IN TRANSACTIONS"),
	              "%s", e.message);
	char imp[400];
	import_file(imp, sizeof imp, "rows.csv",
	            "id\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n\"11\"x\n12\n");
	imp_dir = imp;
	struct commits k2 = {.label = "IC"};
	rc = run("LOAD CSV WITH HEADERS FROM 'file:///rows.csv' AS r CALL { "
	         "WITH r CREATE (:IC {id: toInteger(r.id)}) } IN TRANSACTIONS "
	         "OF 3 ROWS",
	         &k2, NULL, 0, &e);
	imp_dir = NULL;
	ck_assert_int_eq(rc, LORA_EINVAL);
	ck_assert_msg(strstr(e.message, "line 12") &&
	                  strstr(e.message, "9 input rows in 3 transactions "
	                                    "committed"),
	              "%s", e.message);
	ck_assert_int_eq(count_label("IC"), 9);
}
END_TEST

/* The time limit running out says what committed wherever the engine
 * notices it: in a chunk, in the input's pull, or in the statement's own
 * pull of the IntX operator's rows (that one said nothing and left the
 * chunk in flight unlanded; found by review s22-a), and exactly those
 * rows stay. Twenty limits, so the deadline falls in each place. */
START_TEST(time_limit_says_what_committed)
{
	int64_t before = 0;
	for (int i = 0; i < 20; i++) {
		struct qry_limits l;
		qry_limits_init(&l);
		l.time_ms_max = 5 + (uint64_t)i * 3;
		struct commits k = {.label = "TL"};
		struct qry_error e;
		int rc = run_lim("UNWIND range(1, 1000000000) AS i CALL { WITH "
		                 "i CREATE (:TL {i: i}) } IN TRANSACTIONS OF 7 "
		                 "ROWS RETURN count(*) AS n",
		                 &k, &l, 0, NULL, 0, &e);
		ck_assert_int_eq(rc, LORA_ETIMEOUT);
		const char *p = strstr(e.message, "IN TRANSACTIONS: ");
		long long rows = -1;
		if (p)
			sscanf(p, "IN TRANSACTIONS: %lld input rows in", &rows);
		ck_assert_msg(
		    rows >= 0 &&
		        strstr(e.message, "transactions committed before"),
		    "limit %d ms: %s", 5 + i * 3, e.message);
		int64_t now = count_label("TL");
		ck_assert_msg(now - before == rows,
		              "limit %d ms: %lld rows said, %lld stored: %s",
		              5 + i * 3, rows, (long long)(now - before),
		              e.message);
		before = now;
	}
}
END_TEST

/* An input error raised inside an index seek (the view's seek iterator
 * lent) while a chunk is in flight: the iterator goes before the chunk is
 * landed, which closes the view (the node aborted on the view's "seek
 * lent" assertion; found by review s18-d) */
START_TEST(input_error_in_seek_lands_chunk)
{
	struct qry_error e;
	struct commits k0 = {.label = "R"};
	ck_assert_int_eq(run("UNWIND range(1, 200000) AS i CALL { WITH i "
	                     "CREATE (:R {x: 0}) } IN TRANSACTIONS OF 20000 "
	                     "ROWS",
	                     &k0, NULL, 0, &e),
	                 0);
	ck_assert_int_eq(run("CREATE (:R {x: 1})", NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (r:R) ON (r.x)", NULL, NULL, 0, &e), 0);
	struct qry_limits l;
	qry_limits_init(&l);
	l.mem_bytes_max = 2u << 20;
	struct commits k = {.label = "Z"};
	int rc = run_lim("UNWIND [1, 0] AS t MATCH (r:R {x: t}) CALL { WITH r "
	                 "CREATE (:Z) } IN TRANSACTIONS OF 1 ROWS",
	                 &k, &l, 0, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EMEMORY);
	ck_assert_msg(strstr(e.message, "1 input rows in 1 transactions "
	                                "committed before the input failed"),
	              "%s", e.message);
	ck_assert_int_eq(count_label("Z"), 1);
}
END_TEST

/* ON ERROR CONTINUE: a chunk that fails is rolled back and the next one
 * runs; its rows come out with the subquery's columns null */
START_TEST(on_error_continue)
{
	struct commits k = {.label = "C"};
	struct qry_error e;
	char out[512];
	ck_assert_int_eq(run("UNWIND [1, 2, 0, 5, 0] AS i CALL { WITH i "
	                     "CREATE (:C {v: 10 / i}) } IN TRANSACTIONS OF 1 "
	                     "ROW ON ERROR CONTINUE RETURN i",
	                     &k, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;2;0;5;0;");
	ck_assert_int_eq(k.n, 3);
	ck_assert_int_eq(count_label("C"), 3);
	ck_assert_int_eq(run("MATCH (n:C) RETURN n.v ORDER BY n.v", NULL, out,
	                     sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "2;5;10;");
	/* with RETURN and REPORT STATUS: a failed chunk's rows are null and
	 * its status says why; the chunk of two rows fails as a whole */
	struct commits r = {.label = "C2"};
	ck_assert_int_eq(
	    run("UNWIND [1, 2, 0, 4, 5] AS i CALL { WITH i CREATE (n:C2 {v: "
	        "20 / i}) RETURN n.v AS v } IN TRANSACTIONS OF 2 ROWS ON "
	        "ERROR CONTINUE REPORT STATUS AS s RETURN i, v, s.started, "
	        "s.committed, s.transactionId, s.errorMessage CONTAINS "
	        "'zero' AS why",
	        &r, out, sizeof out, &e),
	    0);
	ck_assert_str_eq(out, "1,20,true,true,1,null;"
	                      "2,10,true,true,1,null;"
	                      "0,null,true,false,2,true;"
	                      "4,null,true,false,2,true;"
	                      "5,4,true,true,3,null;");
	ck_assert_int_eq(r.n, 2);
	ck_assert_int_eq(count_label("C2"), 3);
	/* a uniqueness violation is the chunk's own error too */
	ck_assert_int_eq(run("CREATE CONSTRAINT cu FOR (u:CU) REQUIRE u.id IS "
	                     "UNIQUE",
	                     NULL, NULL, 0, &e),
	                 0);
	struct commits u = {.label = "CU"};
	ck_assert_int_eq(run("UNWIND [1, 2, 1, 3] AS i CALL { WITH i CREATE "
	                     "(:CU {id: i}) } IN TRANSACTIONS OF 1 ROW ON "
	                     "ERROR CONTINUE REPORT STATUS AS s WITH i, s "
	                     "WHERE NOT s.committed RETURN i, s.errorMessage "
	                     "IS NOT NULL",
	                     &u, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,true;");
	ck_assert_int_eq(count_label("CU"), 3);
}
END_TEST

/* What a chunk must see of the one before it, whether that one is
 * committed or still in flight (the pipelined modes): a duplicate
 * against it, a relationship it made, and a second IN TRANSACTIONS
 * clause of the same statement reading the first one's writes. */
START_TEST(chunk_sees_the_one_in_flight)
{
	struct qry_error e;
	char out[256];
	ck_assert_int_eq(run("CREATE CONSTRAINT du FOR (u:DU) REQUIRE u.id IS "
	                     "UNIQUE",
	                     NULL, NULL, 0, &e),
	                 0);
	struct commits k = {.label = "DU"};
	ck_assert_int_eq(run("UNWIND [1, 1, 2] AS i CALL { WITH i CREATE (:DU "
	                     "{id: i}) } IN TRANSACTIONS OF 1 ROW ON ERROR "
	                     "CONTINUE REPORT STATUS AS s RETURN i, "
	                     "s.committed",
	                     &k, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,true;1,false;2,true;");
	ck_assert_int_eq(count_label("DU"), 2);
	/* chunk 1 connects x and y, chunk 2 deletes x without DETACH */
	ck_assert_int_eq(run("CREATE (:XX), (:YY)", NULL, NULL, 0, &e), 0);
	struct commits d = {0};
	ck_assert_int_eq(
	    run("UNWIND [1, 2] AS k CALL { WITH k MATCH (x:XX), (y:YY) "
	        "FOREACH (_ IN CASE WHEN k = 1 THEN [1] ELSE [] END | CREATE "
	        "(x)-[:E]->(y)) FOREACH (_ IN CASE WHEN k = 2 THEN [1] ELSE "
	        "[] END | DELETE x) } IN TRANSACTIONS OF 1 ROW ON ERROR "
	        "CONTINUE REPORT STATUS AS s RETURN k, s.committed",
	        &d, out, sizeof out, &e),
	    0);
	ck_assert_str_eq(out, "1,true;2,false;");
	ck_assert_int_eq(run("MATCH (:XX)-[r:E]->(:YY) RETURN count(r)", NULL,
	                     out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1;");
	/* two IN TRANSACTIONS clauses: the second reads the first's writes */
	struct commits t = {.label = "T1"};
	int rc = run("UNWIND [1, 2, 3] AS i CALL { WITH i CREATE (:T1 {i: i}) "
	             "} IN TRANSACTIONS OF 1 ROW WITH i CALL { WITH i MATCH "
	             "(t:T1) RETURN count(t) AS n } IN TRANSACTIONS OF 1 ROW "
	             "RETURN i, n",
	             &t, out, sizeof out, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_str_eq(out, "1,1;2,2;3,3;");
	ck_assert_int_eq(count_label("T1"), 3);
}
END_TEST

/* ON ERROR BREAK: after the failing chunk none runs; the rest of the
 * input still comes out, with nulls and started = false */
START_TEST(on_error_break)
{
	struct commits k = {.label = "B"};
	struct qry_error e;
	char out[512];
	ck_assert_int_eq(
	    run("UNWIND [1, 2, 0, 4, 5, 6] AS i CALL { WITH i CREATE (n:B "
	        "{v: 12 / i}) RETURN n.v AS v } IN TRANSACTIONS OF 2 ROWS ON "
	        "ERROR BREAK REPORT STATUS AS s RETURN i, v, s.started, "
	        "s.committed, s.transactionId",
	        &k, out, sizeof out, &e),
	    0);
	ck_assert_str_eq(out, "1,12,true,true,1;2,6,true,true,1;"
	                      "0,null,true,false,2;4,null,true,false,2;"
	                      "5,null,false,false,null;"
	                      "6,null,false,false,null;");
	ck_assert_int_eq(k.n, 1);
	ck_assert_int_eq(count_label("B"), 2);
}
END_TEST

/* What ON ERROR does not cover: a commit that fails (its outcome may be
 * unknown), the statement's own time, errors of the input itself; and
 * REPORT STATUS only goes with CONTINUE or BREAK */
/* Runs UNWIND range(1, rows) AS i CALL { WITH i CREATE (:<k->label>
 * <props>) } IN TRANSACTIONS OF 2 ROWS with the faults k sets up, and
 * checks its code, the nodes it left, and its message: each of has (a
 * leading '!': not there), never "may still commit". */
static void landing_case(struct commits *k, int rows, const char *props,
                         int code, int64_t count, const char *const *has)
{
	char q[256];
	snprintf(q, sizeof q,
	         "UNWIND range(1, %d) AS i CALL { WITH i CREATE (:%s %s) } IN "
	         "TRANSACTIONS OF 2 ROWS",
	         rows, k->label, props);
	struct qry_error e;
	int rc = run(q, k, NULL, 0, &e);
	ck_assert_msg(rc == code, "%s: %d %s", k->label, rc, e.message);
	ck_assert_msg(!code || !strstr(e.message, "may still commit"), "%s",
	              e.message);
	for (; has && *has; has++)
		ck_assert_msg(**has == '!' ? !strstr(e.message, *has + 1)
		                           : strstr(e.message, *has) != NULL,
		              "%s: %s", *has, e.message);
	ck_assert_int_eq(count_label(k->label), count);
}

START_TEST(on_error_limits)
{
	struct qry_error e;
	struct commits k = {.label = "LF", .refuse_at = 2};
	int rc = run("UNWIND range(1, 5) AS i CALL { WITH i CREATE (:LF) } IN "
	             "TRANSACTIONS OF 2 ROWS ON ERROR CONTINUE",
	             &k, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EUNAVAILABLE);
	ck_assert_msg(strstr(e.message, "2 input rows in 1 transactions"), "%s",
	              e.message);
	ck_assert_int_eq(count_label("LF"), 2);
	/* an error in the input (not in a chunk) ends the statement */
	struct commits in = {.label = "LF2"};
	rc = run("UNWIND [1, 2, 0] AS i WITH 10 / i AS x CALL { WITH x CREATE "
	         "(:LF2 {x: x}) } IN TRANSACTIONS OF 1 ROW ON ERROR CONTINUE",
	         &in, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EARITH);
	ck_assert_int_eq(count_label("LF2"), 2);
	/* a commit refused with what would be a chunk's own error code
	 * still ends the statement: the chunk was being committed */
	struct commits rf = {
	    .label = "LF3", .refuse_at = 2, .refuse_code = LORA_ECONSTRAINT};
	rc = run("UNWIND range(1, 6) AS i CALL { WITH i CREATE (:LF3) } IN "
	         "TRANSACTIONS OF 2 ROWS ON ERROR CONTINUE",
	         &rf, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_ECONSTRAINT);
	ck_assert_int_eq(count_label("LF3"), 2);
	/* a wait that does not learn the outcome of the chunk before a
	 * failing one (pipelined): the statement says so, with the code of
	 * an unknown outcome, and counts only what it knows committed */
	if (pipelined) {
		struct commits uo = {.label = "LF5", .unknown_at = 2};
		rc = run("UNWIND range(1, 8) AS i CALL { WITH i CREATE (:LF5 "
		         "{v: 10 / (i - 5)}) } IN TRANSACTIONS OF 2 ROWS",
		         &uo, NULL, 0, &e);
		ck_assert_int_eq(rc, LORA_EUNKNOWN_OUTCOME);
		ck_assert_msg(strstr(e.message, "may still commit") &&
		                  strstr(e.message, "2 input rows in 1 "
		                                    "transactions"),
		              "%s", e.message);
		/* chunk 3 fails; chunk 2, in flight then, did commit (the
		 * test applied it) though the statement could not know */
		ck_assert_int_eq(count_label("LF5"), 4);
	}
	/* a chunk whose answer was lost, and the next one committed: it
	 * committed too (the log keeps their order), so it counts; at the
	 * statement's end, every chunk committed and the statement did */
	if (pipelined) {
		static const char *const four[] = {
		    "4 input rows in 2 transactions", NULL};
		landing_case(&(struct commits){.label = "LF7", .unknown_at = 1},
		             8, "{v: 10 / (i - 5)}", LORA_EARITH, 4, four);
		landing_case(&(struct commits){.label = "LF8", .unknown_at = 1},
		             4, "", 0, 4, NULL);
		/* mid-statement, the lost answer is the statement's own
		 * error: it stops there, and says the chunk committed */
		static const char *const late[] = {
		    "came late", "4 input rows in 2 transactions", NULL};
		landing_case(&(struct commits){.label = "LF9", .unknown_at = 1},
		             6, "", LORA_EUNKNOWN_OUTCOME, 4, late);
	}
	/* a chunk applied where no view could be opened after it: the
	 * statement stops with that error, and counts the chunk, the one
	 * before it and the one in flight with it (both committed) */
	if (pipelined) {
		static const char *const six[] = {
		    "cannot open a read view", "6 input rows in 3 transactions",
		    NULL};
		landing_case(&(struct commits){.label = "LF10", .noview_at = 2},
		             10, "", LORA_EIO, 6, six);
		/* the same while the statement already fails: the chunk
		 * counts, and is not said not to have committed */
		static const char *const failing[] = {
		    "6 input rows in 3 transactions", "no read view could be",
		    "!did not commit", NULL};
		landing_case(&(struct commits){.label = "LF11", .noview_at = 2},
		             10, "{v: 10 / (i - 7)}", LORA_EARITH, 6, failing);
		/* a lost answer, then the next chunk committed without a
		 * view: both committed, and the view's error is the
		 * statement's, not an unknown outcome; mid-statement (LF12)
		 * and as the input ends (the last chunks landed, LF13) */
		static const char *const proved[] = {
		    "came late", "cannot open a read view",
		    "4 input rows in 2 transactions", NULL};
		landing_case(&(struct commits){.label = "LF12",
		                               .unknown_at = 1,
		                               .noview_at = 2},
		             10, "", LORA_EIO, 4, proved);
		landing_case(&(struct commits){.label = "LF13",
		                               .unknown_at = 1,
		                               .noview_at = 2},
		             4, "", LORA_EIO, 4, proved + 1);
	}
	/* a chunk refused at apply while the next is in flight (the
	 * writer's order): the next one, proposed over it, is refused by
	 * apply too (after_index), nothing of either commits, and the
	 * statement says so */
	if (pipelined == 1) {
		struct commits rj = {.label = "LF6", .reject_at = 2};
		rc = run("UNWIND range(1, 10) AS i CALL { WITH i CREATE (:LF6) "
		         "} IN TRANSACTIONS OF 2 ROWS",
		         &rj, NULL, 0, &e);
		ck_assert_int_ne(rc, 0);
		ck_assert_int_ne(rc, LORA_EUNKNOWN_OUTCOME);
		ck_assert_msg(strstr(e.message, "2 input rows in 1 "
		                                "transactions") &&
		                  strstr(e.message, "which was refused"),
		              "%s", e.message);
		ck_assert_int_eq(count_label("LF6"), 2);
	}
	/* two IN TRANSACTIONS clauses, the first failing: its error says
	 * once what committed (the second's input, the first, raised it) */
	{
		struct commits two = {.label = "LF14"};
		rc = run("UNWIND range(1, 4) AS i CALL { WITH i CREATE (:LF14 "
		         "{v: 10 / (i - 3)}) } IN TRANSACTIONS OF 1 ROW WITH i "
		         "CALL { WITH i CREATE (:LF14b) } IN TRANSACTIONS OF 1 "
		         "ROW",
		         &two, NULL, 0, &e);
		ck_assert_int_eq(rc, LORA_EARITH);
		const char *first = strstr(e.message, "committed before");
		ck_assert_msg(first && !strstr(first + 1, "committed before"),
		              "%s", e.message);
	}
	/* a missing parameter would fail every chunk: it ends the statement */
	struct commits mp = {.label = "LF4"};
	rc = run("UNWIND range(1, 4) AS i CALL { WITH i CREATE (:LF4 {v: "
	         "$nope}) } IN TRANSACTIONS OF 1 ROW ON ERROR CONTINUE",
	         &mp, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EPARAMS);
	ck_assert_int_eq(count_label("LF4"), 0);
	static const char *bad[] = {
	    "UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN TRANSACTIONS "
	    "REPORT STATUS AS s RETURN s",
	    "UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN TRANSACTIONS ON "
	    "ERROR FAIL REPORT STATUS AS s RETURN s",
	    "UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN TRANSACTIONS ON "
	    "ERROR CONTINUE REPORT STATUS AS i RETURN i",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct commits z = {0};
		ck_assert_msg(run(bad[i], &z, NULL, 0, &e) == LORA_ESEMANTIC,
		              "%s: %s", bad[i], e.message);
		ck_assert_int_eq(z.n, 0);
	}
	ck_assert_ptr_nonnull(strstr(e.message, "VariableAlreadyBound"));
	struct commits z = {0};
	ck_assert_int_eq(run("UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN "
	                     "TRANSACTIONS ON ERROR RETRY",
	                     &z, NULL, 0, &e),
	                 LORA_EPARSE);
	ck_assert_msg(strstr(e.message, "RETRY"), "%s", e.message);
}
END_TEST

START_TEST(subquery_rows)
{
	struct commits k = {0};
	struct qry_error e;
	char out[256];
	ck_assert_int_eq(run("UNWIND range(1, 5) AS i CALL { WITH i "
	                     "CREATE (n:R {id: i}) RETURN n } IN TRANSACTIONS "
	                     "OF 2 ROWS RETURN i, n.id * 10 AS x",
	                     &k, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,10;2,20;3,30;4,40;5,50;");
	ck_assert_int_eq(k.n, 3);
	/* nodes handed out are read from the view of the last commit */
	ck_assert_int_eq(run("UNWIND [7] AS i CALL { WITH i CREATE (n:R {id: "
	                     "i}) RETURN n } IN TRANSACTIONS RETURN n.id, "
	                     "labels(n)",
	                     &k, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "7,['R'];");
}
END_TEST

START_TEST(placement_errors)
{
	struct commits k = {0};
	struct qry_error e;
	static const char *bad[] = {
	    "CALL { CALL { CREATE (:X) } IN TRANSACTIONS } IN TRANSACTIONS",
	    "UNWIND [1] AS i CALL { WITH i CALL { CREATE (:X) } IN "
	    "TRANSACTIONS RETURN 1 AS y } RETURN y",
	    "CALL { CREATE (:X) } IN TRANSACTIONS RETURN 1 AS a UNION "
	    "RETURN 2 AS a",
	    "CREATE (:Y) WITH 1 AS x CALL { CREATE (:X) } IN TRANSACTIONS",
	    "UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN TRANSACTIONS "
	    "CREATE (:Y)",
	    "MATCH (n) WHERE EXISTS { CALL { CREATE (:X) } IN TRANSACTIONS } "
	    "RETURN n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = run(bad[i], &k, NULL, 0, &e);
		ck_assert_msg(rc == LORA_ESEMANTIC || rc == LORA_EPARSE,
		              "%s: rc %d %s", bad[i], rc, e.message);
	}
	ck_assert_int_eq(k.n, 0);
	ck_assert_int_eq(count_label("X"), 0);
	/* syntax */
	ck_assert_int_eq(
	    run("CALL { CREATE (:X) } IN TRANSACTIONS OF 5", &k, NULL, 0, &e),
	    LORA_EPARSE);
	ck_assert_int_eq(run("CALL { CREATE (:X) } IN TRANSACTIONS ON ERROR "
	                     "SKIP",
	                     &k, NULL, 0, &e),
	                 LORA_EPARSE);
	ck_assert_msg(strstr(e.message, "CONTINUE, BREAK or FAIL"), "%s",
	              e.message);
	/* OF 0 and OF -1 both: the count must be positive */
	const char *nonpos[] = {"0", "-1", "-9223372036854775808"};
	for (size_t i = 0; i < sizeof nonpos / sizeof nonpos[0]; i++) {
		char q[128];
		snprintf(q, sizeof q,
		         "UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN "
		         "TRANSACTIONS OF %s ROWS",
		         nonpos[i]);
		ck_assert_int_eq(run(q, &k, NULL, 0, &e), LORA_ESEMANTIC);
		ck_assert_msg(strstr(e.message, "OF n ROWS must be positive"),
		              "OF %s: %s", nonpos[i], e.message);
	}
	/* the same words for a parameter's value (it said "must not be
	 * negative" for -1) */
	const int64_t pnonpos[] = {0, -1, INT64_MIN};
	for (size_t i = 0; i < sizeof pnonpos / sizeof pnonpos[0]; i++) {
		Lora__Value v;
		Lora__MapEntry me, *mep;
		Lora__ValueMap m;
		lora__value__init(&v);
		v.kind_case = LORA__VALUE__KIND_INT_VALUE;
		v.int_value = pnonpos[i];
		run_params = param_n(&m, &mep, &me, &v);
		int prc = run("UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN "
		              "TRANSACTIONS OF $n ROWS",
		              &k, NULL, 0, &e);
		run_params = NULL;
		ck_assert_int_eq(prc, LORA_ESEMANTIC);
		ck_assert_msg(
		    strstr(e.message, "InvalidArgumentType: OF n ROWS must be "
		                      "positive"),
		    "OF $n = %lld: %s", (long long)pnonpos[i], e.message);
	}
	/* no way to commit (no callback): refused before anything */
	int rc = run("UNWIND [1] AS i CALL { WITH i CREATE (:X) } IN "
	             "TRANSACTIONS",
	             NULL, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EINVAL);
	ck_assert_msg(strstr(e.message, "IN TRANSACTIONS"), "%s", e.message);
	ck_assert_int_eq(count_label("X"), 0);
	/* a subquery that only reads runs without commits */
	char out[64];
	ck_assert_int_eq(run("UNWIND [1, 2] AS i CALL { WITH i RETURN i * 2 "
	                     "AS j } IN TRANSACTIONS RETURN j",
	                     NULL, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "2;4;");
	/* qry_in_transactions tells the writer to run it alone */
	int yes;
	ck_assert_int_eq(qry_in_transactions("UNWIND [1] AS i CALL { WITH i "
	                                     "CREATE (:X) } IN TRANSACTIONS",
	                                     &yes, &e),
	                 0);
	ck_assert_int_eq(yes, 1);
	ck_assert_int_eq(qry_in_transactions("CALL { CREATE (:X) }", &yes, &e),
	                 0);
	ck_assert_int_eq(yes, 0);
}
END_TEST

/* The same 200,000 creations: whole, they need more than the limit;
 * in transactions of 1,000 rows, one chunk's memory. */
START_TEST(memory_is_one_chunk)
{
	struct qry_limits l;
	qry_limits_init(&l);
	l.mem_bytes_max = 24u << 20;
	struct qry_error e;
	int rc = run_lim("UNWIND range(1, 200000) AS i CREATE (:M {id: i})",
	                 NULL, &l, 0, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EMEMORY);
	ck_assert_int_eq(count_label("M"), 0);
	struct commits k = {0};
	rc = run_lim("UNWIND range(1, 200000) AS i CALL { WITH i CREATE (:M "
	             "{id: i}) } IN TRANSACTIONS",
	             &k, &l, 0, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(k.n, 200);
	ck_assert_int_eq(count_label("M"), 200000);
}
END_TEST

/* A chunk's memory per row is its rows' and writes', not the subquery's
 * operators, which are built again for every row (a few KB each; a
 * 10,000-row chunk of this statement needed 45-50 MiB when they stayed
 * until the chunk ended, about 20 MiB since). The shared budget is back
 * at zero after the statements, also a failed one and one whose constant
 * folding charged no budget (their chunks are reused). */
START_TEST(chunk_memory_per_row)
{
	struct qry_error e;
	ck_assert_int_eq(
	    run("CREATE INDEX FOR (w:W) ON (w.id)", NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(run("UNWIND range(0, 199) AS i CREATE (:W {id: i})",
	                     NULL, NULL, 0, &e),
	                 0);
	struct qry_budget b;
	qry_budget_init(&b, 1u << 30);
	struct qry_limits l;
	qry_limits_init(&l);
	l.mem_bytes_max = 32u << 20;
	l.shared = &b;
	struct commits k = {0};
	int rc = run_lim("UNWIND range(0, 9999) AS i CALL { WITH i "
	                 "MATCH (a:W {id: i % 200}), (b:W {id: (i * 7 + 3) % "
	                 "200}) CREATE (a)-[:R {i: i}]->(b) } "
	                 "IN TRANSACTIONS OF 10000 ROWS",
	                 &k, &l, 0, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(k.n, 1);
	ck_assert_int_eq(atomic_load(&b.used_bytes), 0);
	/* folded constants (range(1, 3)), rows of CALL run per row, then a
	 * failure in the second chunk */
	struct commits k2 = {0};
	rc = run_lim("UNWIND range(0, 2999) AS i CALL { WITH i "
	             "MATCH (a:W {id: i % 200}) WITH a, i, size(range(1, 3)) "
	             "AS three CREATE (a)-[:S {i: i / (2000 - i)}]->(a) } IN "
	             "TRANSACTIONS OF 1000 ROWS",
	             &k2, &l, 0, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_EARITH);
	ck_assert_int_eq(atomic_load(&b.used_bytes), 0);
}
END_TEST

START_TEST(too_big_names_the_way_out)
{
	struct qry_error e;
	/* bigger than one log entry (scaled down to 10 kB here) */
	int rc = run_lim("UNWIND range(1, 1000) AS i CREATE (:B {id: i})", NULL,
	                 NULL, 10000, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_ELIMIT);
	ck_assert_msg(strstr(e.message, "CALL { ... } IN TRANSACTIONS") &&
	                  strstr(e.message, "LOAD CSV"),
	              "%s", e.message);
	struct commits k = {.label = "B"};
	rc = run_lim("UNWIND range(1, 1000) AS i CALL { WITH i CREATE (:B "
	             "{id: i}) } IN TRANSACTIONS OF 100 ROWS",
	             &k, NULL, 10000, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_int_eq(k.n, 10);
	/* one chunk too big: the way out is a smaller OF n */
	rc = run_lim("UNWIND range(1, 1000) AS i CALL { WITH i CREATE (:B2 "
	             "{id: i}) } IN TRANSACTIONS OF 1000 ROWS",
	             &k, NULL, 10000, NULL, 0, &e);
	ck_assert_int_eq(rc, LORA_ELIMIT);
	ck_assert_msg(strstr(e.message, "smaller OF n ROWS"), "%s", e.message);
	/* the mutation limit says the same */
	struct qry_limits l;
	qry_limits_init(&l);
	l.mutations_max = 100;
	rc = run_lim("UNWIND range(1, 200) AS i CREATE (:Z)", NULL, &l, 0, NULL,
	             0, &e);
	ck_assert_int_eq(rc, LORA_ELIMIT);
	ck_assert_msg(strstr(e.message, "IN TRANSACTIONS"), "%s", e.message);
	struct commits z = {.label = "Z"};
	rc = run_lim("UNWIND range(1, 200) AS i CALL { WITH i CREATE (:Z) } "
	             "IN TRANSACTIONS OF 50 ROWS",
	             &z, &l, 0, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_int_eq(count_label("Z"), 200);
}
END_TEST

/* vector() of a CSV field: the coordinates are parsed in the statement's
 * scratch buffer, not in the chunk's arena, where room for one per two
 * bytes of the text (5 KB for a 128-d row) stayed until the chunk ended.
 * 2,000 rows of 128-d vectors in one chunk needed 24-27 MiB before, now
 * 14-17 (the three ways of committing): they fit in 20. */
START_TEST(vector_text_chunk_memory)
{
	enum { ROWS = 2000, DIM = 128 };
	static char body[ROWS * DIM * 12 + 64];
	size_t n = (size_t)snprintf(body, sizeof body, "id,v\n");
	for (int i = 0; i < ROWS; i++) {
		n += (size_t)snprintf(body + n, sizeof body - n, "%d,\"[", i);
		for (int d = 0; d < DIM; d++)
			n += (size_t)snprintf(
			    body + n, sizeof body - n, "%s%.6f", d ? ", " : "",
			    (double)((i * 31 + d) % 997) / 997);
		n += (size_t)snprintf(body + n, sizeof body - n, "]\"\n");
	}
	char imp[400];
	import_file(imp, sizeof imp, "vec.csv", body);
	struct qry_limits l;
	qry_limits_init(&l);
	l.mem_bytes_max = 20u << 20;
	struct commits k = {.label = "VT"};
	struct qry_error e;
	imp_dir = imp;
	int rc = run_lim("LOAD CSV WITH HEADERS FROM 'file:///vec.csv' AS r "
	                 "CALL { WITH r CREATE (:VT {id: toInteger(r.id), v: "
	                 "vector(r.v, 128, 'FLOAT32')}) } IN TRANSACTIONS OF "
	                 "2000 ROWS",
	                 &k, &l, 0, NULL, 0, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(k.n, 1);
	ck_assert_int_eq(count_label("VT"), ROWS);
	char out[256];
	rc = run("MATCH (n:VT {id: 1999}) RETURN vector_dimension_count(n.v), "
	         "n.v[127] > 0",
	         NULL, out, sizeof out, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_str_eq(out, "128,true;");
}
END_TEST

/* LIMIT before CALL { ... } IN TRANSACTIONS stops reading the file: a
 * malformed line after the limit is never read (the limit drained its
 * input, as after a write, review s20-a F1) */
START_TEST(limit_before_intx_stops_the_file)
{
	char body[2048];
	size_t n = (size_t)snprintf(body, sizeof body, "id\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(body + n, sizeof body - n, "%d\n", i);
	snprintf(body + n, sizeof body - n, "\"never closed\n");
	char imp[400];
	import_file(imp, sizeof imp, "lim.csv", body);
	struct commits k = {.label = "LIM"};
	struct qry_error e;
	imp_dir = imp;
	int rc = run("LOAD CSV WITH HEADERS FROM 'file:///lim.csv' AS r WITH "
	             "r LIMIT 10 CALL { WITH r CREATE (:LIM {id: "
	             "toInteger(r.id)}) } IN TRANSACTIONS OF 4 ROWS",
	             &k, NULL, 0, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(k.n, 3);
	ck_assert_int_eq(count_label("LIM"), 10);
	/* nor after a CALL subquery that only reads (review s20-b F2) */
	struct commits k3 = {.label = "RC"};
	imp_dir = imp;
	rc = run("LOAD CSV WITH HEADERS FROM 'file:///lim.csv' AS r CALL { "
	         "WITH r RETURN toInteger(r.id) AS id } WITH id LIMIT 10 CALL "
	         "{ WITH id CREATE (:RC {id: id}) } IN TRANSACTIONS OF 4 ROWS",
	         &k3, NULL, 0, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(count_label("RC"), 10);
	/* a write before the LIMIT still runs for every row */
	struct commits k2 = {.label = "LW"};
	rc = run("UNWIND range(1, 6) AS i CALL { WITH i CREATE (:LW {i: i}) } "
	         "IN TRANSACTIONS OF 2 ROWS WITH i LIMIT 1 RETURN i",
	         &k2, NULL, 0, &e);
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(count_label("LW"), 6);
}
END_TEST

/* A parameter holding a node makes a write's leading clauses read the
 * graph through it: they still drain before the write (pipe.c,
 * graph_free), so both rows read v before either SET */
START_TEST(node_parameter_keeps_eager)
{
	struct qry_error e;
	char out[64];
	ck_assert_int_eq(run("CREATE (:PN {v: 0})", NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(
	    run("MATCH (n:PN) RETURN id(n)", NULL, out, sizeof out, &e), 0);
	Lora__NodeValue nv;
	lora__node_value__init(&nv);
	nv.id = (uint64_t)strtoull(out, NULL, 10);
	Lora__Value v;
	lora__value__init(&v);
	v.kind_case = LORA__VALUE__KIND_NODE_VALUE;
	v.node_value = &nv;
	Lora__MapEntry me, *mep;
	Lora__ValueMap m;
	run_params = param_n(&m, &mep, &me, &v);
	int rc = run("UNWIND [$n, $n] AS x WITH x, x.v AS v SET x.v = v + 1 "
	             "CREATE (:PC {v: v})",
	             NULL, NULL, 0, &e);
	run_params = NULL;
	ck_assert_msg(rc == 0, "%d %s", rc, e.message);
	ck_assert_int_eq(run("MATCH (c:PC) RETURN sum(c.v), count(c)", NULL,
	                     out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "0,2;");
}
END_TEST

/* linenumber() in the subquery is the line of the row it runs for, not of
 * the last row the chunk pulled in */
START_TEST(linenumber_per_row)
{
	char imp[400];
	import_file(imp, sizeof imp, "l.csv", "id\n1\n2\n3\n4\n5\n6\n7\n");
	char p[460];
	FILE *f;
	imp_dir = imp;
	struct commits k = {.label = "L"};
	char out[256];
	struct qry_error e;
	int rc = run("LOAD CSV WITH HEADERS FROM 'file:///l.csv' AS r "
	             "CALL { WITH r CREATE (:L {id: toInteger(r.id), line: "
	             "linenumber(), f: file() ENDS WITH '/l.csv'}) } IN "
	             "TRANSACTIONS OF 3 ROWS",
	             &k, out, sizeof out, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_int_eq(k.n, 3);
	rc = run("MATCH (n:L) WHERE n.line = n.id + 1 AND n.f RETURN count(n)",
	         NULL, out, sizeof out, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_str_eq(out, "7;");
	/* a chunk that fails while its subquery reads a file (ON ERROR
	 * CONTINUE): the file it opened is closed with it, and the next
	 * chunk reads it again from the start */
	imp_dir = imp;
	struct commits c2 = {.label = "LC"};
	rc = run("UNWIND [1, 0, 2] AS d CALL { WITH d LOAD CSV WITH HEADERS "
	         "FROM 'file:///l.csv' AS r CREATE (:LC {v: toInteger(r.id) / "
	         "d}) } IN TRANSACTIONS OF 1 ROW ON ERROR CONTINUE REPORT "
	         "STATUS AS s RETURN d, s.committed",
	         &c2, out, sizeof out, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_str_eq(out, "1,true;0,false;2,true;");
	ck_assert_int_eq(count_label("LC"), 14);
	/* docs/cypher.md's example: the lines whose chunk failed */
	imp_dir = imp;
	struct commits c3 = {.label = "LD"};
	rc = run("LOAD CSV WITH HEADERS FROM 'file:///l.csv' AS r CALL { "
	         "WITH r CREATE (:LD {v: 10 / (toInteger(r.id) - 3)}) } IN "
	         "TRANSACTIONS OF 1 ROW ON ERROR CONTINUE REPORT STATUS AS s "
	         "WITH linenumber() AS line, s WHERE NOT s.committed RETURN "
	         "line, s.errorMessage",
	         &c3, out, sizeof out, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_msg(strncmp(out, "4,", 2) == 0 && strstr(out, "zero"), "%s",
	              out);
	ck_assert_int_eq(count_label("LD"), 6);
	/* a file that fails while it is read, 100 chunks in a row: each
	 * chunk's open file (128 KiB of buffers charged to the statement)
	 * is closed with the chunk (its operators' release, and
	 * load_close_chunk for one opened but not yet handed to them), or
	 * 100 of them would pass an 8 MiB limit */
	snprintf(p, sizeof p, "%s/bad.csv", imp);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs("a\n\"never closed\n", f);
	fclose(f);
	struct qry_limits l;
	qry_limits_init(&l);
	l.mem_bytes_max = 8u << 20;
	imp_dir = imp;
	struct commits c4 = {.label = "BX"};
	rc = run_lim("UNWIND range(1, 100) AS i CALL { WITH i LOAD CSV FROM "
	             "'file:///bad.csv' AS r CREATE (:BX) } IN TRANSACTIONS "
	             "OF 1 ROW ON ERROR CONTINUE REPORT STATUS AS s WITH s "
	             "WHERE NOT s.committed RETURN count(*), "
	             "min(s.errorMessage)",
	             &c4, &l, 0, out, sizeof out, &e);
	imp_dir = NULL;
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_str_eq(out, "100,LoadCsv: file:///bad.csv line 2: "
	                      "unterminated quoted field at end of file;");
	ck_assert_int_eq(count_label("BX"), 0);
}
END_TEST

static void pipelined_on(void)
{
	setup();
	pipelined = 1;
}

static void pipelined_fast_on(void)
{
	setup();
	pipelined = 2;
}

static void pipelined_off(void)
{
	pipelined = 0;
	teardown();
}

int main(void)
{
	Suite *s = suite_create("intx");
	static const char *names[] = {"intx", "intx_pipelined",
	                              "intx_pipelined_fast"};
	for (int p = 0; p < 3; p++) {
		TCase *t = tcase_create(names[p]);
		if (p == 2)
			tcase_add_checked_fixture(t, pipelined_fast_on,
			                          pipelined_off);
		else if (p == 1)
			tcase_add_checked_fixture(t, pipelined_on,
			                          pipelined_off);
		else
			tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 240);
		tcase_add_test(t, chunks_commit_as_they_go);
		tcase_add_test(t, id_seek_checks_labels_in_every_chunk);
		tcase_add_test(t, chunks_see_earlier_chunks);
		tcase_add_test(t, outer_values_outlive_chunks);
		tcase_add_test(t, outer_reads_of_deleted_entities);
		tcase_add_test(t, subqueries_in_chunk_match);
		tcase_add_test(t, scan_input_is_fixed);
		tcase_add_test(t, time_limit_says_what_committed);
		tcase_add_test(t, chunk_seeks_load_no_node);
		tcase_add_test(t, seek_cache_follows_commits);
		tcase_add_test(t, seek_cache_keeps_to_its_share);
		tcase_add_test(t, failing_chunk_keeps_earlier);
		tcase_add_test(t, failing_input_keeps_earlier);
		tcase_add_test(t, on_error_continue);
		tcase_add_test(t, on_error_break);
		tcase_add_test(t, chunk_sees_the_one_in_flight);
		tcase_add_test(t, on_error_limits);
		tcase_add_test(t, subquery_rows);
		tcase_add_test(t, placement_errors);
		tcase_add_test(t, memory_is_one_chunk);
		tcase_add_test(t, chunk_memory_per_row);
		tcase_add_test(t, too_big_names_the_way_out);
		tcase_add_test(t, linenumber_per_row);
		tcase_add_test(t, vector_text_chunk_memory);
		tcase_add_test(t, limit_before_intx_stops_the_file);
		tcase_add_test(t, node_parameter_keeps_eager);
		if (p == 1) /* pipelined: a chunk is in flight at the error */
			tcase_add_test(t, input_error_in_seek_lands_chunk);
		suite_add_tcase(s, t);
	}
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
