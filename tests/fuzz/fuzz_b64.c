/* libFuzzer target for strict base64.
 * Checks, aborting on any mismatch:
 *   - decoding never writes past the capacity (ASan, exact-size heap buffers);
 *   - a successful decode re-encodes to exactly the input (one accepted
 *     encoding per byte string), fits B64_DECODED_MAX, and fails with one
 *     byte less of capacity;
 *   - encoding the input and decoding it back gives the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t cap = B64_DECODED_MAX(size);
    unsigned char *out = malloc(cap + 1);
    CHECK(out != NULL);
    long n = b64_decode(in, size, out, cap);
    CHECK(n >= -1 && (n < 0 || (size_t)n <= cap));
    if (n >= 0) {
        CHECK(size % 4 == 0);
        size_t enclen = B64_ENCODED_LEN((size_t)n);
        char *enc = malloc(enclen + 1);
        CHECK(enc != NULL);
        CHECK(b64_encode(out, (size_t)n, enc, enclen + 1) == (long)enclen);
        CHECK(enclen == size && memcmp(enc, in, size) == 0);
        free(enc);
        if (n > 0) {
            /* exactly n bytes of room: same answer; one less: refused */
            unsigned char *exact = malloc((size_t)n);
            CHECK(exact != NULL);
            CHECK(b64_decode(in, size, exact, (size_t)n) == n && memcmp(exact, out, (size_t)n) == 0);
            CHECK(b64_decode(in, size, exact, (size_t)n - 1) == -1);
            free(exact);
        }
    }
    free(out);

    /* the other direction: any bytes survive encode + decode */
    size_t enclen = B64_ENCODED_LEN(size);
    char *enc = malloc(enclen + 1);
    unsigned char *back = malloc(size + 1);
    CHECK(enc != NULL && back != NULL);
    CHECK(b64_encode(data, size, enc, enclen) == -1); /* no room for the NUL */
    CHECK(b64_encode(data, size, enc, enclen + 1) == (long)enclen && enc[enclen] == '\0');
    CHECK(b64_decode(enc, enclen, back, size) == (long)size);
    CHECK(memcmp(back, data, size) == 0);
    free(enc);
    free(back);
    return 0;
}
