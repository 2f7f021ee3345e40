/* The defence engine without a daemon: delays, bans, locks for unknown sources
 * only, repeats, spraying, caps, the state file, and memory at the cap. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/guard.h"

static const uint8_t KEY[GUARD_KEYLEN] = {1, 2, 3};
static char events[4096];

static void on_event(void *ctx, const struct guard_event *ev)
{
    static const char *names[] = {"ban", "lock", "spray", "dspray", "repeat", "new"};
    size_t n = strlen(events);
    snprintf(events + n, sizeof(events) - n, "[%s %s %u]", names[ev->kind], ev->subject, ev->seconds);
}

static struct guard *mk(struct guard_params *p)
{
    events[0] = '\0';
    struct guard *g = guard_new(p, KEY, on_event, NULL);
    assert_non_null(g);
    return g;
}

static struct guard_source src(const char *ip)
{
    struct guard_source s;
    assert_int_equal(guard_source_parse(ip, &s), 0);
    return s;
}

static uint32_t record_failure(struct guard *g, int64_t now, const char *ip, const char *user, const char *pw)
{
    struct guard_source s = src(ip);
    struct guard_fp fp;
    guard_fingerprint(g, user, pw, strlen(pw), &fp);
    return guard_failure(g, now, &s, user, &fp);
}

static enum guard_decision check(struct guard *g, int64_t now, const char *ip, const char *user)
{
    struct guard_source s = src(ip);
    uint32_t d;
    return guard_check(g, now, &s, user, &d);
}

static void test_parse(void **state)
{
    struct guard_source s;
    assert_int_equal(guard_source_parse("::ffff:192.0.2.1", &s), 0);
    assert_string_equal(s.text, "192.0.2.1");
    assert_int_equal(guard_source_parse("2001:db8::1", &s), 0);
    assert_int_equal(guard_source_parse("192.0.2.1x", &s), -1);
    struct guard_net n;
    assert_int_equal(guard_net_parse("10.0.0.0/8", &n), 0);
    assert_int_equal(guard_net_parse("10.0.0.0/33", &n), -1);
    assert_int_equal(guard_net_parse("2001:db8::/32", &n), 0);
    assert_int_equal(guard_net_parse("10.0.0.0", &n), -1);
}

static void test_backoff_then_ban(void **state)
{
    struct guard_params p = guard_params_default;
    p.delay_base_ms = 100;
    p.delay_max_ms = 1000;
    p.ban_failures = 5;
    p.ban_first_s = 60;
    struct guard *g = mk(&p);
    uint32_t want[] = {100, 200, 400, 800, 1000};
    for (int i = 0; i < 5; i++) {
        char pw[24];
        snprintf(pw, sizeof(pw), "pw%d", i);
        assert_int_equal(check(g, 1000, "192.0.2.1", "alice"), GUARD_PROCEED);
        assert_int_equal(record_failure(g, 1000, "192.0.2.1", "alice", pw), want[i]);
    }
    assert_null(strstr(events, "[new")); /* failures never make a source known */
    assert_non_null(strstr(events, "[ban 192.0.2.1/32 60]"));
    assert_int_equal(check(g, 1010, "192.0.2.1", "alice"), GUARD_REFUSE_BANNED);
    assert_int_equal(check(g, 1010, "192.0.2.2", "alice"), GUARD_PROCEED);
    assert_int_equal(check(g, 1061, "192.0.2.1", "alice"), GUARD_PROCEED); /* expired */
    /* A second ban of the same address lasts twice as long. */
    for (int i = 0; i < 5; i++) {
        char pw[24];
        snprintf(pw, sizeof(pw), "again%d", i);
        record_failure(g, 1100, "192.0.2.1", "alice", pw);
    }
    assert_non_null(strstr(events, "[ban 192.0.2.1/32 120]"));
    assert_true(guard_unban(g, 1100, "192.0.2.1/32"));
    assert_false(guard_unban(g, 1100, "192.0.2.1/32"));
    assert_int_equal(check(g, 1101, "192.0.2.1", "alice"), GUARD_PROCEED);
    guard_free(&g);
    assert_null(g);
}

