/* libFuzzer target for the OAUTHBEARER (RFC 7628) and XOAUTH2 message parsers;
 * both run on every input. Checks, aborting on any mismatch:
 *   - success means a bearer token of 1..SASL_SECRET_MAX bytes in the RFC 6750
 *     b64token syntax, NUL-terminated, that the message carries right before a
 *     \x01; authzid stays ""; authcid is free of control bytes and within
 *     SASL_NAME_MAX; the message ends with \x01\x01;
 *   - OAUTHBEARER: a 'n' or 'y' GS2 flag, an empty authcid exactly when the
 *     header has no a=; XOAUTH2: the message starts "user=" authcid \x01 "auth=";
 *   - failure leaves the creds all zero and a message in err;
 *   - each mechanism's step agrees with its parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "sasl/sasl.h"

extern const struct sasl_mech sasl_mech_oauthbearer;
extern const struct sasl_mech sasl_mech_xoauth2;

static int name_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int b64token(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && ((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
                     (t[i] >= '0' && t[i] <= '9') || (t[i] != '\0' && strchr("-._~+/", t[i]) != NULL)))
        i++;
    if (i == 0)
        return 0;
    while (i < n && t[i] == '=')
        i++;
    return i == n;
}

/* Invariants every successful parse shares. */
static void common_ok(const uint8_t *data, size_t size, const struct sasl_creds *c)
{
    CHECK(c->authzid[0] == '\0');
    CHECK(strlen(c->authcid) <= SASL_NAME_MAX && name_clean(c->authcid));
    CHECK(c->secret_len >= 1 && c->secret_len <= SASL_SECRET_MAX && strlen(c->secret) == c->secret_len);
    CHECK(b64token(c->secret, c->secret_len));
    CHECK(size >= 2 && data[size - 1] == 0x01 && data[size - 2] == 0x01);
    /* the token appears in the message, followed by the pair separator */
    int found = 0;
    for (size_t i = 0; i + c->secret_len < size && !found; i++)
        found = memcmp(data + i, c->secret, c->secret_len) == 0 && data[i + c->secret_len] == 0x01;
    CHECK(found);
}

static void common_bad(int r, const struct sasl_creds *c, const struct error *err)
{
    CHECK(r == -1 && err->msg[0] != '\0');
    const unsigned char *b = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof(*c); i++)
        CHECK(b[i] == 0);
}

static void step_agrees(const struct sasl_mech *m, const uint8_t *data, size_t size, int r,
                        const struct sasl_creds *c)
{
    static struct sasl_creds c2;
    struct error err = {{0}};
    struct sasl_exchange *ex = m->start();
    CHECK(ex != NULL);
    unsigned char out[8];
    size_t outlen = 1;
    enum sasl_step_result st = m->step(ex, data, size, out, sizeof(out), &outlen, &c2, &err);
    CHECK(st == (r == 0 ? SASL_STEP_VERIFY : SASL_STEP_FAIL) && outlen == 0);
    CHECK(memcmp(c, &c2, sizeof(c2)) == 0);
    CHECK(m->step(ex, data, size, out, sizeof(out), &outlen, &c2, &err) == SASL_STEP_FAIL);
    m->finish(&ex);
    CHECK(ex == NULL);
    sasl_creds_wipe(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sasl_creds c;
    struct error err = {{0}};

    memset(&c, 0xa5, sizeof(c));
    int r = sasl_oauthbearer_parse(data, size, &c, &err);
    if (r == 0) {
        common_ok(data, size, &c);
        CHECK(data[0] == 'n' || data[0] == 'y');
        CHECK(data[1] == ',');
        CHECK((c.authcid[0] == '\0') == (data[2] == ','));
    } else {
        common_bad(r, &c, &err);
    }
    step_agrees(&sasl_mech_oauthbearer, data, size, r, &c);
    sasl_creds_wipe(&c);

    memset(&c, 0xa5, sizeof(c));
    err.msg[0] = '\0';
    r = sasl_xoauth2_parse(data, size, &c, &err);
    if (r == 0) {
        common_ok(data, size, &c);
        size_t ul = strlen(c.authcid);
        CHECK(ul >= 1 && size > 5 + ul + 6);
        CHECK(memcmp(data, "user=", 5) == 0 && memcmp(data + 5, c.authcid, ul) == 0);
        CHECK(memcmp(data + 5 + ul,
                     "\x01"
                     "auth=",
                     6) == 0);
        CHECK(memcmp(data + size - 2 - c.secret_len, c.secret, c.secret_len) == 0);
    } else {
        common_bad(r, &c, &err);
    }
    step_agrees(&sasl_mech_xoauth2, data, size, r, &c);
    sasl_creds_wipe(&c);
    return 0;
}
