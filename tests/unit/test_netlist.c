/* Source allow-lists: IPv4, IPv6, IPv4-mapped IPv6 on either side, and
 * malformed lists that must fail closed. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "auth/netlist.h"

struct want {
    const char *list, *addr;
    int allowed;
};

static void check(const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = netlist_allow(w[i].list, w[i].addr);
        if (r != w[i].allowed)
            fail_msg("netlist_allow(\"%s\", \"%s\") = %d, want %d", w[i].list, w[i].addr, r, w[i].allowed);
    }
}

static void test_empty_allows_all(void **state)
{
    static const struct want w[] = {
        {"", "192.0.2.1", 1},
        {"  ", "2001:db8::1", 1},
        {",\t,", "10.0.0.1", 1},
        {"", "not an address", 1},
    };
    check(w, sizeof(w) / sizeof(w[0]));
    assert_int_equal(netlist_allow(NULL, "192.0.2.1"), 1);
}

static void test_ipv4(void **state)
{
    static const struct want w[] = {
        {"192.0.2.0/24", "192.0.2.1", 1},
        {"192.0.2.0/24", "192.0.2.255", 1},
        {"192.0.2.0/24", "192.0.3.1", 0},
        {"192.0.2.7", "192.0.2.7", 1},
        {"192.0.2.7", "192.0.2.8", 0},
        {"10.0.0.0/8 192.0.2.7", "10.200.1.1", 1},
        {"10.0.0.0/8,192.0.2.7", "192.0.2.7", 1},
        {"10.0.0.0/8, 192.0.2.7", "11.0.0.1", 0},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "2001:db8::1", 0}, /* all of IPv4 is not IPv6 */
        {"192.0.2.128/25", "192.0.2.127", 0},
        {"192.0.2.128/25", "192.0.2.128", 1},
        {"10.1.2.3/8", "10.9.9.9", 1}, /* host bits beyond the prefix are ignored, as Dovecot does */
        {"192.0.2.0/31", "192.0.2.1", 1},
        {"192.0.2.0/32", "192.0.2.1", 0},
    };
    check(w, sizeof(w) / sizeof(w[0]));
}

static void test_ipv6(void **state)
{
    static const struct want w[] = {
        {"2001:db8::/32", "2001:db8:1::5", 1},
        {"2001:db8::/32", "2001:db9::5", 0},
        {"2001:db8::1", "2001:db8:0:0::1", 1}, /* compared as addresses, not as text */
        {"2001:db8::1", "2001:db8::2", 0},
        {"2001:db8:0:1::/63", "2001:db8:0:1:ffff::1", 1},
        {"2001:db8:0:2::/63", "2001:db8:0:1::1", 0},
        {"::/0", "2001:db8::1", 1},
        {"::/0", "192.0.2.1", 1}, /* everything, IPv4 included (as ::ffff:0:0/96) */
        {"fe80::/10", "fe80::1", 1},
        {"fe80::/10", "fec0::1", 0},
        {"2001:db8::/32", "192.0.2.1", 0},
    };
    check(w, sizeof(w) / sizeof(w[0]));
}

/* A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d. */
static void test_mapped(void **state)
{
    static const struct want w[] = {
        {"192.0.2.0/24", "::ffff:192.0.2.9", 1},   {"192.0.2.0/24", "::FFFF:192.0.2.9", 1},
        {"192.0.2.0/24", "::ffff:c000:209", 1},    {"192.0.2.0/24", "::ffff:198.51.100.1", 0},
        {"::ffff:192.0.2.9", "192.0.2.9", 1},      {"::ffff:192.0.2.0/120", "192.0.2.77", 1},
        {"::ffff:192.0.2.0/120", "192.0.3.77", 0}, {"::ffff:0:0/96", "203.0.113.1", 1},
        {"192.0.2.9", "::192.0.2.9", 0}, /* IPv4-compatible (deprecated) is not mapped */
    };
    check(w, sizeof(w) / sizeof(w[0]));
}

static void test_bad_address_denied(void **state)
{
    static const struct want w[] = {
        {"192.0.2.0/24", "", 0},
        {"192.0.2.0/24", "192.0.2", 0},
        {"192.0.2.0/24", "192.0.2.1/32", 0},
        {"192.0.2.0/24", "localhost", 0},
        {"192.0.2.0/24", "fe80::1%eth0", 0},
    };
    check(w, sizeof(w) / sizeof(w[0]));
    assert_int_equal(netlist_allow("192.0.2.0/24", NULL), 0);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "192.0.2.0/33",  "2001:db8::/129", "192.0.2.0/",   "192.0.2.0/-1",  "192.0.2.0/+8",
        "192.0.2.0/08",  "192.0.2.0/8x",   "192.0.2",      "192.0.2.256",   "010.0.0.1",
        "host.example",  "2001:db8:::1",   "fe80::1%eth0", "[2001:db8::1]", "*",
        "192.0.2.0/24;", "10.0.0.0/8 x",   "/8",           "192.0.2.0//24",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct error err = {{0}};
        if (netlist_check(bad[i], &err) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_not_equal(err.msg[0], '\0');
        /* Fails closed, whether or not the address would have matched an earlier entry. */
        if (netlist_allow(bad[i], "10.0.0.1") != -1)
            fail_msg("'%s' allowed something", bad[i]);
    }
    struct error err = {{0}};
    assert_int_equal(netlist_allow("10.0.0.0/8 bogus", "10.0.0.1"), -1);
    assert_int_equal(netlist_check("10.0.0.0/8 bogus", &err), -1);
    assert_non_null(strstr(err.msg, "'bogus'"));
    assert_int_equal(netlist_check("10.0.0.0/8 b\x01o", &err), -1);
    assert_null(strchr(err.msg, '\x01'));
    assert_int_equal(netlist_check("10.0.0.0/8, 2001:db8::/32\t192.0.2.1 ::1", &err), 0);
    assert_int_equal(netlist_check("", &err), 0);
    assert_int_equal(netlist_check(NULL, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_allows_all),
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_bad_address_denied),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
