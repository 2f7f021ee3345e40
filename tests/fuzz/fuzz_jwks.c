/* libFuzzer target for the JWKS parser (src/auth/jwks.c): the input is a key
 * set document. Checks, aborting on any mismatch:
 *   - failure leaves no set and a message in err;
 *   - a parsed set has at most JWKS_MAX_KEYS keys, and the key found for an
 *     algorithm is of that algorithm's type (RSA for RS256, EC for ES256,
 *     Ed25519 for EdDSA): a key never crosses algorithms;
 *   - lookups with no kid and with "" agree. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "conf/conf.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwks *k = (struct jwks *)&k;
    struct error err = {{0}};
    if (jwks_parse((const char *)data, size, &k, &err) < 0) {
        CHECK(k == NULL && err.msg[0] != '\0');
        return 0;
    }
    CHECK(k != NULL && jwks_count(k) <= JWKS_MAX_KEYS);
    static const struct {
        uint32_t alg;
        const char *type;
    } algs[] = {{CONF_OAUTH_RS256, "RSA"}, {CONF_OAUTH_ES256, "EC"}, {CONF_OAUTH_EDDSA, "ED25519"}};
    static const char *const kids[] = {"rsa1", "ec1", "ed1", "1", "a"};
    for (size_t i = 0; i < 3; i++) {
        const char *why = NULL, *why2 = NULL;
        EVP_PKEY *pk = jwks_find(k, algs[i].alg, NULL, &why);
        CHECK(pk == jwks_find(k, algs[i].alg, "", &why2));
        if (pk != NULL) {
            CHECK(EVP_PKEY_is_a(pk, algs[i].type));
            if (algs[i].alg == CONF_OAUTH_RS256)
                CHECK(EVP_PKEY_get_bits(pk) >= 2048);
        } else {
            CHECK(strcmp(why, "unknown_key") == 0);
        }
        for (size_t n = 0; n < sizeof(kids) / sizeof(kids[0]); n++) {
            pk = jwks_find(k, algs[i].alg, kids[n], &why);
            if (pk != NULL)
                CHECK(EVP_PKEY_is_a(pk, algs[i].type));
            else
                CHECK(strcmp(why, "unknown_key") == 0 || strcmp(why, "algorithm") == 0);
        }
    }
    jwks_free(&k);
    CHECK(k == NULL);
    return 0;
}
