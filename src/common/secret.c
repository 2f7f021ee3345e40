#include "common/secret.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
}

void secret_free_str(char **s)
{
    if (*s == NULL)
        return;
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

bool secret_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int secret_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}
