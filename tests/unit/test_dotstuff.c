/* RETR/TOP wire conversion: exact outputs on tricky inputs, chunking
 * independence (1 byte at a time == whole buffer), and agreement of
 * dotstuff_count() with what dotstuff_feed() emits. */
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

#include "store/dotstuff.h"

struct result {
    unsigned char *out;
    size_t len;
    uint64_t wire;
};

/* Converts in[0..len) fed in chunks of `chunk` bytes (0 = all at once). */
static struct result convert(const char *in, size_t len, long long top, size_t chunk)
{
    struct result r;
    r.out = malloc(DOTSTUFF_OUT_MAX(len) + 5);
    assert_non_null(r.out);
    struct dotstuff st;
    dotstuff_init(&st, top);
    size_t o = 0;
    if (chunk == 0)
        chunk = len != 0 ? len : 1;
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        size_t w = dotstuff_feed(&st, (const unsigned char *)in + i, n, r.out + o);
        assert_true(w <= DOTSTUFF_OUT_MAX(n));
        o += w;
    }
    o += dotstuff_finish(&st, r.out + o);
    r.len = o;
    r.wire = st.wire_bytes;
    return r;
}

static uint64_t count(const char *in, size_t len, size_t chunk)
{
    struct dotstuff st;
    dotstuff_init(&st, -1);
    if (chunk == 0)
        chunk = len != 0 ? len : 1;
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        dotstuff_count(&st, (const unsigned char *)in + i, n);
    }
    return st.wire_bytes;
}

/* Checks the exact wire form for every chunk size 0 (whole), 1, 2, 3. */
static void expect_len(const char *in, size_t len, long long top, const char *want, size_t want_len,
                       uint64_t want_wire)
{
    static const size_t chunks[] = {0, 1, 2, 3};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct result r = convert(in, len, top, chunks[c]);
        if (r.len != want_len || memcmp(r.out, want, r.len) != 0)
            fail_msg("chunk %zu top %lld: got \"%.*s\" want \"%s\"", chunks[c], top, (int)r.len,
                     (const char *)r.out, want);
        assert_int_equal(r.wire, want_wire);
        free(r.out);
    }
}

static void expect(const char *in, long long top, const char *want, uint64_t want_wire)
{
    expect_len(in, strlen(in), top, want, strlen(want), want_wire);
}

static void test_lf(void **state)
{
    expect("a\nb\n", -1, "a\r\nb\r\n.\r\n", 6);
    assert_int_equal(count("a\nb\n", 4, 0), 6);
}

static void test_crlf(void **state)
{
    expect("a\r\nb\r\n", -1, "a\r\nb\r\n.\r\n", 6);
    assert_int_equal(count("a\r\nb\r\n", 6, 1), 6);
}

static void test_mixed(void **state)
{
    expect("a\nb\r\nc\n\r\n\n", -1, "a\r\nb\r\nc\r\n\r\n\r\n.\r\n", 13);
}

static void test_bare_cr(void **state)
{
    /* A bare CR is data, not a line end: passed through, no stuffing after it. */
    expect("a\rb\n", -1, "a\rb\r\n.\r\n", 5);
    expect("\r\r\n", -1, "\r\r\n.\r\n", 3);
    expect("a\r.\n", -1, "a\r.\r\n.\r\n", 5);
    expect("\r", -1, "\r\r\n.\r\n", 1);
    expect("x\r\r\r", -1, "x\r\r\r\r\n.\r\n", 4);
}

static void test_dots(void **state)
{
    expect(".\n", -1, "..\r\n.\r\n", 3);
    expect("..x\n.y\r\n", -1, "...x\r\n..y\r\n.\r\n", 9);
    expect("a.b\n.\n", -1, "a.b\r\n..\r\n.\r\n", 8);
    expect(".", -1, "..\r\n.\r\n", 1);
    expect("\n.\n\n.", -1, "\r\n..\r\n\r\n..\r\n.\r\n", 8);
}

static void test_unterminated(void **state)
{
    expect("abc", -1, "abc\r\n.\r\n", 3);
    expect("a\nb", -1, "a\r\nb\r\n.\r\n", 4);
    expect(".x", -1, "..x\r\n.\r\n", 2);
}

