/* SASL OAUTHBEARER (RFC 7628 3.1): a GS2 header, then \x01-separated key=value
 * pairs, one of them "auth=Bearer <token>". Only parses: authd judges the token.
 * Also holds the bearer-credential check XOAUTH2 shares. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/secret.h"
#include "conf/conf.h"
#include "sasl/sasl.h"

extern const struct sasl_mech sasl_mech_oauthbearer;

#define KVSEP 0x01

struct sasl_exchange {
    int steps; /* messages seen; there is only one to parse */
};

static bool b64token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int sasl_bearer_value(const unsigned char *v, size_t n, struct sasl_creds *c, struct error *err)
{
    /* RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive. */
    if (n < 7 || strncasecmp((const char *)v, "Bearer", 6) != 0 || v[6] != ' ')
        return error_set(err, "auth is not a Bearer credential");
    size_t i = 7;
    while (i < n && v[i] == ' ')
        i++;
    const unsigned char *tok = v + i;
    size_t tl = n - i, k = 0;
    while (k < tl && b64token_char(tok[k]))
        k++;
    if (k == 0)
        return error_set(err, "bearer token is empty or starts with a bad character");
    while (k < tl && tok[k] == '=')
        k++;
    if (k != tl)
        return error_set(err, "bearer token holds a character outside the b64token set");
    if (tl > SASL_SECRET_MAX)
        return error_set(err, "bearer token longer than %d bytes", SASL_SECRET_MAX);
    memcpy(c->secret, tok, tl);
    c->secret[tl] = '\0';
    c->secret_len = tl;
    return 0;
}

/* RFC 5801 saslname: "=2C" is ',' and "=3D" is '='; a bare '=' or ',' cannot
 * appear, nor (our rule, as for PLAIN) control characters. */
static int saslname(const unsigned char *s, size_t n, char *out, struct error *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == '=') {
            if (n - i < 3)
                return error_set(err, "authzid has a truncated escape");
            if (s[i + 1] == '2' && (s[i + 2] == 'C' || s[i + 2] == 'c'))
                ch = ',';
            else if (s[i + 1] == '3' && (s[i + 2] == 'D' || s[i + 2] == 'd'))
                ch = '=';
            else
                return error_set(err, "authzid has a bad escape");
            i += 2;
        } else if (ch < 0x20 || ch == 0x7f) {
            return error_set(err, "authzid holds a control character");
        }
        if (o >= SASL_NAME_MAX)
            return error_set(err, "authzid longer than %d bytes", SASL_NAME_MAX);
        out[o++] = (char)ch;
    }
    if (o == 0)
        return error_set(err, "authzid is empty");
    out[o] = '\0';
    return 0;
}

/* gs2-header = gs2-cbind-flag "," [ "a=" saslname ] "," ; returns its length or -1. */
static long gs2_header(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err)
{
    if (len < 3)
        return error_set(err, "OAUTHBEARER message too short");
    /* 'p' asks for channel binding, which OAUTHBEARER does not offer here;
     * 'y' (client could but thinks we cannot) and 'n' are both fine. */
    if (in[0] == 'p')
        return error_set(err, "OAUTHBEARER channel binding is not supported");
    if ((in[0] != 'n' && in[0] != 'y') || in[1] != ',')
        return error_set(err, "OAUTHBEARER GS2 header is malformed");
    size_t i = 2;
    if (in[i] == 'a') {
        if (i + 1 >= len || in[i + 1] != '=')
            return error_set(err, "OAUTHBEARER GS2 header is malformed");
        const unsigned char *comma = memchr(in + i + 2, ',', len - i - 2);
        if (comma == NULL)
            return error_set(err, "OAUTHBEARER GS2 header is not terminated");
        if (saslname(in + i + 2, (size_t)(comma - in) - i - 2, c->authcid, err) < 0)
            return -1;
        i = (size_t)(comma - in);
    }
    if (i >= len || in[i] != ',')
        return error_set(err, "OAUTHBEARER GS2 header is malformed");
    return (long)i + 1;
}

