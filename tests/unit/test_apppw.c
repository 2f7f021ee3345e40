/* App passwords: the generated form, the forms people retype, the stored hash. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "auth/apppw.h"

static bool in_alphabet(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

static int cmp_pw(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_generate(void **state)
{
    enum { N = 1000 };
    static char pw[N][APPPW_LEN + 1];
    unsigned seen[32] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(apppw_generate(pw[i]), 0);
        assert_int_equal(strlen(pw[i]), APPPW_LEN);
        for (int k = 0; k < APPPW_LEN; k++) {
            char c = pw[i][k];
            if (k % 6 == 5) {
                assert_int_equal(c, '-');
                continue;
            }
            if (!in_alphabet(c))
                fail_msg("'%s': symbol %d not base32", pw[i], k);
            seen[c >= 'a' ? c - 'a' : c - '2' + 26]++;
        }
        /* What we hand out is what we accept, unchanged. */
        char canon[APPPW_LEN + 1];
        assert_true(apppw_normalise(pw[i], strlen(pw[i]), canon));
        assert_string_equal(canon, pw[i]);
    }
    qsort(pw, N, sizeof(pw[0]), cmp_pw);
    for (int i = 1; i < N; i++)
        if (strcmp(pw[i - 1], pw[i]) == 0)
            fail_msg("duplicate app password %s", pw[i]);
    /* 25000 symbols: every one of the 32 shows up (each expected ~780 times). */
    for (int s = 0; s < 32; s++)
        if (seen[s] < 500 || seen[s] > 1100)
            fail_msg("symbol %d seen %u times", s, seen[s]);
}

static void test_normalise(void **state)
{
    static const char *const good[] = {
        "abcde-fghij-klmno-pqrst-uvwx2", "ABCDE-FGHIJ-KLMNO-PQRST-UVWX2",   "abcdefghijklmnopqrstuvwx2",
        "abcde fghij klmno pqrst uvwx2", "  AbCdE fghij-klmno pqrstuvwx2 ", /* mixed, one left out, spaces
                                                                               around */
        "abcdefghij-klmnopqrst-uvwx2",
    };
    char out[APPPW_LEN + 1];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!apppw_normalise(good[i], strlen(good[i]), out))
            fail_msg("'%s' refused", good[i]);
        assert_string_equal(out, "abcde-fghij-klmno-pqrst-uvwx2");
    }
    static const char *const bad[] = {
        "",
        "abcde-fghij-klmno-pqrst-uvwx",   /* 24 symbols */
        "abcde-fghij-klmno-pqrst-uvwx22", /* 26 */
        "abcde-fghij-klmno-pqrst-uvwx1",  /* '1' is not in the alphabet */
        "abcde-fghij-klmno-pqrst-uvwx8",
        "abcde-fghij-klmno-pqrst-uvwx0",
        "abcde_fghij_klmno_pqrst_uvwx2",
        "abcde-fghij-klmno-pqrst-uvw=2",
        "abcde\tfghij-klmno-pqrst-uvwx2",
        "correct horse battery staple", /* 25 base32 letters, but not grouped like one */
        "abcde--fghij-klmno-pqrst-uvwx2",
        "abcde- fghij-klmno-pqrst-uvwx2",
        "-abcde-fghij-klmno-pqrst-uvwx2",
        "abcde-fghij-klmno-pqrst-uvwx2-",
        "abcd-efghi-jklmn-opqrs-tuvwx2",
        "abcde-fghij-klmno-pqrst-uvwx2                                          ", /* beyond any retyping */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 'x', sizeof(out));
        if (apppw_normalise(bad[i], strlen(bad[i]), out))
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(out[0], '\0');
    }
    /* Only len bytes count: no NUL needed, and an embedded one is refused. */
    assert_true(apppw_normalise("abcdefghijklmnopqrstuvwx2-garbage", 25, out));
    assert_false(apppw_normalise("abcdefghijklm\0opqrstuvwx2", 25, out));
    assert_false(apppw_normalise(NULL, 0, out));
}

static void test_hash(void **state)
{
    char h[APPPW_HASH_MAX];
    /* printf %s abcde-fghij-klmno-pqrst-uvwx2 | sha256sum */
    apppw_hash("abcde-fghij-klmno-pqrst-uvwx2", h);
    assert_string_equal(h, "sha256:9781c5012fe27bcd38e8049ffd82bba4b0ad3b8ec4a9e0b674b205598469a117");
    apppw_hash("22222-77777-aaaaa-zzzzz-mnbvc", h);
    assert_string_equal(h, "sha256:d3a17dda4317156c2a1b5f7f5558fb05d1e13da9d1a7751af60e2457d90cd3bd");
    /* Every retyped form hashes like the canonical one. */
    char canon[APPPW_LEN + 1], h2[APPPW_HASH_MAX];
    assert_true(apppw_normalise("ABCDEFGHIJKLMNOPQRSTUVWX2", 25, canon));
    apppw_hash(canon, h2);
    apppw_hash("abcde-fghij-klmno-pqrst-uvwx2", h);
    assert_string_equal(h, h2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
