/* libFuzzer target for the SASL PLAIN parser (RFC 4616).
 * Checks, aborting on any mismatch:
 *   - success means exactly "authzid NUL authcid NUL password" with a
 *     non-empty authcid and password, names free of control bytes and within
 *     SASL_NAME_MAX, a password within SASL_SECRET_MAX without NUL: the fields
 *     rebuild the input byte for byte;
 *   - failure leaves the creds all zero and a message in err;
 *   - the mechanism's step agrees with the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "sasl/sasl.h"

static int name_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sasl_creds c;
    struct error err = {{0}};
    memset(&c, 0xa5, sizeof(c));
    int r = sasl_plain_parse(data, size, &c, &err);
    if (r == 0) {
        size_t zl = strlen(c.authzid), cl = strlen(c.authcid);
        CHECK(zl <= SASL_NAME_MAX && cl >= 1 && cl <= SASL_NAME_MAX);
        CHECK(c.secret_len >= 1 && c.secret_len <= SASL_SECRET_MAX);
        CHECK(strlen(c.secret) == c.secret_len);
        CHECK(name_clean(c.authzid) && name_clean(c.authcid));
        CHECK(zl + 1 + cl + 1 + c.secret_len == size);
        CHECK(memcmp(data, c.authzid, zl) == 0 && data[zl] == 0);
        CHECK(memcmp(data + zl + 1, c.authcid, cl) == 0 && data[zl + 1 + cl] == 0);
        CHECK(memcmp(data + zl + cl + 2, c.secret, c.secret_len) == 0);
    } else {
        CHECK(r == -1 && err.msg[0] != '\0');
        const unsigned char *b = (const unsigned char *)&c;
        for (size_t i = 0; i < sizeof(c); i++)
            CHECK(b[i] == 0);
    }

    const struct sasl_mech *m = sasl_mech_find("plain");
    CHECK(m != NULL);
    struct sasl_exchange *ex = m->start();
    CHECK(ex != NULL);
    static struct sasl_creds c2;
    unsigned char out[8];
    size_t outlen = 1;
    enum sasl_step_result st = m->step(ex, data, size, out, sizeof(out), &outlen, &c2, &err);
    CHECK(st == (r == 0 ? SASL_STEP_VERIFY : SASL_STEP_FAIL) && outlen == 0);
    CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
    m->finish(&ex);
    CHECK(ex == NULL);
    sasl_creds_wipe(&c);
    sasl_creds_wipe(&c2);
    return 0;
}
