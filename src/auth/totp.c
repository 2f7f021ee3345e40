/* TOTP (RFC 6238) over liboath's HOTP. See totp.h. */
#include <liboath/oath.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/totp.h"
#include "common/secret.h"

#define SECRET_B32_MIN 26 /* 128 bits, RFC 4226 R6's minimum */

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int init_rc = OATH_OK;

static void oath_start(void)
{
    init_rc = oath_init();
}

static int oath_ready(struct error *err)
{
    pthread_once(&oath_once, oath_start);
    if (init_rc != OATH_OK)
        return error_set(err, "liboath: %s", oath_strerror(init_rc));
    return 0;
}

int64_t totp_step(time_t now)
{
    return (int64_t)now / TOTP_PERIOD;
}

bool totp_code_syntax_ok(const char *code)
{
    if (code == NULL)
        return false;
    for (size_t i = 0; i < TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return code[TOTP_DIGITS] == '\0';
}

/* liboath's decoder accepts nearly anything (odd lengths, lower case); what we
 * store is exactly upper-case RFC 4648 base32 without padding. */
static bool secret_b32_ok(const char *s)
{
    size_t n = strnlen(s, TOTP_SECRET_B32_MAX);
    if (n < SECRET_B32_MIN || n >= TOTP_SECRET_B32_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '2' && s[i] <= '7')))
            return false;
    return true;
}

/* Decodes the stored secret into a heap buffer the caller wipes and frees. */
static int secret_decode(const char *b32, char **raw, size_t *rawlen, struct error *err)
{
    *raw = NULL;
    if (oath_ready(err) < 0)
        return -1;
    if (!secret_b32_ok(b32))
        return error_set(err, "malformed TOTP secret");
    int rc = oath_base32_decode(b32, strlen(b32), raw, rawlen);
    if (rc != OATH_OK)
        return error_set(err, "TOTP secret: %s", oath_strerror(rc));
    return 0;
}

static void raw_free(char **raw, size_t len)
{
    if (*raw != NULL)
        secret_wipe(*raw, len);
    free(*raw);
    *raw = NULL;
}

int totp_secret_new(char out[TOTP_SECRET_B32_MAX], struct error *err)
{
    unsigned char raw[TOTP_SECRET_LEN];
    char *b32 = NULL;
    size_t b32len = 0;
    out[0] = '\0';
    if (oath_ready(err) < 0)
        return -1;
    if (secret_random(raw, sizeof(raw)) < 0)
        return error_set(err, "random generator failure");
    int rc = oath_base32_encode((const char *)raw, sizeof(raw), &b32, &b32len);
    secret_wipe(raw, sizeof(raw));
    if (rc != OATH_OK)
        return error_set(err, "base32: %s", oath_strerror(rc));
    size_t n = strcspn(b32, "="); /* 20 bytes need none, but apps want none anyway */
    int r = 0;
    if (n >= TOTP_SECRET_B32_MAX) {
        r = error_set(err, "TOTP secret too long");
    } else {
        memcpy(out, b32, n);
        out[n] = '\0';
    }
    secret_wipe(b32, b32len);
    free(b32);
    return r;
}

bool totp_issuer_valid(const char *issuer)
{
    size_t n = strnlen(issuer, TOTP_ISSUER_MAX + 1);
    if (n == 0 || n > TOTP_ISSUER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)issuer[i];
        if (c < 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return true;
}

/* Appends s percent-encoded (everything but RFC 3986 unreserved characters). */
static int put_pct(char *out, size_t outsz, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '.' || c == '_' || c == '~';
        if (*o + (plain ? 1 : 3) >= outsz)
            return -1;
        if (plain) {
            out[(*o)++] = (char)c;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        }
    }
    out[*o] = '\0';
    return 0;
}

static int put_str(char *out, size_t outsz, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n >= outsz)
        return -1;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return 0;
}

int totp_uri(const char *issuer, const char *user, const char *secret_b32, char *out, size_t outsz,
             struct error *err)
{
    if (!totp_issuer_valid(issuer))
        return error_set(err, "issuer must be 1-%d characters without ':' or control characters",
                         TOTP_ISSUER_MAX);
    if (!secret_b32_ok(secret_b32))
        return error_set(err, "malformed TOTP secret");
    char tail[64];
    snprintf(tail, sizeof(tail), "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_PERIOD);
    size_t o = 0;
    if (outsz == 0 || put_str(out, outsz, &o, "otpauth://totp/") < 0 || put_pct(out, outsz, &o, issuer) < 0 ||
        put_str(out, outsz, &o, ":") < 0 || put_pct(out, outsz, &o, user) < 0 ||
        put_str(out, outsz, &o, "?secret=") < 0 || put_str(out, outsz, &o, secret_b32) < 0 ||
        put_str(out, outsz, &o, "&issuer=") < 0 || put_pct(out, outsz, &o, issuer) < 0 ||
        put_str(out, outsz, &o, tail) < 0) {
        if (outsz > 0)
            secret_wipe(out, outsz);
        return error_set(err, "otpauth URI too long");
    }
    return 0;
}

/* The code of one step; the secret is already decoded. */
static int code_of_step(const char *raw, size_t rawlen, int64_t step, unsigned digits, char *out,
                        struct error *err)
{
    int rc =
        oath_hotp_generate(raw, rawlen, (uint64_t)step, digits, false, OATH_HOTP_DYNAMIC_TRUNCATION, out);
    if (rc != OATH_OK)
        return error_set(err, "TOTP: %s", oath_strerror(rc));
    return 0;
}

int totp_code_at(const char *secret_b32, time_t now, unsigned digits, char *out, size_t outsz,
                 struct error *err)
{
    if (digits < 6 || digits > 8 || outsz < digits + 1)
        return error_set(err, "TOTP: bad digit count");
    if (now < 0)
        return error_set(err, "TOTP: clock before 1970");
    char *raw;
    size_t rawlen = 0;
    if (secret_decode(secret_b32, &raw, &rawlen, err) < 0)
        return -1;
    int r = code_of_step(raw, rawlen, totp_step(now), digits, out, err);
    raw_free(&raw, rawlen);
    return r;
}

int totp_verify(const char *secret_b32, const char *code, time_t now, int64_t last_step, int64_t *step,
                struct error *err)
{
    *step = 0;
    if (now < (time_t)TOTP_PERIOD * TOTP_WINDOW)
        return error_set(err, "TOTP: clock before 1970");
    if (!totp_code_syntax_ok(code))
        return TOTP_WRONG;
    char *raw;
    size_t rawlen = 0;
    if (secret_decode(secret_b32, &raw, &rawlen, err) < 0)
        return TOTP_ERROR;
    int64_t t = totp_step(now), newest = -1;
    int r = TOTP_WRONG;
    for (int64_t s = t - TOTP_WINDOW; s <= t + TOTP_WINDOW; s++) {
        char expect[TOTP_DIGITS + 1];
        if (code_of_step(raw, rawlen, s, TOTP_DIGITS, expect, err) < 0) {
            r = TOTP_ERROR;
            break;
        }
        if (secret_equal(expect, code, TOTP_DIGITS))
            newest = s; /* ascending: the last match is the newest */
        secret_wipe(expect, sizeof(expect));
    }
    raw_free(&raw, rawlen);
    if (r == TOTP_ERROR)
        return r;
    if (newest < 0)
        return TOTP_WRONG;
    if (newest <= last_step)
        return TOTP_REPLAYED;
    *step = newest;
    return TOTP_OK;
}
