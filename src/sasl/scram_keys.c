/* SCRAM-SHA-256 keys: derivation (RFC 5802 section 3), Dovecot's stored
 * notation, checking a plaintext password against them, and stable fake keys
 * for unknown users. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>
#include <strings.h>

#include "common/b64.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "sasl/scram.h"
#include "sasl/scram_int.h"

#define STORED_PREFIX "{SCRAM-SHA-256}"
#define STORED_MAX 512
/* Same bound as SASL_SECRET_MAX: no client can send a longer one. */
#define PW_MAX 1024

int scram_hmac(const unsigned char *key, size_t keylen, const void *const *parts, const size_t *lens,
               size_t n, unsigned char out[SCRAM_KEY_LEN])
{
    return secret_hmac(key, keylen, parts, lens, n, out, SCRAM_KEY_LEN);
}

int scram_hash(const unsigned char *in, size_t len, unsigned char out[SCRAM_KEY_LEN])
{
    unsigned int outl = 0;
    return EVP_Digest(in, len, out, &outl, EVP_sha256(), NULL) == 1 && outl == SCRAM_KEY_LEN ? 0 : -1;
}

bool scram_utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t more;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

static bool printable_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* SASLprep (RFC 4013) into a heap string the caller frees with secret_free_str.
 * Printable ASCII is its own SASLprep output (no mapping, normalisation or
 * prohibition touches it), so it skips libidn: passwords Dovecot hashed
 * without SASLprep keep working. */
static int saslprep(const char *pw, size_t pwlen, char **out, struct error *err)
{
    *out = NULL;
    if (pwlen > PW_MAX)
        return error_set(err, "password too long");
    if (memchr(pw, '\0', pwlen) != NULL || !scram_utf8_valid((const unsigned char *)pw, pwlen))
        return error_set(err, "password contains NUL or is not UTF-8");
    char *in = malloc(pwlen + 1);
    if (in == NULL)
        return error_set(err, "out of memory");
    memcpy(in, pw, pwlen);
    in[pwlen] = '\0';
    if (printable_ascii(in, pwlen)) {
        *out = in;
        return 0;
    }
    char *prep = NULL;
    int rc = stringprep_profile(in, &prep, "SASLprep", STRINGPREP_NO_UNASSIGNED);
    secret_free_str(&in);
    if (rc != STRINGPREP_OK) {
        secret_free_str(&prep);
        return error_set(err, "password refused by SASLprep: %s", stringprep_strerror(rc));
    }
    *out = prep;
    return 0;
}

/* The keys of an already SASLprep'ed password over k's salt and iterations. */
static int derive_prepped(const char *prep, struct scram_keys *k, struct error *err)
{
    unsigned char salted[SCRAM_KEY_LEN], ckey[SCRAM_KEY_LEN];
    const void *ck[] = {"Client Key"}, *sk[] = {"Server Key"};
    const size_t cl[] = {10}, sl[] = {10};
    int ok = PKCS5_PBKDF2_HMAC(prep, (int)strlen(prep), k->salt, (int)k->salt_len, (int)k->iterations,
                               EVP_sha256(), SCRAM_KEY_LEN, salted) == 1 &&
             scram_hmac(salted, sizeof(salted), ck, cl, 1, ckey) == 0 &&
             scram_hash(ckey, sizeof(ckey), k->stored_key) == 0 &&
             scram_hmac(salted, sizeof(salted), sk, sl, 1, k->server_key) == 0;
    secret_wipe(salted, sizeof(salted));
    secret_wipe(ckey, sizeof(ckey));
    return ok ? 0 : error_set(err, "PBKDF2/HMAC-SHA-256 failed");
}

int scram_keys_derive(const char *password, size_t pwlen, const unsigned char *salt, size_t salt_len,
                      uint32_t iterations, struct scram_keys *k, struct error *err)
{
    memset(k, 0, sizeof(*k));
    if (iterations < SCRAM_ITER_MIN || iterations > SCRAM_ITER_MAX)
        return error_set(err, "SCRAM iterations must be %u..%u", SCRAM_ITER_MIN, SCRAM_ITER_MAX);
    if (password == NULL && pwlen > 0)
        return error_set(err, "no password");
    if (salt == NULL) {
        k->salt_len = SCRAM_SALT_LEN;
        if (secret_random(k->salt, k->salt_len) < 0)
            return error_set(err, "no randomness for the salt");
    } else {
        if (salt_len == 0 || salt_len > SCRAM_SALT_MAX)
            return error_set(err, "SCRAM salt must be 1..%d bytes", SCRAM_SALT_MAX);
        memcpy(k->salt, salt, salt_len);
        k->salt_len = salt_len;
    }
    k->iterations = iterations;
    char *prep = NULL;
    int r = saslprep(password != NULL ? password : "", pwlen, &prep, err);
    if (r == 0)
        r = derive_prepped(prep, k, err);
    secret_free_str(&prep);
    if (r < 0)
        secret_wipe(k, sizeof(*k));
    return r;
}