static void test_empty(void **state)
{
    expect("", -1, ".\r\n", 0);
    expect("", 0, ".\r\n", 0);
    expect("", 5, ".\r\n", 0);
    assert_int_equal(count("", 0, 0), 0);
}

static void test_nul_bytes(void **state)
{
    /* Binary bytes pass unchanged (length-based, not string-based). */
    expect_len("a\0b\n", 4, -1, "a\0b\r\n.\r\n", 8, 5);
}

static const char top_msg[] = "H1: a\nH2: b\n\nl1\nl2\n.l3\nl4";

static void test_top_0(void **state)
{
    expect(top_msg, 0, "H1: a\r\nH2: b\r\n\r\n.\r\n", 16);
}

static void test_top_1(void **state)
{
    expect(top_msg, 1, "H1: a\r\nH2: b\r\n\r\nl1\r\n.\r\n", 20);
}

static void test_top_3(void **state)
{
    expect(top_msg, 3, "H1: a\r\nH2: b\r\n\r\nl1\r\nl2\r\n..l3\r\n.\r\n", 29);
}

static void test_top_large(void **state)
{
    /* More lines than the body has: the whole message, last line completed. */
    const char *whole = "H1: a\r\nH2: b\r\n\r\nl1\r\nl2\r\n..l3\r\nl4\r\n.\r\n";
    expect(top_msg, 4, whole, 31);
    expect(top_msg, 1000000, whole, 31);
    expect(top_msg, -1, whole, 31);
}

static void test_top_crlf_header(void **state)
{
    expect("H: a\r\n\r\nbody\r\n", 0, "H: a\r\n\r\n.\r\n", 8);
    /* A line holding only CR before LF is the empty line too. */
    expect("H: a\n\r\nbody\n", 0, "H: a\r\n\r\n.\r\n", 8);
    /* "\r\r" is not empty: still header, so everything is sent. */
    expect("H: a\n\r\r\nb\n", 0, "H: a\r\n\r\r\nb\r\n.\r\n", 12);
    /* A CR then text is not empty either. */
    expect("H: a\n\rx\n\nb\n", 0, "H: a\r\n\rx\r\n\r\n.\r\n", 12);
}

static void test_top_header_only(void **state)
{
    /* No empty line: the whole message is header. */
    expect("H1: a\nH2: b\n", 0, "H1: a\r\nH2: b\r\n.\r\n", 14);
    expect("H1: a\nH2: b", 0, "H1: a\r\nH2: b\r\n.\r\n", 12);
    expect("H1: a\n", 1, "H1: a\r\n.\r\n", 7);
}

static void test_top_empty_lines(void **state)
{
    /* Message starting with the empty line: no header at all. */
    expect("\nb1\nb2\n", 1, "\r\nb1\r\n.\r\n", 6);
    expect("\nb1\nb2\n", 0, "\r\n.\r\n", 2);
    /* Empty body lines count as lines. */
    expect("H\n\n\n\n\nx\n", 2, "H\r\n\r\n\r\n\r\n.\r\n", 9);
    /* An unterminated last body line within the limit. */
    expect("H\n\nabc", 5, "H\r\n\r\nabc\r\n.\r\n", 8);
    /* A dot line within the TOP output is still stuffed. */
    expect("H\n\n.\n", 1, "H\r\n\r\n..\r\n.\r\n", 8);
}

static void test_feed_after_done(void **state)
{
    struct dotstuff st;
    unsigned char out[64];
    dotstuff_init(&st, 0);
    size_t n = dotstuff_feed(&st, (const unsigned char *)"H\n\n", 3, out);
    assert_int_equal(n, 5);
    assert_true(st.done);
    assert_int_equal(dotstuff_feed(&st, (const unsigned char *)"more\n", 5, out), 0);
    assert_int_equal(dotstuff_finish(&st, out), 3);
    assert_memory_equal(out, ".\r\n", 3);
}

