/* SCRAM-SHA-256 and SCRAM-SHA-256-PLUS as the front sees them: relays. The
 * keys never leave authd, so authd runs the conversation (sasl/scram.c) and
 * the front only forwards each client message, after checking it is text. */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "sasl/sasl.h"

struct sasl_exchange {
    int unused;
};

static struct sasl_exchange *relay_start(void)
{
    return calloc(1, sizeof(struct sasl_exchange));
}

static enum sasl_step_result relay_step(struct sasl_exchange *ex, const unsigned char *in, size_t inlen,
                                        unsigned char *out, size_t outcap, size_t *outlen,
                                        struct sasl_creds *creds, struct error *err)
{
    *outlen = 0;
    if (inlen > SASL_SECRET_MAX || memchr(in, '\0', inlen) != NULL) {
        error_set(err, "SCRAM message too long or contains NUL");
        return SASL_STEP_FAIL;
    }
    memcpy(creds->secret, in, inlen);
    creds->secret_len = inlen;
    return SASL_STEP_VERIFY;
}

static void relay_finish(struct sasl_exchange **ex)
{
    free(*ex);
    *ex = NULL;
}

const struct sasl_mech sasl_mech_scram_plus = {
    .name = "SCRAM-SHA-256-PLUS",
    .bit = CONF_MECH_SCRAM_PLUS,
    .relay = true,
    .start = relay_start,
    .step = relay_step,
    .finish = relay_finish,
};

const struct sasl_mech sasl_mech_scram = {
    .name = "SCRAM-SHA-256",
    .bit = CONF_MECH_SCRAM,
    .relay = true,
    .start = relay_start,
    .step = relay_step,
    .finish = relay_finish,
};
