/* SASL mechanisms (RFC 4422) as POP3 AUTH uses them (RFC 5034). Each mechanism
 * is one file behind this interface. A mechanism only parses and builds
 * messages; it never verifies a credential: it hands what it parsed to the
 * caller, which asks authd. */
#ifndef POPSD_SASL_SASL_H
#define POPSD_SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SASL_NAME_MAX 255
#define SASL_SECRET_MAX 6144 /* passwords, and bearer tokens (JWTs run to a few KiB) */
#define SASL_MSG_MAX 8192 /* decoded client message */

/* What a mechanism extracted from the client, to be verified by authd. */
struct sasl_creds {
    char authzid[SASL_NAME_MAX + 1]; /* "" = same as authcid */
    char authcid[SASL_NAME_MAX + 1];
    char secret[SASL_SECRET_MAX + 1]; /* wiped by sasl_creds_wipe() */
    size_t secret_len;
};

enum sasl_step_result {
    SASL_STEP_CONTINUE, /* send out[] as a "+ " challenge and wait for the next response */
    SASL_STEP_VERIFY,   /* creds are complete: ask authd */
    SASL_STEP_FAIL,     /* malformed exchange: -ERR, detail in err */
};

struct sasl_exchange;

struct sasl_mech {
    const char *name;
    uint32_t bit;          /* enum conf_mech: a listener offers it only when the bit is set */
    bool plaintext_secret; /* reveals a reusable secret: only offered over TLS */
    bool relay;            /* every client message goes to authd, which runs the exchange (SCRAM) */
    /* Allocates per-exchange state. */
    struct sasl_exchange *(*start)(void);
    /* Consumes one decoded client message (the initial response counts as the first). */
    enum sasl_step_result (*step)(struct sasl_exchange *ex, const unsigned char *in, size_t inlen,
                                  unsigned char *out, size_t outcap, size_t *outlen, struct sasl_creds *creds,
                                  struct error *err);
    /* Wipes and frees; NULLs *ex. */
    void (*finish)(struct sasl_exchange **ex);
};

/* The mechanism with this name (case-insensitive), or NULL. */
const struct sasl_mech *sasl_mech_find(const char *name);
/* All mechanisms, NULL-terminated, in the order they are advertised. */
extern const struct sasl_mech *const sasl_mechs[];

void sasl_creds_wipe(struct sasl_creds *c);

/* PLAIN (RFC 4616), exposed for the fuzzer: parses "authzid NUL authcid NUL passwd". */
int sasl_plain_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err);

/* OAUTHBEARER (RFC 7628), exposed for the fuzzer: the GS2 header's authzid
 * (may be empty: the token then names the user) goes to authcid, the bearer
 * token to secret; authzid stays "". */
int sasl_oauthbearer_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err);
/* XOAUTH2 (Google): "user=" USER \x01 "auth=Bearer " TOKEN \x01 \x01; USER to authcid. */
int sasl_xoauth2_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err);
/* Both: checks an auth value "Bearer" 1*SP b64token (RFC 6750 2.1) and puts the
 * token into c->secret. Returns 0 or -1. */
int sasl_bearer_value(const unsigned char *v, size_t n, struct sasl_creds *c, struct error *err);

#endif