static void test_prefix_ban_v6(void **state)
{
    struct guard_params p = guard_params_default;
    p.ban_failures = 1000;
    p.ban_prefix_failures = 4;
    p.spray_password_accounts = 1000;
    struct guard *g = mk(&p);
    char ip[64], pw[24];
    for (int i = 0; i < 4; i++) {
        snprintf(ip, sizeof(ip), "2001:db8:1:%x::1", i + 1); /* four /64s in one /48 */
        snprintf(pw, sizeof(pw), "p%d", i);
        record_failure(g, 5, ip, "bob", pw);
    }
    assert_non_null(strstr(events, "[ban 2001:db8:1::/48"));
    assert_int_equal(check(g, 6, "2001:db8:1:99::5", "bob"), GUARD_REFUSE_BANNED);
    assert_int_equal(check(g, 6, "2001:db8:2::5", "bob"), GUARD_PROCEED);
    guard_free(&g);
}

static void test_lock_spares_known_source(void **state)
{
    struct guard_params p = guard_params_default;
    p.ban_failures = 1000;
    p.ban_prefix_failures = 1000;
    p.account_lock_failures = 6;
    p.spray_password_accounts = 1000;
    struct guard *g = mk(&p);
    struct guard_source home = src("198.51.100.7");
    guard_success(g, 10, &home, "carol");
    assert_non_null(strstr(events, "[new 198.51.100.7 0]"));
    char ip[32], pw[24];
    for (int i = 0; i < 6; i++) {
        snprintf(ip, sizeof(ip), "203.0.%d.1", i);
        snprintf(pw, sizeof(pw), "x%d", i);
        record_failure(g, 20, ip, "carol", pw);
    }
    assert_non_null(strstr(events, "[lock carol"));
    assert_int_equal(check(g, 21, "203.0.113.9", "carol"), GUARD_REFUSE_LOCKED);
    assert_int_equal(check(g, 21, "198.51.100.200", "carol"), GUARD_PROCEED); /* same /24 as home */
    assert_int_equal(check(g, 21, "203.0.113.9", "dave"), GUARD_PROCEED);
    assert_true(guard_unlock(g, "carol"));
    assert_int_equal(check(g, 23, "203.0.113.9", "carol"), GUARD_PROCEED);
    /* The real user's own typos, from the known device, never lock the account. */
    char typo[24];
    for (int i = 0; i < 10; i++) {
        snprintf(typo, sizeof(typo), "typo%d", i);
        record_failure(g, 24, "198.51.100.7", "carol", typo);
    }
    assert_int_equal(check(g, 25, "203.0.113.9", "carol"), GUARD_PROCEED);
    guard_free(&g);
}

static void test_repeats_count_once(void **state)
{
    struct guard_params p = guard_params_default;
    p.ban_failures = 3;
    struct guard *g = mk(&p);
    for (int i = 0; i < 20; i++)
        record_failure(g, 100 + i, "192.0.2.50", "frank", "old-password");
    assert_null(strstr(events, "[ban"));
    assert_non_null(strstr(events, "[repeat"));
    assert_int_equal(check(g, 200, "192.0.2.50", "frank"), GUARD_PROCEED);
    guard_free(&g);
}

static void test_spraying(void **state)
{
    struct guard_params p = guard_params_default;
    p.spray_accounts = 4;
    p.ban_failures = 1000;
    struct guard *g = mk(&p);
    char user[32];
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "user%d", i);
        record_failure(g, 1, "192.0.2.77", user, "Spring2026");
    }
    assert_non_null(strstr(events, "[spray 192.0.2.77"));
    assert_non_null(strstr(events, "[ban 192.0.2.77/32"));
    guard_free(&g);

    p = guard_params_default;
    p.spray_password_accounts = 5;
    g = mk(&p);
    char ip[32];
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof(user), "v%d", i);
        snprintf(ip, sizeof(ip), "10.%d.0.1", i);
        record_failure(g, 1, ip, user, "Autumn2026");
    }
    assert_non_null(strstr(events, "[dspray password"));
    assert_non_null(strstr(events, "[ban 10.4.0.1/32"));
    guard_free(&g);
}

