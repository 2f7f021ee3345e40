/* TOTP (RFC 6238) as authenticator apps implement it: HMAC-SHA-1, 6 digits,
 * 30-second steps, a 20-byte secret kept as unpadded base32 (RFC 4648).
 * Replay protection is the caller's: a code is accepted only for a time step
 * newer than the last one used (userdb_admin_totp_use_step does it atomically). */
#ifndef POPSD_AUTH_TOTP_H
#define POPSD_AUTH_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

#define TOTP_SECRET_LEN 20      /* RFC 4226 section 4 recommends 160 bits */
#define TOTP_SECRET_B32_MAX 129 /* ours are 32 characters; the database takes up to 128 */
#define TOTP_DIGITS 6
#define TOTP_PERIOD 30
#define TOTP_WINDOW 1     /* steps accepted either side of now: clock drift and typing time */
#define TOTP_URI_MAX 2048 /* the longest issuer and user name, percent-encoded */
#define TOTP_ISSUER_MAX 64

enum totp_result {
    TOTP_ERROR = -1,   /* bad secret or clock; err says why */
    TOTP_WRONG = 0,    /* matches no step in the window */
    TOTP_OK = 1,       /* *step is the (newest) matching step, > last_step */
    TOTP_REPLAYED = 2, /* matches only steps <= last_step: already used */
};

/* A fresh random secret, base32 without padding, into out. 0, or -1 (out emptied). */
int totp_secret_new(char out[TOTP_SECRET_B32_MAX], struct error *err);

/* true if issuer can be put in a URI label: 1..TOTP_ISSUER_MAX bytes, no
 * control character and no ':' (it separates issuer from account). */
bool totp_issuer_valid(const char *issuer);

/* "otpauth://totp/ISSUER:USER?secret=...&issuer=ISSUER&algorithm=SHA1&digits=6&period=30"
 * with issuer and user percent-encoded. 0, or -1 (too long, bad issuer). */
int totp_uri(const char *issuer, const char *user, const char *secret_b32, char *out, size_t outsz,
             struct error *err);

/* true if code is exactly TOTP_DIGITS ASCII digits. */
bool totp_code_syntax_ok(const char *code);

/* The digits-long code of secret_b32 for the step containing unix time now
 * (digits 6..8; 8 is for RFC 6238's test vectors). 0 or -1. */
int totp_code_at(const char *secret_b32, time_t now, unsigned digits, char *out, size_t outsz,
                 struct error *err);

/* Checks code against the steps now-TOTP_WINDOW .. now+TOTP_WINDOW. Every step
 * is computed and compared in constant time, and the newest match wins, so a
 * code that happens to match an old step too is not mistaken for a replay.
 * last_step: the newest step used before (0 = none). Returns enum totp_result. */
int totp_verify(const char *secret_b32, const char *code, time_t now, int64_t last_step, int64_t *step,
                struct error *err);

/* The time step of unix time now. */
int64_t totp_step(time_t now);

#endif
