/* test_source.c - client source addresses (node/source.c): an IPv4
 * client is one source whether it comes as a.b.c.d or, through a
 * dual-stack listener, as ::ffff:a.b.c.d; an IPv6 client counts by its
 * /64; an address that could not be read matches no source (not even
 * another unreadable one), so unreadable clients never share one
 * source's limits. And the source address of a follower's connections to
 * the leader's native port (node_forward_local, node/forward.c): its own
 * IPv4 host when that binds here and the leader's address is IPv4 too,
 * else left to the OS, saying why when that is not the norm. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "node_int.h"
#include "source.h"

static struct node_source v4(const char *text)
{
	struct in_addr a;
	ck_assert_int_eq(inet_pton(AF_INET, text, &a), 1);
	struct node_source s;
	node_source_set(&s, &a, 4);
	return s;
}

static struct node_source v6(const char *text)
{
	struct sockaddr_in6 sa;
	memset(&sa, 0, sizeof sa);
	sa.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
	struct node_source s;
	node_source_from_sockaddr(&s, &sa);
	return s;
}

/* ::ffff:127.1.160.2 is 127.1.160.2, not ::/64 shared with every other
 * IPv4 client of a dual-stack listener. */
START_TEST(ipv4_mapped_is_its_ipv4_address)
{
	struct node_source a = v4("127.1.160.2"), am = v6("::ffff:127.1.160.2");
	struct node_source bm = v6("::ffff:127.1.160.3");
	ck_assert(node_source_eq(&a, &am));
	ck_assert(!node_source_eq(&am, &bm));
	char t[NODE_SOURCE_TEXT_BYTES];
	node_source_text(&am, t, sizeof t);
	ck_assert_str_eq(t, "127.1.160.2");
	/* and plain IPv6 counts by its /64 */
	struct node_source x = v6("2001:db8:1:2::5"), y = v6("2001:db8:1:2::9");
	struct node_source z = v6("2001:db8:1:3::5");
	ck_assert(node_source_eq(&x, &y));
	ck_assert(!node_source_eq(&x, &z));
	ck_assert(!node_source_eq(&x, &am));
	node_source_text(&x, t, sizeof t);
	ck_assert_str_eq(t, "2001:db8:1:2::/64");
}
END_TEST

/* Unreadable addresses (another family, or none) match nothing. */
START_TEST(unknown_matches_no_source)
{
	struct sockaddr_storage none;
	memset(&none, 0, sizeof none); /* what accept4 leaves when it cannot
	                                  tell */
	struct node_source u1, u2, zero6 = v6("::");
	node_source_from_sockaddr(&u1, &none);
	node_source_unknown(&u2);
	ck_assert(!node_source_eq(&u1, &u1));
	ck_assert(!node_source_eq(&u1, &u2));
	ck_assert(!node_source_eq(&u1, &zero6));
	struct node_source a = v4("127.1.160.2");
	ck_assert(!node_source_eq(&u1, &a));
	char t[NODE_SOURCE_TEXT_BYTES];
	node_source_text(&u1, t, sizeof t);
	ck_assert_str_eq(t, "an unknown address");
	/* the log still says once per NODE_SOURCE_LOG_MS for all of them */
	static struct node_source_log l;
	uint64_t quiet = 0;
	ck_assert_int_eq(node_source_log_due(&l, &u1, 1000, &quiet), 1);
	ck_assert_int_eq(node_source_log_due(&l, &u2, 1001, &quiet), 0);
}
END_TEST

/* node_forward_local(client, to): 1 with the bound host, or 0 with a
 * reason containing why_part ("" : no reason given). */
static void forward_local_is(const char *client, const char *to, int bind,
                             const char *host, const char *why_part)
{
	struct in_addr a;
	char why[256];
	int got = node_forward_local(client, to, &a.s_addr, why, sizeof why);
	ck_assert_msg(got == bind, "%s to %s: %d (%s)", client, to, got, why);
	if (bind) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, s, sizeof s);
		ck_assert_str_eq(s, host);
		ck_assert_str_eq(why, "");
	} else if (why_part[0] == '\0') {
		ck_assert_msg(why[0] == '\0', "%s to %s: %s", client, to, why);
	} else {
		ck_assert_msg(strstr(why, why_part) != NULL, "%s to %s: %s",
		              client, to, why);
	}
}

/* Review s10 item 9: an IPv4 client_addr bound on a dial to an IPv6 (or
 * named) leader address, or a host that does not bind here, would make
 * every forwarded native write fail; those dial unbound instead. */
START_TEST(forward_binds_only_where_the_dial_can_work)
{
	forward_local_is("127.0.0.1:4748", "127.0.0.2:4748", 1, "127.0.0.1",
	                 "");
	forward_local_is("127.0.0.1:4748", "[::1]:4748", 0, "",
	                 "not an IPv4 address");
	forward_local_is("127.0.0.1:4748", "leader.example:4748", 0, "",
	                 "not an IPv4 address");
	/* a loopback source cannot reach a leader off the machine, nor
	 * the other way round: dial unbound */
	forward_local_is("127.0.0.1:4748", "192.0.2.2:4748", 0, "",
	                 "are not both loopback");
	forward_local_is("192.0.2.1:4748", "127.0.0.2:4748", 0, "",
	                 "are not both loopback");
	/* TEST-NET-1 (RFC 5737): no address of this machine (a host with
	 * net.ipv4.ip_nonlocal_bind=1 would bind it) */
	forward_local_is("192.0.2.1:4748", "192.0.2.2:4748", 0, "",
	                 "cannot bind to 192.0.2.1");
	forward_local_is("[::1]:4748", "127.0.0.2:4748", 0, "", "");
	forward_local_is("0.0.0.0:4748", "127.0.0.2:4748", 0, "", "");
	forward_local_is("node1.example:4748", "127.0.0.2:4748", 0, "", "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_source");
	TCase *t = tcase_create("source");
	tcase_add_test(t, ipv4_mapped_is_its_ipv4_address);
	tcase_add_test(t, unknown_matches_no_source);
	tcase_add_test(t, forward_binds_only_where_the_dial_can_work);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
