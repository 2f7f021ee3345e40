/* The common layer: strict numbers (no sign, space, noise or overflow),
 * durations, booleans, strict base64 (alphabet, padding, length, capacity,
 * canonical form), log_quote escaping and truncation, constant-time compare,
 * error formatting. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/b64.h"
#include "common/error.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/strnum.h"

/* ---- strnum ---- */

static int u32(const char *s, uint32_t *v)
{
    *v = 0xdeadbeef;
    return strnum_u32(s, strlen(s), v);
}

static void test_u32_ok(void **state)
{
    uint32_t v;
    assert_int_equal(u32("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(u32("1", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(u32("4294967295", &v), 0);
    assert_int_equal(v, UINT32_MAX);
    assert_int_equal(u32("4294967294", &v), 0);
    assert_int_equal(v, 4294967294u);
    /* Decision: leading zeros are plain decimal digits (never octal). */
    assert_int_equal(u32("01", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(u32("010", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(u32("00000000000000000001", &v), 0); /* 20 characters: still accepted */
    assert_int_equal(v, 1);
    /* Only len bytes are read. */
    v = 0;
    assert_int_equal(strnum_u32("123", 2, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(strnum_u32_str("77", &v), 0);
    assert_int_equal(v, 77);
}

static void test_u32_bad(void **state)
{
    static const char *bad[] = {
        "4294967296", "4294967297", "99999999999", "18446744073709551617", "99999999999999999999",
        "1x",         "x1",         "-1",          "+1",                   " 1",
        "1 ",         "",           "0x10",        "1.0",                  "1e3",
        "\t1",        "1\n",        "\xd9\xa3",           "000000000000000000001", /* 21 characters: refused */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t v;
        if (u32(bad[i], &v) != -1)
            fail_msg("strnum_u32 accepted \"%s\"", bad[i]);
        assert_int_equal(v, 0xdeadbeef); /* output untouched on error */
    }
    uint32_t v;
    assert_int_equal(strnum_u32("1\0", 2, &v), -1); /* embedded NUL */
    assert_int_equal(strnum_u32_str("4294967297", &v), -1);
}

static void test_u64(void **state)
{
    uint64_t v;
    assert_int_equal(strnum_u64_str("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(strnum_u64_str("18446744073709551616", &v), -1);
    assert_int_equal(strnum_u64_str("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(strnum_u64_str("", &v), -1);
    assert_int_equal(strnum_u64_str("-0", &v), -1);
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"30", 30000},     {"30s", 30000},       {"250ms", 250}, {"10m", 600000}, {"2h", 7200000},
        {"1d", 86400000},  {"0", 0},             {"0ms", 0},     {"05s", 5000},   {"1000ms", 1000},
        /* the largest count of each unit: the product still fits in 64 bits */
        {"213503982334d", 213503982334ull * 86400000ull},
        {"5124095576030h", 5124095576030ull * 3600000ull},
        {"307445734561825m", 307445734561825ull * 60000ull},
        {"18446744073709551s", 18446744073709551000ull},
        {"18446744073709551", 18446744073709551000ull},
        {"18446744073709551615ms", UINT64_MAX},
        /* what conf_print() writes for "213503982334d" reads back */
        {"18446744073657600s", 213503982334ull * 86400000ull},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 12345;
        if (strnum_duration_ms(ok[i].s, &v) != 0)
            fail_msg("refused \"%s\"", ok[i].s);
        assert_true(v == ok[i].ms);
    }
    static const char *bad[] = {
        "",     "s",    "ms",  "m",  "10x",  "10 s", " 10s", "10s ", "10S",  "10M",
        "-1",   "+1",   "1.5s", "10sm", "10mss", "10us", "1w",  "1y",   "10ss", "1h30m",
        /* one more of each unit overflows */
        "213503982335d", "5124095576031h", "307445734561826m", "18446744073709552s", "18446744073709552",
        "18446744073709551616ms", "99999999999999999999ms", "999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 12345;
        if (strnum_duration_ms(bad[i], &v) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(v == 12345);
    }
}

static void test_bool(void **state)
{
    static const char *yes[] = {"yes", "YES", "Yes", "true", "TRUE", "on", "On", "1"};
    static const char *no[] = {"no", "NO", "false", "False", "off", "OFF", "0"};
    static const char *bad[] = {"", "y", "n", "2", "yes ", " no", "enable", "truee", "00", "-1"};
    bool b;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        assert_int_equal(strnum_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        assert_int_equal(strnum_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strnum_bool(bad[i], &b) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* ---- base64 ---- */

static long dec(const char *in, unsigned char *out, size_t cap)
{
    return b64_decode(in, strlen(in), out, cap);
}

static void test_b64_valid(void **state)
{
    unsigned char out[64];
    assert_int_equal(dec("", out, sizeof(out)), 0);
    assert_int_equal(dec("", out, 0), 0);
    assert_int_equal(dec("TWFu", out, sizeof(out)), 3); /* no padding */
    assert_memory_equal(out, "Man", 3);
    assert_int_equal(dec("TWE=", out, sizeof(out)), 2); /* one pad */
    assert_memory_equal(out, "Ma", 2);
    assert_int_equal(dec("TQ==", out, sizeof(out)), 1); /* two pads */
    assert_memory_equal(out, "M", 1);
    assert_int_equal(dec("AGZvbwBiYXI=", out, sizeof(out)), 8);
    assert_memory_equal(out, "\0foo\0bar", 8);
    assert_int_equal(dec("+/+/", out, sizeof(out)), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(dec("AAAA", out, sizeof(out)), 3);
    assert_memory_equal(out, "\0\0\0", 3);
}

static void test_b64_bad(void **state)
{
    static const char *bad[] = {
        /* characters outside the alphabet (incl. the URL-safe ones and whitespace) */
        "TW!u", "TW-u", "TW_u", "TW u", " TWF", "TWF ", "TW\tu", "TW\nu", "TWFu\r\n\r\n", "TWF\x80",
        /* misplaced padding */
        "=WFu", "T=Fu", "TW=u", "T===", "====", "TQ==TWFu", "TWE=TWFu", "TQ=A", "=", "==", "===",
        /* bad lengths */
        "T", "TW", "TWF", "TWFuT", "TWFuTW", "TQ=", "TWFu=", "TWFu==",
        /* non-canonical: padding bits must be zero (RFC 4648 3.5), so each
         * byte string has exactly one accepted encoding */
        "TR==", "TQ=B", "TWF=", "TWG=", "AB==", "AAB=",
    };
    unsigned char out[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dec(bad[i], out, sizeof(out)) != -1)
            fail_msg("b64_decode accepted \"%s\"", bad[i]);
    }
    /* an embedded NUL is a bad character */
    assert_int_equal(b64_decode("TW\0u", 4, out, sizeof(out)), -1);
    assert_int_equal(b64_decode("TQ\0=", 4, out, sizeof(out)), -1);
}

static void test_b64_capacity(void **state)
{
    unsigned char out[16];
    /* exactly fitting succeeds without writing past the capacity; one short fails */
    static const struct {
        const char *in;
        size_t need;
    } cases[] = {{"TWFu", 3}, {"TWE=", 2}, {"TQ==", 1}, {"TWFuTWFu", 6}, {"TWFuTWE=", 5}, {"TWFuTQ==", 4}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 0xAA, sizeof(out));
        assert_int_equal(dec(cases[i].in, out, cases[i].need), (long)cases[i].need);
        for (size_t k = cases[i].need; k < sizeof(out); k++)
            assert_int_equal(out[k], 0xAA);
        memset(out, 0xAA, sizeof(out));
        assert_int_equal(dec(cases[i].in, out, cases[i].need - 1), -1);
    }
    assert_int_equal(dec("TWFu", out, 0), -1);
}

static void test_b64_roundtrip(void **state)
{
    unsigned char in[300], back[300];
    char enc[B64_ENCODED_LEN(300) + 1];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(in); len++) {
        long n = b64_encode(in, len, enc, sizeof(enc));
        assert_int_equal(n, (long)B64_ENCODED_LEN(len));
        assert_int_equal(strlen(enc), (size_t)n);
        assert_int_equal(b64_decode(enc, (size_t)n, back, len), (long)len);
        assert_memory_equal(in, back, len);
    }
    assert_int_equal(b64_encode((const unsigned char *)"Man", 3, enc, sizeof(enc)), 4);
    assert_string_equal(enc, "TWFu");
    assert_int_equal(b64_encode((const unsigned char *)"M", 1, enc, sizeof(enc)), 4);
    assert_string_equal(enc, "TQ==");
    assert_int_equal(b64_encode((const unsigned char *)"", 0, enc, sizeof(enc)), 0);
    assert_string_equal(enc, "");
    /* capacity: the encoding plus its NUL */
    assert_int_equal(b64_encode((const unsigned char *)"Ma", 2, enc, 5), 4);
    assert_string_equal(enc, "TWE=");
    assert_int_equal(b64_encode((const unsigned char *)"Ma", 2, enc, 4), -1);
    assert_int_equal(b64_encode((const unsigned char *)"", 0, enc, 0), -1);
}

/* ---- log_quote ---- */

static const char *quote(char *buf, size_t bufsz, const char *s, size_t len)
{
    return log_quote(buf, bufsz, s, len);
}

static void test_log_quote(void **state)
{
    char b[128];
    assert_string_equal(quote(b, sizeof(b), "alice", 5), "\"alice\"");
    assert_string_equal(quote(b, sizeof(b), "", 0), "\"\"");
    assert_string_equal(quote(b, sizeof(b), "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    assert_string_equal(quote(b, sizeof(b), "\r\n\t\0\x1f\x7f", 6), "\"\\x0d\\x0a\\x09\\x00\\x1f\\x7f\"");
    assert_string_equal(quote(b, sizeof(b), "caf\xc3\xa9", 5), "\"caf\\xc3\\xa9\"");
    assert_string_equal(quote(b, sizeof(b), "\xff", 1), "\"\\xff\"");
    assert_string_equal(quote(b, sizeof(b), " ~", 2), "\" ~\"");
    /* a forged log field stays inside the quotes */
    assert_string_equal(quote(b, sizeof(b), "x\" event=login user=\"root", 25),
                        "\"x\\\" event=login user=\\\"root\"");
    /* only len bytes are read */
    assert_string_equal(quote(b, sizeof(b), "abcdef", 3), "\"abc\"");
}

static void test_log_quote_truncation(void **state)
{
    char b[64];
    /* room for 5 characters plus two quotes and the NUL */
    memset(b, 'Z', sizeof(b));
    assert_string_equal(quote(b, 8, "abcdefghij", 10), "\"abcde\"");
    assert_int_equal(b[8], 'Z'); /* nothing written past dstsz */
    /* an escape is never split */
    memset(b, 'Z', sizeof(b));
    assert_string_equal(quote(b, 7, "ab\x01", 3), "\"ab\"");
    assert_string_equal(quote(b, 8, "ab\x01", 3), "\"ab\"");
    assert_string_equal(quote(b, 9, "ab\x01", 3), "\"ab\\x01\"");
    assert_string_equal(quote(b, 6, "a\\", 2), "\"a\\\\\"");
    assert_string_equal(quote(b, 5, "a\\", 2), "\"a\"");
    /* the smallest buffer that holds a quoted value */
    memset(b, 'Z', sizeof(b));
    assert_string_equal(quote(b, 3, "abc", 3), "\"\"");
    assert_int_equal(b[3], 'Z');
    /* smaller still: empty, NUL-terminated, nothing past the end */
    memset(b, 'Z', sizeof(b));
    assert_string_equal(quote(b, 2, "abc", 3), "");
    assert_int_equal(b[1], 'Z');
    memset(b, 'Z', sizeof(b));
    assert_string_equal(quote(b, 1, "abc", 3), "");
    assert_int_equal(b[1], 'Z');
    memset(b, 'Z', sizeof(b));
    quote(b, 0, "abc", 3);
    assert_int_equal(b[0], 'Z');
    /* every size: NUL-terminated, starts and ends with a quote, within bounds */
    const char *src = "\x01\"\\abc\xe9xyz";
    for (size_t sz = 3; sz < sizeof(b); sz++) {
        memset(b, 'Z', sizeof(b));
        quote(b, sz, src, strlen(src));
        size_t n = strlen(b);
        assert_true(n < sz);
        assert_true(n >= 2);
        assert_int_equal(b[0], '"');
        assert_int_equal(b[n - 1], '"');
        for (size_t k = sz; k < sizeof(b); k++)
            assert_int_equal(b[k], 'Z');
    }
}

/* ---- secret, error ---- */

static void test_secret_equal(void **state)
{
    assert_true(secret_equal("abcd", "abcd", 4));
    assert_false(secret_equal("abcd", "xbcd", 4));
    assert_false(secret_equal("abcd", "abcx", 4));
    assert_true(secret_equal("abcd", "abcx", 3));
    assert_true(secret_equal("a", "b", 0));
    assert_false(secret_equal("\0\0", "\0\1", 2));

    char buf[8] = "secret!";
    secret_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    secret_wipe(NULL, 10); /* tolerated */

    char *s = strdup("pw");
    assert_non_null(s);
    secret_free_str(&s);
    assert_null(s);
    secret_free_str(&s); /* NULL is fine */

    unsigned char r1[32] = {0}, r2[32] = {0};
    assert_int_equal(secret_random(r1, sizeof(r1)), 0);
    assert_int_equal(secret_random(r2, sizeof(r2)), 0);
    assert_false(secret_equal(r1, r2, sizeof(r1)));
}

static void test_error(void **state)
{
    struct error e;
    assert_int_equal(error_set(&e, "x=%d %s", 5, "y"), -1);
    assert_string_equal(e.msg, "x=5 y");
    assert_int_equal(error_set(NULL, "ignored"), -1);
    assert_int_equal(error_set_errno(&e, ENOENT, "open %s", "f"), -1);
    assert_string_equal(e.msg, "open f: No such file or directory");
    assert_int_equal(error_set_errno(NULL, ENOENT, "x"), -1);
    /* a long message is truncated, NUL-terminated */
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    error_set(&e, "%s", big);
    assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
    error_set_errno(&e, EIO, "%s", big);
    assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
}

/* secret_mac: HMAC-SHA256 with a NUL after each part (vector from `openssl dgst -mac HMAC`). */
static void test_secret_mac(void **state)
{
    static const unsigned char want[] = {0x6d, 0x8d, 0x83, 0xc2, 0x10, 0xcf, 0xa2, 0x7d};
    unsigned char out[8], other[8];
    const void *parts[] = {"ab", "c"};
    const size_t lens[] = {2, 1};
    assert_int_equal(secret_mac("k3y", 3, parts, lens, 2, out, sizeof(out)), 0);
    assert_memory_equal(out, want, sizeof(want));
    const void *shifted[] = {"a", "bc"};
    const size_t shifted_lens[] = {1, 2};
    assert_int_equal(secret_mac("k3y", 3, shifted, shifted_lens, 2, other, sizeof(other)), 0);
    assert_memory_not_equal(out, other, sizeof(out)); /* the separator keeps parts apart */
}

/* secret_mac keeps a keyed template per key and thread (4 slots): more keys
 * than slots, a key longer than a slot holds, and keys that differ only in
 * their last byte must all give the same answers as the first time. */
static void test_secret_mac_key_templates(void **state)
{
    static const unsigned char want[] = {0x6d, 0x8d, 0x83, 0xc2, 0x10, 0xcf, 0xa2, 0x7d};
    const void *parts[] = {"ab", "c"};
    const size_t lens[] = {2, 1};
    unsigned char keys[7][80], first[7][32], again[32];
    for (int k = 0; k < 7; k++) {
        memset(keys[k], 'K', sizeof(keys[k]));
        keys[k][k == 6 ? 79 : 15] = (unsigned char)('a' + k); /* key 6: 80 bytes, beyond a slot */
    }
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 7; k++) {
            size_t kl = k == 6 ? 80 : 16;
            assert_int_equal(secret_mac(keys[k], kl, parts, lens, 2, round == 0 ? first[k] : again, 32), 0);
            if (round > 0)
                assert_memory_equal(again, first[k], 32);
        }
    for (int k = 1; k < 7; k++)
        assert_memory_not_equal(first[0], first[k], 32);
    unsigned char out[8];
    assert_int_equal(secret_mac("k3y", 3, parts, lens, 2, out, sizeof(out)), 0);
    assert_memory_equal(out, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u32_ok),
        cmocka_unit_test(test_u32_bad),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_b64_valid),
        cmocka_unit_test(test_b64_bad),
        cmocka_unit_test(test_b64_capacity),
        cmocka_unit_test(test_b64_roundtrip),
        cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_log_quote_truncation),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_secret_mac),
        cmocka_unit_test(test_secret_mac_key_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