static bool value_char(unsigned char ch)
{
    return (ch >= 0x21 && ch <= 0x7e) || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int sasl_oauthbearer_parse(const unsigned char *in, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0, sizeof(*c));
    long h = gs2_header(in, len, c, err);
    if (h < 0)
        goto bad;
    size_t i = (size_t)h;
    if (i >= len || in[i++] != KVSEP)
        goto sep;
    bool auth = false;
    for (;;) {
        if (i >= len)
            goto sep;
        if (in[i] == KVSEP) { /* the empty pair: end of message */
            i++;
            break;
        }
        size_t ks = i;
        while (i < len && ((in[i] >= 'a' && in[i] <= 'z') || (in[i] >= 'A' && in[i] <= 'Z')))
            i++;
        if (i == ks || i >= len || in[i] != '=') {
            error_set(err, "OAUTHBEARER key=value pair is malformed");
            goto bad;
        }
        size_t kl = i - ks, vs = ++i;
        while (i < len && in[i] != KVSEP) {
            if (!value_char(in[i])) {
                error_set(err, "OAUTHBEARER value holds a byte outside VCHAR");
                goto bad;
            }
            i++;
        }
        if (i >= len)
            goto sep;
        size_t vl = i++ - vs;
        if (kl == 4 && memcmp(in + ks, "auth", 4) == 0) {
            if (auth) {
                error_set(err, "OAUTHBEARER message has two auth values");
                goto bad;
            }
            if (sasl_bearer_value(in + vs, vl, c, err) < 0)
                goto bad;
            auth = true;
        } else if (kl == 4 && memcmp(in + ks, "port", 4) == 0) {
            bool digits = vl >= 1 && vl <= 5;
            for (size_t k = 0; k < vl; k++)
                digits = digits && in[vs + k] >= '0' && in[vs + k] <= '9';
            if (!digits) {
                error_set(err, "OAUTHBEARER port is not a number");
                goto bad;
            }
        }
        /* host= and keys registered later carry nothing we use. */
    }
    if (i != len) {
        error_set(err, "OAUTHBEARER message has bytes after its end");
        goto bad;
    }
    if (!auth) {
        error_set(err, "OAUTHBEARER message has no auth value");
        goto bad;
    }
    return 0;
sep:
    error_set(err, "OAUTHBEARER message is not terminated by \\x01\\x01");
bad:
    sasl_creds_wipe(c);
    return -1;
}

static struct sasl_exchange *ob_start(void)
{
    return calloc(1, sizeof(struct sasl_exchange));
}

/* One message, then authd decides. A second message (the client's \x01 after
 * an error challenge, RFC 7628 3.2.3) always fails the exchange. */
static enum sasl_step_result ob_step(struct sasl_exchange *ex, const unsigned char *in, size_t inlen,
                                     unsigned char *out, size_t outcap, size_t *outlen,
                                     struct sasl_creds *creds, struct error *err)
{
    *outlen = 0;
    if (ex->steps++ > 0) {
        memset(creds, 0, sizeof(*creds));
        error_set(err, "OAUTHBEARER exchange is over");
        return SASL_STEP_FAIL;
    }
    return sasl_oauthbearer_parse(in, inlen, creds, err) == 0 ? SASL_STEP_VERIFY : SASL_STEP_FAIL;
}

static void ob_finish(struct sasl_exchange **ex)
{
    free(*ex);
    *ex = NULL;
}

const struct sasl_mech sasl_mech_oauthbearer = {
    .name = "OAUTHBEARER",
    .bit = CONF_MECH_OAUTHBEARER,
    .plaintext_secret = true, /* a bearer token is replayable: TLS only */
    .start = ob_start,
    .step = ob_step,
    .finish = ob_finish,
};
