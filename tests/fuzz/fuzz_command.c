/* libFuzzer target for POP3 command parsing and message numbers.
 * Input: byte 0 and 1 give the message count for pop3_msgnum (0..65535), the
 * rest is one command line. Checks, aborting on any mismatch:
 *   - pop3_cmd_parse() never reads or writes past len+1 bytes (ASan);
 *   - on success the keyword is 3-4 upper-case letters from the line, every
 *     argument is non-empty, space-free, NUL-terminated in place and points
 *     into the buffer, and the line is exactly "KW[ ARG[ ARG]]" again;
 *   - any control byte in the line makes it fail;
 *   - pop3_msgnum() agrees with a plain reference: 1..max, strict decimal
 *     of at most 10 digits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pop3/command.h"

/* -1 noise/zero/overflow/over 10 digits, -2 beyond max, else 0 and the index. */
static int ref_msgnum(const char *s, size_t len, uint32_t max, uint32_t *idx)
{
    if (len == 0 || len > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    if (v == 0)
        return -1;
    if (v > max)
        return -2;
    *idx = (uint32_t)v - 1;
    return 0;
}

static void check_msgnum(const char *s, size_t len, uint32_t max)
{
    uint32_t a = 7, b = 7;
    int ra = pop3_msgnum(s, len, max, &a);
    int rb = ref_msgnum(s, len, max, &b);
    CHECK(ra == rb);
    CHECK(a == b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max = (uint32_t)data[0] << 8 | data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    check_msgnum(in, len, max);
    check_msgnum(in, len, UINT32_MAX);

    char *line = malloc(len + 1); /* exactly what the contract asks for */
    CHECK(line != NULL);
    memcpy(line, in, len);
    struct pop3_cmd c;
    int r = pop3_cmd_parse(line, len, &c);
    int has_ctl = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] < 0x20 || (unsigned char)in[i] == 0x7f)
            has_ctl = 1;
    if (len == 0)
        CHECK(r == POP3_PARSE_EMPTY);
    else if (has_ctl)
        CHECK(r == POP3_PARSE_BADCHAR);
    if (r == POP3_PARSE_OK) {
        size_t kw = strlen(c.keyword);
        CHECK(kw >= 3 && kw <= 4);
        for (size_t i = 0; i < kw; i++) {
            CHECK(c.keyword[i] >= 'A' && c.keyword[i] <= 'Z');
            CHECK((in[i] & ~0x20) == c.keyword[i]);
        }
        CHECK(c.argc <= POP3_MAX_ARGS);
        /* rebuild the line */
        char *re = malloc(len + 1);
        CHECK(re != NULL);
        size_t o = kw;
        memcpy(re, in, kw);
        for (unsigned a = 0; a < c.argc; a++) {
            CHECK(c.argv[a] > line && c.argv[a] + c.arglen[a] <= line + len);
            CHECK(c.arglen[a] > 0 && strlen(c.argv[a]) == c.arglen[a]);
            CHECK(memchr(c.argv[a], ' ', c.arglen[a]) == NULL);
            CHECK(o + 1 + c.arglen[a] <= len);
            re[o++] = ' ';
            memcpy(re + o, c.argv[a], c.arglen[a]);
            o += c.arglen[a];
            check_msgnum(c.argv[a], c.arglen[a], max);
        }
        CHECK(o == len && memcmp(re, in, len) == 0);
        free(re);
    }
    free(line);
    return 0;
}
