/* Strict base64 (RFC 4648, with padding) for SASL: any character outside the
 * alphabet, misplaced padding or a bad length is an error rather than being
 * skipped the way lenient decoders do. */
#ifndef POPSD_COMMON_B64_H
#define POPSD_COMMON_B64_H

#include <stddef.h>

/* Decoded size never exceeds this for an input of len characters. */
#define B64_DECODED_MAX(len) (((len) / 4) * 3)
#define B64_ENCODED_LEN(len) ((((len) + 2) / 3) * 4)

/* Decodes in[0..len) into out (capacity outcap). Returns the decoded length or -1. */
long b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap);
/* Encodes into out (capacity >= B64_ENCODED_LEN(len)+1), NUL-terminated. Returns length or -1. */
long b64_encode(const unsigned char *in, size_t len, char *out, size_t outcap);

#endif
