/* TOTP: RFC 6238 Appendix B vectors (SHA-1), the ±1-step window, the replay
 * rule, secrets and otpauth URIs; and the terminal QR code of popsctl (its
 * drawing parsed back into modules and compared with libqrencode's matrix).
 *
 * The collision vector (steps 50897033 and 50897035 of the RFC secret both give
 * 407517) was found by a search in Python's hmac over the RFC secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <liboath/oath.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/totp.h"
#include "ctl/qr.c" /* popsctl's; unit tests link only the library */

#define RFC_SECRET "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" /* base32("12345678901234567890") */

static const struct {
    time_t t;
    const char *code8;
} rfc6238[] = {
    {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
    {1234567890, "89005924"}, {2000000000, "69279037"}, {(time_t)20000000000LL, "65353130"},
};

static void test_rfc6238_vectors(void **state)
{
    for (size_t i = 0; i < sizeof(rfc6238) / sizeof(rfc6238[0]); i++) {
        char code[9];
        struct error err = {{0}};
        assert_int_equal(totp_code_at(RFC_SECRET, rfc6238[i].t, 8, code, sizeof(code), &err), 0);
        assert_string_equal(code, rfc6238[i].code8);
        /* 6 digits are the value mod 10^6: the last six of the 8-digit code. */
        assert_int_equal(totp_code_at(RFC_SECRET, rfc6238[i].t, 6, code, sizeof(code), &err), 0);
        assert_string_equal(code, rfc6238[i].code8 + 2);
        int64_t step = -1;
        assert_int_equal(totp_verify(RFC_SECRET, rfc6238[i].code8 + 2, rfc6238[i].t, 0, &step, &err),
                         TOTP_OK);
        assert_int_equal(step, (int64_t)rfc6238[i].t / 30);
    }
}

static void test_window(void **state)
{
    const time_t t = 1111111111; /* step 37037037, code 050471 */
    const int64_t s = t / 30;
    struct error err = {{0}};
    int64_t step;
    char code[7];
    for (int d = -3; d <= 3; d++) {
        assert_int_equal(totp_code_at(RFC_SECRET, t + 30 * d, 6, code, sizeof(code), &err), 0);
        int r = totp_verify(RFC_SECRET, code, t, 0, &step, &err);
        if (d >= -TOTP_WINDOW && d <= TOTP_WINDOW) {
            assert_int_equal(r, TOTP_OK);
            assert_int_equal(step, s + d);
        } else {
            assert_int_equal(r, TOTP_WRONG);
        }
    }
    assert_int_equal(totp_verify(RFC_SECRET, "000000", t, 0, &step, &err), TOTP_WRONG);
    /* Not 6 digits: simply wrong, never a match of a prefix. */
    assert_int_equal(totp_verify(RFC_SECRET, "05047", t, 0, &step, &err), TOTP_WRONG);
    assert_int_equal(totp_verify(RFC_SECRET, "0504710", t, 0, &step, &err), TOTP_WRONG);
    assert_int_equal(totp_verify(RFC_SECRET, "", t, 0, &step, &err), TOTP_WRONG);
}

static void test_replay(void **state)
{
    const time_t t = 1111111111;
    const int64_t s = t / 30;
    struct error err = {{0}};
    int64_t step;
    assert_int_equal(totp_verify(RFC_SECRET, "050471", t, s - 1, &step, &err), TOTP_OK);
    assert_int_equal(step, s);
    /* Once step s is used, its code is refused for the rest of the window... */
    assert_int_equal(totp_verify(RFC_SECRET, "050471", t, s, &step, &err), TOTP_REPLAYED);
    assert_int_equal(totp_verify(RFC_SECRET, "050471", t + 30, s, &step, &err), TOTP_REPLAYED);
    /* ...and so is an older step's code, even inside the window. */
    char prev[7];
    assert_int_equal(totp_code_at(RFC_SECRET, t - 30, 6, prev, sizeof(prev), &err), 0);
    assert_int_equal(totp_verify(RFC_SECRET, prev, t, s, &step, &err), TOTP_REPLAYED);
    /* The next step's code still works. */
    char next[7];
    assert_int_equal(totp_code_at(RFC_SECRET, t + 30, 6, next, sizeof(next), &err), 0);
    assert_int_equal(totp_verify(RFC_SECRET, next, t, s, &step, &err), TOTP_OK);
    assert_int_equal(step, s + 1);
}

static void test_newest_match_wins(void **state)
{
    /* 407517 is the code of both steps 50897033 and 50897035: with 50897033 used,
     * it is still the fresh code of 50897035, not a replay. */
    const time_t t = (time_t)50897034 * 30 + 7;
    struct error err = {{0}};
    int64_t step;
    assert_int_equal(totp_verify(RFC_SECRET, "407517", t, 0, &step, &err), TOTP_OK);
    assert_int_equal(step, 50897035);
    assert_int_equal(totp_verify(RFC_SECRET, "407517", t, 50897033, &step, &err), TOTP_OK);
    assert_int_equal(step, 50897035);
    assert_int_equal(totp_verify(RFC_SECRET, "407517", t, 50897035, &step, &err), TOTP_REPLAYED);
}

static void test_bad_secret(void **state)
{
    struct error err = {{0}};
    int64_t step;
    char code[7];
    assert_int_equal(totp_verify("GEZDGNBVGY3TQOJQ", "123456", 1111111111, 0, &step, &err),
                     TOTP_ERROR); /* 80 bits */
    assert_int_equal(totp_verify("gezdgnbvgy3tqojqgezdgnbvgy3tqojq", "123456", 1111111111, 0, &step, &err),
                     TOTP_ERROR);
    assert_int_equal(totp_verify(RFC_SECRET "=", "123456", 1111111111, 0, &step, &err), TOTP_ERROR);
    assert_int_equal(totp_verify("GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ", "123456", 1111111111, 0, &step, &err),
                     TOTP_ERROR);
    assert_int_equal(totp_code_at(RFC_SECRET, 59, 9, code, sizeof(code), &err), -1);
    assert_int_equal(totp_code_at(RFC_SECRET, 59, 6, code, 6, &err), -1);
    assert_int_equal(totp_verify(RFC_SECRET, "123456", 10, 0, &step, &err), TOTP_ERROR); /* clock */
}

static void test_code_syntax(void **state)
{
    assert_true(totp_code_syntax_ok("123456"));
    assert_true(totp_code_syntax_ok("000000"));
    assert_false(totp_code_syntax_ok("12345"));
    assert_false(totp_code_syntax_ok("1234567"));
    assert_false(totp_code_syntax_ok("12345a"));
    assert_false(totp_code_syntax_ok(" 12345"));
    assert_false(totp_code_syntax_ok(""));
    assert_false(totp_code_syntax_ok(NULL));
}

static void test_secret_new(void **state)
{
    char a[TOTP_SECRET_B32_MAX], b[TOTP_SECRET_B32_MAX];
    struct error err = {{0}};
    assert_int_equal(totp_secret_new(a, &err), 0);
    assert_int_equal(totp_secret_new(b, &err), 0);
    assert_int_equal(strlen(a), 32); /* 160 bits, no padding */
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 32);
    assert_string_not_equal(a, b);
    char *raw = NULL;
    size_t rawlen = 0;
    assert_int_equal(oath_base32_decode(a, strlen(a), &raw, &rawlen), OATH_OK);
    assert_int_equal(rawlen, TOTP_SECRET_LEN);
    free(raw);
    /* A fresh secret works with its own codes. */
    char code[7];
    int64_t step;
    assert_int_equal(totp_code_at(a, 1700000000, 6, code, sizeof(code), &err), 0);
    assert_int_equal(totp_verify(a, code, 1700000000, 0, &step, &err), TOTP_OK);
}

