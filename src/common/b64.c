#include "common/b64.h"

#include <openssl/evp.h>
#include <string.h>

/* OpenSSL's EVP_DecodeBlock does the arithmetic; it accepts stray whitespace and
 * does not report padding, so we validate the alphabet and padding ourselves first. */
static int b64_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

long b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    if (len % 4 != 0 || len > (size_t)1 << 30)
        return -1;
    if (len == 0)
        return 0;
    size_t pad = 0;
    if (in[len - 1] == '=')
        pad = (in[len - 2] == '=') ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char_ok((unsigned char)in[i]))
            return -1;
    size_t need = len / 4 * 3;
    if (need - pad > outcap)
        return -1;
    unsigned char tmp[3];
    /* Decode full quads straight into out, and the last quad through tmp so a
     * padded tail never writes past the caller's capacity. */
    size_t head = len - 4;
    if (head > 0 && EVP_DecodeBlock(out, (const unsigned char *)in, (int)head) != (int)(head / 4 * 3))
        return -1;
    if (EVP_DecodeBlock(tmp, (const unsigned char *)in + head, 4) != 3)
        return -1;
    /* RFC 4648 3.5: the bits under the padding must be zero, otherwise "TQ==",
     * "TR==", ... all decode to "M". Accept only the canonical encoding of the
     * tail, so each byte string has exactly one accepted form. */
    unsigned char canon[5];
    if (EVP_EncodeBlock(canon, tmp, (int)(3 - pad)) != 4 || memcmp(canon, in + head, 4) != 0)
        return -1;
    memcpy(out + head / 4 * 3, tmp, 3 - pad);
    return (long)(need - pad);
}

long b64_encode(const unsigned char *in, size_t len, char *out, size_t outcap)
{
    if (outcap < B64_ENCODED_LEN(len) + 1 || len > (size_t)1 << 29)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}
