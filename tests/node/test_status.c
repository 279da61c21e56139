/* test_status.c - the node's status without a node (node/status.h): gossip
 * frames written and read back, what a frame does to the members (taken
 * from members only, addresses never moved, an entry made only for a member
 * that lacks one), and the /cluster/status document of a state. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lora.h"
#include "status.h"

static struct node_gossip gossip(uint64_t id, const char *http,
                                 const char *role, uint64_t term)
{
	struct node_gossip g;
	memset(&g, 0, sizeof g);
	g.id = id;
	snprintf(g.peer, sizeof g.peer, "10.0.0.%llu:4748",
	         (unsigned long long)id);
	snprintf(g.http, sizeof g.http, "%s", http);
	snprintf(g.client, sizeof g.client, "10.0.0.%llu:4749",
	         (unsigned long long)id);
	snprintf(g.role, sizeof g.role, "%s", role);
	g.term = term;
	g.commit = 10 * term;
	g.applied = 10 * term - 1;
	return g;
}

static void config(struct rep_status *rs, const uint64_t *ids, const int *voter,
                   int n)
{
	memset(rs, 0, sizeof *rs);
	rs->n_peers = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		rs->peers[i].id = ids[i];
		rs->peers[i].voter = voter[i];
	}
}

START_TEST(gossip_round_trip)
{
	struct node_gossip g = gossip(7, "10.0.0.7:4747", "leader", 3), back;
	char buf[NODE_GOSSIP_BYTES_MAX];
	int len = node_gossip_format(&g, buf, sizeof buf);
	ck_assert_int_gt(len, 0);
	ck_assert_str_eq(buf, "7 10.0.0.7:4748 10.0.0.7:4747 10.0.0.7:4749 "
	                      "leader 3 30 29 -");
	ck_assert_int_eq(node_gossip_parse((uint8_t *)buf, (size_t)len, &back),
	                 0);
	ck_assert_uint_eq(back.id, 7);
	ck_assert_str_eq(back.http, "10.0.0.7:4747");
	ck_assert_str_eq(back.bolt, "");
	ck_assert_uint_eq(back.applied, 29);
	snprintf(g.bolt, sizeof g.bolt, "10.0.0.7:7687");
	len = node_gossip_format(&g, buf, sizeof buf);
	ck_assert_int_eq(node_gossip_parse((uint8_t *)buf, (size_t)len, &back),
	                 0);
	ck_assert_str_eq(back.bolt, "10.0.0.7:7687");
	/* older nodes send no Bolt field */
	static const char old[] = "2 p h c follower 1 2 3";
	ck_assert_int_eq(
	    node_gossip_parse((const uint8_t *)old, sizeof old - 1, &back), 0);
	ck_assert_str_eq(back.bolt, "");
	static const char bad[] = "2 p h c follower 1 2";
	ck_assert_int_eq(
	    node_gossip_parse((const uint8_t *)bad, sizeof bad - 1, &back),
	    LORA_ECORRUPT);
	ck_assert_int_eq(node_gossip_parse((const uint8_t *)buf,
	                                   NODE_GOSSIP_BYTES_MAX, &back),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(node_gossip_format(&g, buf, 20), -1);
}
END_TEST

START_TEST(gossip_merge_rules)
{
	struct rep_status rs;
	const uint64_t ids[] = {1, 2, 3};
	const int voter[] = {1, 1, 0};
	config(&rs, ids, voter, 3);
	struct node_member m[3];
	memset(m, 0, sizeof m);
	m[0].id = 1;
	m[1].id = 2;
	snprintf(m[1].http_addr, sizeof m[1].http_addr, "10.0.0.2:4747");
	int n = 2;
	/* a stranger: refused, nothing changes */
	struct node_gossip g = gossip(4, "10.0.0.4:4747", "leader", 9);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 1000),
	                 NODE_GOSSIP_NOT_MEMBER);
	ck_assert_int_eq(n, 2);
	/* a member: numbers and role taken, missing addresses learnt */
	g = gossip(2, "10.0.0.2:4747", "follower", 4);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 1000),
	                 NODE_GOSSIP_TAKEN);
	ck_assert_uint_eq(m[1].term, 4);
	ck_assert_uint_eq(m[1].commit, 40);
	ck_assert_uint_eq(m[1].last_info_ms, 1000);
	ck_assert_str_eq(m[1].role, "follower");
	ck_assert_str_eq(m[1].client_addr, "10.0.0.2:4749");
	/* claiming another HTTP address: the known one is kept */
	g = gossip(2, "10.6.6.6:4747", "leader", 5);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 2000),
	                 NODE_GOSSIP_MOVED);
	ck_assert_str_eq(m[1].http_addr, "10.0.0.2:4747");
	ck_assert_uint_eq(m[1].term, 5);
	/* a member with no entry here: made, with its addresses */
	g = gossip(3, "10.0.0.3:4747", "learner", 5);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 3000),
	                 NODE_GOSSIP_CREATED);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(m[2].id, 3);
	ck_assert_str_eq(m[2].peer_addr, "10.0.0.3:4748");
	ck_assert_str_eq(m[2].http_addr, "10.0.0.3:4747");
	ck_assert_uint_eq(m[2].last_info_ms, 3000);
	/* ... but not past members_max */
	n = 2;
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 2, 3000),
	                 NODE_GOSSIP_NO_ENTRY);
	ck_assert_int_eq(n, 2);
	/* joining (no configuration yet): taken from anyone known, never
	 * an entry made */
	memset(&rs, 0, sizeof rs);
	g = gossip(9, "10.0.0.9:4747", "leader", 6);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 4000),
	                 NODE_GOSSIP_NO_ENTRY);
	ck_assert_int_eq(n, 2);
	g = gossip(1, "10.0.0.1:4747", "leader", 6);
	ck_assert_int_eq(node_gossip_merge(&g, &rs, m, &n, 3, 4000),
	                 NODE_GOSSIP_TAKEN);
	ck_assert_str_eq(m[0].http_addr, "10.0.0.1:4747");
}
END_TEST