static void test_uri(void **state)
{
    char uri[TOTP_URI_MAX];
    struct error err = {{0}};
    assert_int_equal(totp_uri("Example Co", "alice@example.com", RFC_SECRET, uri, sizeof(uri), &err), 0);
    assert_string_equal(uri, "otpauth://totp/Example%20Co:alice%40example.com?secret=" RFC_SECRET
                             "&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30");
    assert_int_equal(totp_uri("popsd", "b&b?x=1#y/z", RFC_SECRET, uri, sizeof(uri), &err), 0);
    assert_string_equal(uri, "otpauth://totp/popsd:b%26b%3Fx%3D1%23y%2Fz?secret=" RFC_SECRET
                             "&issuer=popsd&algorithm=SHA1&digits=6&period=30");
    assert_int_equal(totp_uri("popsd", "j\xc3\xbcrgen", RFC_SECRET, uri, sizeof(uri), &err), 0);
    assert_non_null(strstr(uri, "popsd:j%C3%BCrgen?"));
    /* ':' would split the label; control bytes have no place in it. */
    assert_int_equal(totp_uri("a:b", "alice", RFC_SECRET, uri, sizeof(uri), &err), -1);
    assert_int_equal(totp_uri("", "alice", RFC_SECRET, uri, sizeof(uri), &err), -1);
    assert_int_equal(totp_uri("a\nb", "alice", RFC_SECRET, uri, sizeof(uri), &err), -1);
    assert_false(totp_issuer_valid("01234567890123456789012345678901234567890123456789012345678901234"));
    assert_true(totp_issuer_valid("Example Co"));
    assert_int_equal(totp_uri("popsd", "alice", "NOTBASE32!", uri, sizeof(uri), &err), -1);
    assert_int_equal(totp_uri("popsd", "alice", RFC_SECRET, uri, 60, &err), -1);
    assert_string_equal(uri, ""); /* no half-written secret left behind */
}

