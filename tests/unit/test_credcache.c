/* The verified-credential cache: hits only for the exact (user, password,
 * stored hash), expires, and can be switched off. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "auth/credcache.h"

static void test_hit_only_for_the_same_triple(void **state)
{
    struct credcache *c = credcache_new(64, 300);
    assert_non_null(c);
    assert_false(credcache_hit(c, 1000, "ann", "secret", 6, "{X}h1"));
    credcache_put(c, 1000, "ann", "secret", 6, "{X}h1");
    assert_true(credcache_hit(c, 1100, "ann", "secret", 6, "{X}h1"));
    assert_false(credcache_hit(c, 1100, "ann", "Secret", 6, "{X}h1"));   /* a wrong guess */
    assert_false(credcache_hit(c, 1100, "ann", "secret", 6, "{X}h2"));   /* password changed */
    assert_false(credcache_hit(c, 1100, "bob", "secret", 6, "{X}h1"));   /* another user */
    assert_false(credcache_hit(c, 1100, "ann", "secret\0x", 8, "{X}h1")); /* length counts */
    assert_false(credcache_hit(c, 1300, "ann", "secret", 6, "{X}h1"));   /* expired */
    credcache_free(&c);
    assert_null(c);
}

static void test_disabled_and_bounded(void **state)
{
    struct credcache *off = credcache_new(64, 0);
    credcache_put(off, 1, "ann", "pw", 2, "h");
    assert_false(credcache_hit(off, 1, "ann", "pw", 2, "h"));
    credcache_free(&off);
    struct credcache *c = credcache_new(16, 300);
    char user[16];
    for (int i = 0; i < 100; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        credcache_put(c, 1, user, "pw", 2, "h");
    }
    assert_int_equal(credcache_count(c), 16);
    assert_true(credcache_hit(c, 1, "u99", "pw", 2, "h"));
    credcache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_only_for_the_same_triple),
        cmocka_unit_test(test_disabled_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