static void test_split_boundaries(void **state)
{
    /* CR | LF split across chunks must not produce a second CR. */
    struct dotstuff st;
    unsigned char out[64];
    size_t o = 0;
    dotstuff_init(&st, -1);
    o += dotstuff_feed(&st, (const unsigned char *)"a\r", 2, out + o);
    o += dotstuff_feed(&st, (const unsigned char *)"\n", 1, out + o);
    /* LF | '.' split: the dot still starts a line. */
    o += dotstuff_feed(&st, (const unsigned char *)".", 1, out + o);
    o += dotstuff_feed(&st, (const unsigned char *)"b", 1, out + o);
    o += dotstuff_feed(&st, NULL, 0, out + o);
    o += dotstuff_finish(&st, out + o);
    assert_int_equal(o, strlen("a\r\n..b\r\n.\r\n"));
    assert_memory_equal(out, "a\r\n..b\r\n.\r\n", o);
    assert_int_equal(st.wire_bytes, 5);
}

/* Removes terminator, added CRLF and stuffing dots; returns the length of
 * the un-stuffed content, or fails the test if the wire form is malformed. */
static size_t unstuff(const unsigned char *w, size_t len, unsigned char *out)
{
    assert_true(len >= 3);
    assert_memory_equal(w + len - 3, ".\r\n", 3);
    len -= 3;
    assert_true(len == 0 || (len >= 2 && w[len - 2] == '\r' && w[len - 1] == '\n'));
    size_t o = 0;
    bool bol = true;
    for (size_t i = 0; i < len; i++) {
        if (bol && w[i] == '.') {
            assert_true(i + 1 < len && w[i + 1] == '.');
            i++;
        }
        out[o++] = w[i];
        bol = w[i] == '\n';
    }
    return o;
}

static size_t normalise(const unsigned char *in, size_t len, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = in[i];
    }
    return o;
}

static void test_random_chunking(void **state)
{
    /* Inputs dense in CR, LF and dots: every chunking gives the same bytes,
     * un-stuffing gives the normalised input, and count agrees with feed. */
    static const char alphabet[] = "\r\n.a";
    enum { N = 3000 };
    char *in = malloc(N);
    unsigned char *norm = malloc(2 * N + 2), *back = malloc(2 * N + 5);
    assert_non_null(in);
    assert_non_null(norm);
    assert_non_null(back);
    uint32_t seed = 12345;
    for (int round = 0; round < 40; round++) {
        size_t len = (size_t)(round * 73) % N;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alphabet[(seed >> 16) & 3];
        }
        struct result whole = convert(in, len, -1, 0);
        static const size_t chunks[] = {1, 2, 3, 7, 64, 4096};
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            struct result r = convert(in, len, -1, chunks[c]);
            assert_int_equal(r.len, whole.len);
            assert_memory_equal(r.out, whole.out, r.len);
            assert_int_equal(r.wire, whole.wire);
            assert_int_equal(count(in, len, chunks[c]), whole.wire);
            free(r.out);
        }
        size_t nlen = normalise((const unsigned char *)in, len, norm);
        size_t blen = unstuff(whole.out, whole.len, back);
        bool added = len > 0 && in[len - 1] != '\n';
        assert_int_equal(blen, nlen + (added ? 2 : 0));
        assert_memory_equal(back, norm, nlen);
        assert_int_equal(whole.wire, nlen);
        for (long long top = 0; top < 4; top++) {
            struct result t1 = convert(in, len, top, 0), t2 = convert(in, len, top, 1);
            assert_int_equal(t1.len, t2.len);
            assert_memory_equal(t1.out, t2.out, t1.len);
            assert_int_equal(t1.wire, t2.wire);
            free(t1.out);
            free(t2.out);
        }
        free(whole.out);
    }
    free(in);
    free(norm);
    free(back);
}

static void test_out_max(void **state)
{
    /* Worst case: every byte doubles. */
    const char *in = ".\n.\n.\n";
    struct result r = convert(in, strlen(in), -1, 0);
    assert_int_equal(r.len, 2 * strlen(in) + 3);
    free(r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_dots),
        cmocka_unit_test(test_unterminated),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_top_0),
        cmocka_unit_test(test_top_1),
        cmocka_unit_test(test_top_3),
        cmocka_unit_test(test_top_large),
        cmocka_unit_test(test_top_crlf_header),
        cmocka_unit_test(test_top_header_only),
        cmocka_unit_test(test_top_empty_lines),
        cmocka_unit_test(test_feed_after_done),
        cmocka_unit_test(test_split_boundaries),
        cmocka_unit_test(test_random_chunking),
        cmocka_unit_test(test_out_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