/* The "nodes" entry for id in doc. */
static json_t *entry(json_t *doc, uint64_t id)
{
	json_t *nodes = json_object_get(doc, "nodes");
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		json_t *e = json_array_get(nodes, i);
		if ((uint64_t)json_integer_value(json_object_get(e, "id")) ==
		    id)
			return e;
	}
	ck_abort_msg("no entry for %llu", (unsigned long long)id);
	return NULL;
}

static const char *str(json_t *e, const char *k)
{
	return json_string_value(json_object_get(e, k));
}

static long long num(json_t *e, const char *k)
{
	return (long long)json_integer_value(json_object_get(e, k));
}

START_TEST(status_document_of_a_state)
{
	struct rep_status rs;
	const uint64_t ids[] = {1, 2, 3};
	const int voter[] = {1, 1, 0};
	config(&rs, ids, voter, 3);
	rs.role = REP_LEADER;
	rs.leader = 1;
	rs.term = 5;
	rs.commit = 50;
	struct node_member m[2];
	memset(m, 0, sizeof m);
	m[0].id = 2;
	snprintf(m[0].http_addr, sizeof m[0].http_addr, "10.0.0.2:4747");
	snprintf(m[0].role, sizeof m[0].role, "follower");
	m[0].term = 5;
	m[0].commit = 49;
	m[0].applied = 48;
	m[0].last_info_ms = 9750;
	m[1].id = 3; /* never heard */
	struct node_status_view v = {.self = 1,
	                             .self_http = "10.0.0.1:4747",
	                             .rs = &rs,
	                             .applied = 47,
	                             .members = m,
	                             .n_members = 2,
	                             .now_ms = 10000};
	json_t *doc = node_status_doc(&v);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(num(doc, "leader"), 1);
	ck_assert_int_eq(num(doc, "term"), 5);
	ck_assert_int_eq(num(doc, "self"), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "nodes")), 3);
	json_t *e = entry(doc, 1);
	ck_assert_str_eq(str(e, "role"), "leader");
	ck_assert_str_eq(str(e, "address"), "10.0.0.1:4747");
	ck_assert_int_eq(num(e, "commitIndex"), 50);
	ck_assert_int_eq(num(e, "appliedIndex"), 47);
	ck_assert_int_eq(num(e, "lastContactMs"), 0);
	e = entry(doc, 2);
	ck_assert_str_eq(str(e, "role"), "follower");
	ck_assert_int_eq(num(e, "appliedIndex"), 48);
	ck_assert_int_eq(num(e, "lastContactMs"), 250);
	e = entry(doc, 3);
	ck_assert_str_eq(str(e, "role"), "learner");
	ck_assert_str_eq(str(e, "address"), "");
	ck_assert(json_is_null(json_object_get(e, "lastContactMs")));
	json_decref(doc);

	/* not in the configuration yet (joining): listed as a learner, no
	 * leader known */
	memset(&rs, 0, sizeof rs);
	rs.learner = 1;
	rs.term = 2;
	doc = node_status_doc(&v);
	ck_assert(json_is_null(json_object_get(doc, "leader")));
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "nodes")), 1);
	ck_assert_str_eq(str(entry(doc, 1), "role"), "learner");
	json_decref(doc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_status");
	TCase *t = tcase_create("status");
	tcase_add_test(t, gossip_round_trip);
	tcase_add_test(t, gossip_merge_rules);
	tcase_add_test(t, status_document_of_a_state);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