static void test_trusted(void **state)
{
    struct guard_params p = guard_params_default;
    p.ban_failures = 2;
    assert_int_equal(guard_net_parse("192.0.2.0/24", &p.trusted[0]), 0);
    p.n_trusted = 1;
    struct guard *g = mk(&p);
    for (int i = 0; i < 5; i++) {
        char pw[24];
        snprintf(pw, sizeof(pw), "t%d", i);
        record_failure(g, 1, "192.0.2.9", "gina", pw);
    }
    assert_int_equal(check(g, 2, "192.0.2.9", "gina"), GUARD_PROCEED);
    assert_null(strstr(events, "[ban"));
    guard_free(&g);
}

static int stats_cb(void *ctx, const char *table, uint32_t count, uint32_t cap, size_t bytes, uint64_t ev)
{
    size_t *total = ctx;
    assert_true(count <= cap);
    total[0] += bytes;
    if (strcmp(table, "fail_source") == 0) {
        total[1] = count;
        total[2] = ev;
        total[3] = bytes;
    }
    return 0;
}

static void test_caps_and_memory(void **state)
{
    struct guard_params p = guard_params_default;
    p.table_cap = 4096;
    p.ban_prefix_failures = 1u << 30;
    p.spray_password_accounts = 1u << 30;
    p.account_lock_failures = 1u << 30;
    struct guard *g = mk(&p);
    char ip[32], user[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        snprintf(user, sizeof(user), "u%d", i);
        record_failure(g, 1, ip, user, user);
    }
    size_t t[4] = {0};
    guard_stats(g, stats_cb, t);
    assert_int_equal(t[1], 4096);
    assert_true(t[2] > 0);
    /* Per entry: the entry, its chain link and its bucket. */
    printf("memory at cap 4096: fail_source table %zu bytes (%.1f per entry); all tables %zu bytes\n", t[3],
           (double)t[3] / 4096, t[0]);
    assert_true(t[3] / 4096 < 80);
    guard_free(&g);
}

static void test_state_file(void **state)
{
    char path[] = "/tmp/guard-state-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct guard_params p = guard_params_default;
    p.ban_failures = 2;
    struct guard *g = mk(&p);
    record_failure(g, 1000, "192.0.2.1", "hank", "a");
    record_failure(g, 1000, "192.0.2.1", "hank", "b");
    struct error err;
    assert_int_equal(guard_save(g, 1000, path, &err), 0);
    guard_free(&g);

    uint8_t key[GUARD_KEYLEN];
    assert_int_equal(guard_load_key(path, key), 0);
    assert_memory_equal(key, KEY, GUARD_KEYLEN);
    g = mk(&p);
    assert_int_equal(guard_load(g, 1001, path, &err), 0);
    assert_int_equal(check(g, 1001, "192.0.2.1", "hank"), GUARD_REFUSE_BANNED);
    guard_free(&g);
    /* After the ban's end, loading drops it. */
    g = mk(&p);
    assert_int_equal(guard_load(g, 1000 + 86400 * 8, path, &err), 0);
    assert_int_equal(check(g, 1000 + 86400 * 8, "192.0.2.1", "hank"), GUARD_PROCEED);
    guard_free(&g);
    /* Truncated or trailing bytes: refused. */
    FILE *f = fopen(path, "ab");
    fputc('x', f);
    fclose(f);
    g = mk(&p);
    assert_int_equal(guard_load(g, 1001, path, &err), -1);
    guard_free(&g);
    /* Another key: refused. */
    uint8_t other[GUARD_KEYLEN] = {9};
    g = guard_new(&p, other, NULL, NULL);
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(guard_load(g, 1001, path, &err), -1);
    guard_free(&g);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),          cmocka_unit_test(test_backoff_then_ban),
        cmocka_unit_test(test_prefix_ban_v6),  cmocka_unit_test(test_lock_spares_known_source),
        cmocka_unit_test(test_repeats_count_once), cmocka_unit_test(test_spraying),
        cmocka_unit_test(test_trusted),        cmocka_unit_test(test_caps_and_memory),
        cmocka_unit_test(test_state_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