/* ---- the terminal QR code ---- */

/* Parses qr_draw's output back into a square matrix (1 = dark). Returns its side. */
static int parse_drawing(const char *s, unsigned char *m, int cap)
{
    int row = 0, side = -1;
    while (*s != '\0') {
        if (strncmp(s, ANSI_ON, strlen(ANSI_ON)) == 0)
            s += strlen(ANSI_ON);
        int col = 0;
        while (*s != '\0' && *s != '\n' && *s != '\033') {
            int top = 0, bottom = 0;
            if (strncmp(s, "\u2588", 3) == 0)
                top = 0, bottom = 0, s += 3;
            else if (strncmp(s, "\u2580", 3) == 0)
                top = 0, bottom = 1, s += 3;
            else if (strncmp(s, "\u2584", 3) == 0)
                top = 1, bottom = 0, s += 3;
            else if (*s == ' ')
                top = 1, bottom = 1, s += 1;
            else
                fail_msg("unexpected byte 0x%02x in the drawing", (unsigned char)*s);
            assert_true(col < cap && row + 1 < cap);
            m[row * cap + col] = (unsigned char)top;
            m[(row + 1) * cap + col] = (unsigned char)bottom;
            col++;
        }
        if (strncmp(s, ANSI_OFF, strlen(ANSI_OFF)) == 0)
            s += strlen(ANSI_OFF);
        assert_int_equal(*s, '\n');
        s++;
        if (side < 0)
            side = col;
        assert_int_equal(col, side);
        row += 2;
    }
    assert_true(row == side || row == side + 1); /* an odd side leaves half a row of quiet zone */
    return side;
}

static void check_round_trip(const char *text, bool ansi)
{
    static char out[64 * 1024];
    static unsigned char m[256 * 256];
    struct error err = {{0}};
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(q);
    int n = qr_render(text, ansi, out, sizeof(out), &err);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    memset(m, 0, sizeof(m));
    int side = parse_drawing(out, m, 256);
    assert_int_equal(side, q->width + 2 * QR_QUIET);
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            int qx = x - QR_QUIET, qy = y - QR_QUIET;
            bool inside = qx >= 0 && qy >= 0 && qx < q->width && qy < q->width;
            int want = inside ? (q->data[qy * q->width + qx] & 1) : 0;
            if (m[y * 256 + x] != want)
                fail_msg("module (%d,%d) is %d, want %d", x, y, m[y * 256 + x], want);
        }
    QRcode_free(q);
}

static void test_qr_round_trip(void **state)
{
    check_round_trip("otpauth://totp/popsd:alice%40example.com?secret=" RFC_SECRET
                     "&issuer=popsd&algorithm=SHA1&digits=6&period=30",
                     false);
    check_round_trip("otpauth://totp/popsd:alice%40example.com?secret=" RFC_SECRET
                     "&issuer=popsd&algorithm=SHA1&digits=6&period=30",
                     true);
    check_round_trip("x", false); /* version 1, 21 modules */
}

static void test_qr_bounds(void **state)
{
    char small[100];
    struct error err = {{0}};
    assert_int_equal(qr_render("otpauth://totp/x", false, small, sizeof(small), &err), -1);
    assert_string_equal(small, "");
    unsigned char one = 1;
    assert_int_equal(qr_draw(&one, 1, false, small, 0), -1);
    assert_int_equal(qr_draw(&one, 0, false, small, sizeof(small)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_vectors), cmocka_unit_test(test_window),
        cmocka_unit_test(test_replay),          cmocka_unit_test(test_newest_match_wins),
        cmocka_unit_test(test_bad_secret),      cmocka_unit_test(test_code_syntax),
        cmocka_unit_test(test_secret_new),      cmocka_unit_test(test_uri),
        cmocka_unit_test(test_qr_round_trip),   cmocka_unit_test(test_qr_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
