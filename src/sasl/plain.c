/* SASL PLAIN (RFC 4616). Also what USER/PASS becomes, so there is one path. */
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "conf/conf.h"
#include "sasl/sasl.h"

extern const struct sasl_mech sasl_mech_plain;

struct sasl_exchange {
    int unused;
};

/* Rejects empty names, NUL (already split on) and control characters in names. */
static bool name_ok(const unsigned char *s, size_t n, bool allow_empty)
{
    if (n == 0)
        return allow_empty;
    if (n > SASL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int sasl_plain_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0, sizeof(*c));
    const unsigned char *nul1 = memchr(in, '\0', len);
    if (nul1 == NULL)
        return error_set(err, "PLAIN message lacks its separators");
    const unsigned char *rest = nul1 + 1;
    size_t restlen = len - (size_t)(rest - in);
    const unsigned char *nul2 = memchr(rest, '\0', restlen);
    if (nul2 == NULL)
        return error_set(err, "PLAIN message lacks its second separator");
    size_t zlen = (size_t)(nul1 - in), clen = (size_t)(nul2 - rest);
    const unsigned char *pw = nul2 + 1;
    size_t pwlen = len - (size_t)(pw - in);
    if (!name_ok(in, zlen, true) || !name_ok(rest, clen, false))
        return error_set(err, "PLAIN names are empty, too long or contain control characters");
    if (pwlen == 0 || pwlen > SASL_SECRET_MAX || memchr(pw, '\0', pwlen) != NULL)
        return error_set(err, "PLAIN password is empty, too long or contains NUL");
    memcpy(c->authzid, in, zlen);
    memcpy(c->authcid, rest, clen);
    memcpy(c->secret, pw, pwlen);
    c->secret_len = pwlen;
    return 0;
}

static struct sasl_exchange *plain_start(void)
{
    return calloc(1, sizeof(struct sasl_exchange));
}

static enum sasl_step_result plain_step(struct sasl_exchange *ex, const unsigned char *in, size_t inlen,
                                        unsigned char *out, size_t outcap, size_t *outlen,
                                        struct sasl_creds *creds, struct error *err)
{
    *outlen = 0;
    return sasl_plain_parse(in, inlen, creds, err) == 0 ? SASL_STEP_VERIFY : SASL_STEP_FAIL;
}

static void plain_finish(struct sasl_exchange **ex)
{
    free(*ex);
    *ex = NULL;
}

const struct sasl_mech sasl_mech_plain = {
    .name = "PLAIN",
    .bit = CONF_MECH_PLAIN,
    .plaintext_secret = true,
    .start = plain_start,
    .step = plain_step,
    .finish = plain_finish,
};