int scram_keys_format(const struct scram_keys *k, char *out, size_t outsz)
{
    char salt[B64_ENCODED_LEN(SCRAM_SALT_MAX) + 1], sk[B64_ENCODED_LEN(SCRAM_KEY_LEN) + 1],
        vk[B64_ENCODED_LEN(SCRAM_KEY_LEN) + 1];
    if (k->salt_len == 0 || k->salt_len > SCRAM_SALT_MAX ||
        b64_encode(k->salt, k->salt_len, salt, sizeof(salt)) < 0 ||
        b64_encode(k->stored_key, SCRAM_KEY_LEN, sk, sizeof(sk)) < 0 ||
        b64_encode(k->server_key, SCRAM_KEY_LEN, vk, sizeof(vk)) < 0)
        return -1;
    int n = snprintf(out, outsz, STORED_PREFIX "%u,%s,%s,%s", k->iterations, salt, sk, vk);
    if (n < 0 || (size_t)n >= outsz) {
        if (outsz > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Decodes field f[0..len) as base64 of exactly want bytes (0 = 1..max). */
static bool field_b64(const char *f, size_t len, unsigned char *out, size_t max, size_t want, size_t *got)
{
    long n = b64_decode(f, len, out, max);
    if (n <= 0 || (want != 0 && (size_t)n != want))
        return false;
    if (got != NULL)
        *got = (size_t)n;
    return true;
}

int scram_keys_parse(const char *stored, struct scram_keys *k, struct error *err)
{
    memset(k, 0, sizeof(*k));
    if (stored == NULL)
        return error_set(err, "no SCRAM keys");
    if (strncasecmp(stored, STORED_PREFIX, strlen(STORED_PREFIX)) == 0)
        stored += strlen(STORED_PREFIX);
    size_t total = strnlen(stored, STORED_MAX + 1);
    if (total > STORED_MAX)
        return error_set(err, "SCRAM keys too long");
    /* Exactly four comma-separated fields. */
    const char *f[4];
    size_t fl[4], nf = 0;
    for (const char *p = stored;; p++) {
        const char *c = strchr(p, ',');
        if (nf == 4)
            return error_set(err, "SCRAM keys: too many fields");
        f[nf] = p;
        fl[nf] = c != NULL ? (size_t)(c - p) : strlen(p);
        nf++;
        if (c == NULL)
            break;
        p = c;
    }
    if (nf != 4)
        return error_set(err, "SCRAM keys: expected iterations,salt,StoredKey,ServerKey");
    uint32_t iter = 0;
    if (fl[0] == 0 || f[0][0] == '0' || strnum_u32(f[0], fl[0], &iter) < 0 || iter < SCRAM_ITER_MIN ||
        iter > SCRAM_ITER_MAX)
        return error_set(err, "SCRAM keys: iterations must be %u..%u", SCRAM_ITER_MIN, SCRAM_ITER_MAX);
    k->iterations = iter;
    if (!field_b64(f[1], fl[1], k->salt, SCRAM_SALT_MAX, 0, &k->salt_len) ||
        !field_b64(f[2], fl[2], k->stored_key, SCRAM_KEY_LEN, SCRAM_KEY_LEN, NULL) ||
        !field_b64(f[3], fl[3], k->server_key, SCRAM_KEY_LEN, SCRAM_KEY_LEN, NULL)) {
        secret_wipe(k, sizeof(*k));
        return error_set(err, "SCRAM keys: bad base64 salt or key");
    }
    return 0;
}

int scram_keys_check_password(const struct scram_keys *k, const char *password, size_t pwlen,
                              struct error *err)
{
    if (k->iterations < SCRAM_ITER_MIN || k->iterations > SCRAM_ITER_MAX || k->salt_len == 0 ||
        k->salt_len > SCRAM_SALT_MAX)
        return error_set(err, "SCRAM keys are malformed");
    if (password == NULL && pwlen > 0)
        return error_set(err, "no password");
    char *prep = NULL;
    /* A password SASLprep refuses cannot be the one the keys came from: a
     * mismatch, not a fault of the stored keys. */
    if (saslprep(password != NULL ? password : "", pwlen, &prep, NULL) < 0)
        return 0;
    struct scram_keys d = *k;
    int r = derive_prepped(prep, &d, err);
    secret_free_str(&prep);
    if (r == 0)
        r = CRYPTO_memcmp(d.stored_key, k->stored_key, SCRAM_KEY_LEN) == 0 ? 1 : 0;
    secret_wipe(&d, sizeof(d));
    return r;
}

void scram_keys_fake(const unsigned char secret[32], const char *user, uint32_t iterations,
                     struct scram_keys *k)
{
    unsigned char mac[SCRAM_KEY_LEN];
    memset(k, 0, sizeof(*k));
    k->iterations = iterations;
    k->salt_len = SCRAM_SALT_LEN;
    if (user == NULL)
        user = "";
    /* Stable per name so repeated probes see one salt, as for a real user. */
    const void *parts[] = {user};
    const size_t lens[] = {strlen(user)};
    if (secret_hmac(secret, 32, parts, lens, 1, mac, sizeof(mac)) == 0)
        memcpy(k->salt, mac, SCRAM_SALT_LEN);
    else if (secret_random(k->salt, SCRAM_SALT_LEN) < 0)
        memset(k->salt, 0, SCRAM_SALT_LEN);
    /* Random keys: no proof can match (left zero if the CSPRNG failed, since
     * StoredKey = H(ClientKey) has no known preimage either way). */
    if (secret_random(k->stored_key, SCRAM_KEY_LEN) < 0 || secret_random(k->server_key, SCRAM_KEY_LEN) < 0) {
        memset(k->stored_key, 0, SCRAM_KEY_LEN);
        memset(k->server_key, 0, SCRAM_KEY_LEN);
    }
    secret_wipe(mac, sizeof(mac));
}
