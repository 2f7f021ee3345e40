/* SASL XOAUTH2 (Google's pre-standard form of OAUTHBEARER, still what many
 * clients send): "user=" USER \x01 "auth=Bearer " TOKEN \x01 \x01, in exactly
 * that order. Only parses: authd judges the token. */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "sasl/sasl.h"

extern const struct sasl_mech sasl_mech_xoauth2;

#define KVSEP 0x01

struct sasl_exchange {
    int steps;
};

int sasl_xoauth2_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0, sizeof(*c));
    if (len < 5 || memcmp(in, "user=", 5) != 0) {
        error_set(err, "XOAUTH2 message does not start with user=");
        goto bad;
    }
    const unsigned char *user = in + 5;
    const unsigned char *sep = memchr(user, KVSEP, len - 5);
    if (sep == NULL) {
        error_set(err, "XOAUTH2 user is not terminated");
        goto bad;
    }
    size_t ul = (size_t)(sep - user);
    if (ul == 0 || ul > SASL_NAME_MAX) {
        error_set(err, "XOAUTH2 user is empty or longer than %d bytes", SASL_NAME_MAX);
        goto bad;
    }
    for (size_t i = 0; i < ul; i++)
        if (user[i] < 0x20 || user[i] == 0x7f) {
            error_set(err, "XOAUTH2 user holds a control character");
            goto bad;
        }
    const unsigned char *a = sep + 1;
    size_t rest = len - (size_t)(a - in);
    if (rest < 5 || memcmp(a, "auth=", 5) != 0) {
        error_set(err, "XOAUTH2 message has no auth= after the user");
        goto bad;
    }
    const unsigned char *v = a + 5;
    const unsigned char *end = memchr(v, KVSEP, rest - 5);
    if (end == NULL || (size_t)(end - in) + 2 != len || end[1] != KVSEP) {
        error_set(err, "XOAUTH2 message is not terminated by \\x01\\x01");
        goto bad;
    }
    if (sasl_bearer_value(v, (size_t)(end - v), c, err) < 0)
        goto bad;
    memcpy(c->authcid, user, ul);
    return 0;
bad:
    sasl_creds_wipe(c);
    return -1;
}

static struct sasl_exchange *x2_start(void)
{
    return calloc(1, sizeof(struct sasl_exchange));
}

/* One message, then authd decides. A second one (the client's empty reply to
 * an error challenge) always fails the exchange. */
static enum sasl_step_result x2_step(struct sasl_exchange *ex, const unsigned char *in, size_t inlen,
                                     unsigned char *out, size_t outcap, size_t *outlen,
                                     struct sasl_creds *creds, struct error *err)
{
    *outlen = 0;
    if (ex->steps++ > 0) {
        memset(creds, 0, sizeof(*creds));
        error_set(err, "XOAUTH2 exchange is over");
        return SASL_STEP_FAIL;
    }
    return sasl_xoauth2_parse(in, inlen, creds, err) == 0 ? SASL_STEP_VERIFY : SASL_STEP_FAIL;
}

static void x2_finish(struct sasl_exchange **ex)
{
    free(*ex);
    *ex = NULL;
}

const struct sasl_mech sasl_mech_xoauth2 = {
    .name = "XOAUTH2",
    .bit = CONF_MECH_XOAUTH2,
    .plaintext_secret = true, /* a bearer token is replayable: TLS only */
    .start = x2_start,
    .step = x2_step,
    .finish = x2_finish,
};
