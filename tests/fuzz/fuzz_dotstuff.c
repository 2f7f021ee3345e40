/* libFuzzer target for the RETR/TOP wire conversion.
 * Input: byte 0 selects the mode (high bit set: TOP with (byte & 7) body
 * lines, else RETR), byte 1 seeds the chunk sizes, the rest is the message.
 * Checks, aborting on any mismatch:
 *   - chunked feeding gives exactly the whole-buffer output and wire_bytes;
 *   - the output is well formed: ends in ".\r\n" on a line of its own, and
 *     every line-start dot is doubled (so no early terminator is possible);
 *   - RETR: un-stuffing gives the input with bare LF -> CRLF (plus CRLF if
 *     the last line was unterminated), wire_bytes is that length without the
 *     added CRLF, and dotstuff_count() agrees for any chunking;
 *   - TOP: the un-stuffed output is a prefix of the RETR content, cut after
 *     the header and exactly n body lines when it is shorter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "store/dotstuff.h"

static size_t next_chunk(uint8_t seed, size_t k)
{
    return 1 + (size_t)((seed * (k + 7) + k * k) % 37);
}

/* Converts; chunked when seed_on, else whole. Returns output length. */
static size_t convert(const uint8_t *in, size_t len, long long top, int seed_on, uint8_t seed,
                      unsigned char *out, uint64_t *wire)
{
    struct dotstuff st;
    dotstuff_init(&st, top);
    size_t o = 0, i = 0, k = 0;
    while (i < len) {
        size_t n = seed_on ? next_chunk(seed, k++) : len;
        if (n > len - i)
            n = len - i;
        size_t w = dotstuff_feed(&st, in + i, n, out + o);
        CHECK(w <= DOTSTUFF_OUT_MAX(n));
        o += w;
        i += n;
    }
    size_t fin = dotstuff_finish(&st, out + o);
    CHECK(fin <= 5);
    o += fin;
    *wire = st.wire_bytes;
    return o;
}

/* Strips the terminator and the stuffing dots. Aborts on malformed output. */
static size_t unstuff(const unsigned char *w, size_t len, unsigned char *out)
{
    CHECK(len >= 3 && memcmp(w + len - 3, ".\r\n", 3) == 0);
    len -= 3;
    CHECK(len == 0 || (len >= 2 && w[len - 2] == '\r' && w[len - 1] == '\n'));
    size_t o = 0;
    int bol = 1;
    for (size_t i = 0; i < len; i++) {
        if (bol && w[i] == '.') {
            CHECK(i + 1 < len && w[i + 1] == '.');
            i++;
        }
        CHECK(w[i] != '\n' || (i > 0 && w[i - 1] == '\r')); /* no bare LF on the wire */
        out[o++] = w[i];
        bol = w[i] == '\n';
    }
    return o;
}

/* Body lines in normalised content r[0..len): LFs after the first empty line.
 * Sets *header_done if that empty line was seen. */
static uint64_t body_lines(const unsigned char *r, size_t len, int *header_done)
{
    uint64_t n = 0;
    size_t line_start = 0;
    *header_done = 0;
    for (size_t i = 0; i < len; i++) {
        if (r[i] != '\n')
            continue;
        if (*header_done)
            n++;
        else if (i - line_start == 1) /* the line is just "\r\n" */
            *header_done = 1;
        line_start = i + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    long long top = (data[0] & 0x80) ? (long long)(data[0] & 7) : -1;
    uint8_t seed = data[1];
    const uint8_t *in = data + 2;
    size_t len = size - 2;

    size_t cap = DOTSTUFF_OUT_MAX(len) + 5;
    unsigned char *a = malloc(cap), *b = malloc(cap), *r = malloc(cap), *e = malloc(cap);
    CHECK(a && b && r && e);

    uint64_t wa, wb;
    size_t la = convert(in, len, top, 0, seed, a, &wa);
    size_t lb = convert(in, len, top, 1, seed, b, &wb);
    CHECK(la == lb && memcmp(a, b, la) == 0 && wa == wb);

    size_t lr = unstuff(a, la, r);
    /* Expected RETR content: LF -> CRLF unless after CR, then CRLF if unterminated. */
    size_t le = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            e[le++] = '\r';
        e[le++] = in[i];
    }
    size_t content = le;
    if (len > 0 && in[len - 1] != '\n') {
        e[le++] = '\r';
        e[le++] = '\n';
    }
    CHECK(lr <= le && memcmp(r, e, lr) == 0);
    if (top < 0) {
        CHECK(lr == le);
        CHECK(wa == content);
        /* The LIST size: count, in chunks, must say the same. */
        struct dotstuff c;
        dotstuff_init(&c, -1);
        size_t i = 0, k = 0;
        while (i < len) {
            size_t n = next_chunk((uint8_t)(seed ^ 0x5a), k++);
            if (n > len - i)
                n = len - i;
            dotstuff_count(&c, in + i, n);
            i += n;
        }
        CHECK(c.wire_bytes == content);
    } else {
        CHECK(wa == (lr <= content ? lr : content));
        int header_done;
        uint64_t lines = body_lines(r, lr, &header_done);
        if (lr < le) {
            /* Cut short: after the header and exactly top body lines. */
            CHECK(header_done && lines == (uint64_t)top && lr > 0 && r[lr - 1] == '\n');
        } else {
            CHECK(lines <= (uint64_t)top);
        }
    }
    free(a);
    free(b);
    free(r);
    free(e);
    return 0;
}
