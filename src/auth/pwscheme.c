/* Scheme dispatch ("{SCHEME}" prefix or bare string) and crypt(3) verification. */
#include "auth/pwscheme.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/pwscheme_int.h"
#include "common/secret.h"

#define SCHEME_NAME_MAX 32

enum method {
    M_ARGON2ID,
    M_ARGON2I,
    M_BLF_CRYPT,
    M_SHA512_CRYPT,
    M_SHA256_CRYPT,
    M_CRYPT,     /* any crypt(3) string; strength decided by its prefix */
    M_SCRAM,     /* SCRAM-SHA-256 keys: PBKDF2, kept for SCRAM, upgraded on login */
    M_MD5_CRYPT, /* weak */
    M_MD5,       /* weak: Dovecot's {MD5} is MD5-CRYPT when "$1$", else PLAIN-MD5 */
    M_PLAIN,     /* weak */
    M_PLAIN_MD5, /* weak */
    M_SHA1,      /* weak */
    M_SSHA,      /* weak */
};

static const struct {
    const char *name;
    enum method method;
    bool weak;
} schemes[] = {
    {"ARGON2ID", M_ARGON2ID, false},
    {"ARGON2I", M_ARGON2I, false},
    {"BLF-CRYPT", M_BLF_CRYPT, false},
    {"SHA512-CRYPT", M_SHA512_CRYPT, false},
    {"SHA256-CRYPT", M_SHA256_CRYPT, false},
    {"CRYPT", M_CRYPT, false},
    {"SCRAM-SHA-256", M_SCRAM, false},
    {"MD5-CRYPT", M_MD5_CRYPT, true},
    {"MD5", M_MD5, true},
    {"PLAIN", M_PLAIN, true},
    {"CLEAR", M_PLAIN, true},
    {"CLEARTEXT", M_PLAIN, true},
    {"PLAIN-MD5", M_PLAIN_MD5, true},
    {"LDAP-MD5", M_PLAIN_MD5, true},
    {"SHA", M_SHA1, true},
    {"SHA1", M_SHA1, true},
    {"SSHA", M_SSHA, true},
};

// clang-format off
/* crypt(3) families by prefix. Anything not listed, other than a 13-character
 * DES string, is refused as malformed rather than handed to libcrypt. */
static const struct {
    const char *prefix;
    const char *name;
    bool weak;
} crypt_families[] = {
    {"$2b$", "bcrypt", false},
    {"$2y$", "bcrypt", false},
    {"$2a$", "bcrypt", false},
    {"$6$", "SHA512-CRYPT", false},
    {"$5$", "SHA256-CRYPT", false},
    {"$y$", "yescrypt", false},
    {"$gy$", "gost-yescrypt", false},
    {"$7$", "scrypt", false},
    {"$1$", "MD5-CRYPT", true},
    {"$2x$", "bcrypt $2x$", true}, /* the compatibility mode for the old sign-extension bug */
    {"$md5", "SunMD5", true},
    {"$sha1$", "SHA1-crypt", true},
    {"$3$", "NT-hash", true},
    {"_", "BSDi DES crypt", true},
};
// clang-format on

static bool is_des_crypt(const char *s)
{
    static const char alphabet[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return strlen(s) == 13 && strspn(s, alphabet) == 13;
}

/* Returns the family name of crypt string s and sets *weak, or NULL if unknown. */
static const char *crypt_family(const char *s, bool *weak)
{
    for (size_t i = 0; i < sizeof(crypt_families) / sizeof(crypt_families[0]); i++) {
        if (strncmp(s, crypt_families[i].prefix, strlen(crypt_families[i].prefix)) == 0) {
            *weak = crypt_families[i].weak;
            return crypt_families[i].name;
        }
    }
    if (is_des_crypt(s)) {
        *weak = true;
        return "DES crypt";
    }
    return NULL;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* crypt_rn of the password with stored as the setting; the output must equal
 * stored. libcrypt's ~32 KiB work area lives on the heap and is wiped. */
static int verify_crypt(const char *stored, const char *pw, size_t pwlen, struct error *err)
{
    /* crypt(3) takes a C string: a password with a NUL cannot be the one stored. */
    if (memchr(pw, '\0', pwlen) != NULL)
        return 0;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *phrase = malloc(pwlen + 1);
    int r;
    if (cd == NULL || phrase == NULL) {
        r = error_set(err, "crypt: out of memory");
        goto out;
    }
    memcpy(phrase, pw, pwlen);
    phrase[pwlen] = '\0';
    const char *res = crypt_rn(phrase, stored, cd, (int)sizeof(*cd));
    size_t slen = strlen(stored);
    if (res == NULL || res[0] == '*')
        r = error_set(err, "malformed crypt hash or algorithm not supported by libcrypt");
    else if (strlen(res) != slen)
        /* Same setting, same output length whatever the password: a mismatch
         * means stored was truncated or padded, not a wrong password. */
        r = error_set(err, "malformed crypt hash");
    else
        r = secret_equal(res, stored, slen) ? 1 : 0;
out:
    if (cd != NULL)
        secret_wipe(cd, sizeof(*cd));
    free(cd);
    if (phrase != NULL)
        secret_wipe(phrase, pwlen + 1);
    free(phrase);
    return r;
}

/* Splits stored into a method and the body after any "{SCHEME}". */
static int parse_stored(const char *stored, enum method *m, bool *weak, const char **body, char *sname,
                        struct error *err)
{
    if (stored[0] != '{') {
        *body = stored;
        *weak = false;
        if (has_prefix(stored, "$argon2id$")) {
            *m = M_ARGON2ID;
            strcpy(sname, "ARGON2ID");
        } else if (has_prefix(stored, "$argon2i$")) {
            *m = M_ARGON2I;
            strcpy(sname, "ARGON2I");
        } else {
            *m = M_CRYPT;
            strcpy(sname, "CRYPT");
        }
        return 0;
    }
    const char *end = strchr(stored, '}');
    size_t n = end != NULL ? (size_t)(end - stored - 1) : 0;
    /* The name is echoed in errors, so only a short plain token is accepted. */
    if (end == NULL || n == 0 || n > SCHEME_NAME_MAX ||
        strspn(stored + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != n)
        return error_set(err, "malformed {SCHEME} prefix");
    memcpy(sname, stored + 1, n);
    sname[n] = '\0';
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strcasecmp(sname, schemes[i].name) == 0) {
            *m = schemes[i].method;
            *weak = schemes[i].weak;
            *body = end + 1;
            strcpy(sname, schemes[i].name);
            return 0;
        }
    }
    return error_set(err, "unknown password scheme {%s}", sname);
}

static int refuse_weak(const char *what, struct error *err)
{
    return error_set(err, "weak password scheme %s refused (allow_weak is off)", what);
}

int pwscheme_verify(const char *stored, const char *password, size_t pwlen, bool allow_weak,
                    struct error *err)
{
    if (stored == NULL)
        return error_set(err, "no stored password hash");
    if (password == NULL && pwlen > 0)
        return error_set(err, "no password");
    if (password == NULL)
        password = "";

    enum method m = M_CRYPT;
    bool weak = true;
    const char *body = NULL;
    char sname[SCHEME_NAME_MAX + 1];
    if (parse_stored(stored, &m, &weak, &body, sname, err) < 0)
        return -1;
    if (weak && !allow_weak)
        return error_set(err, "weak password scheme {%s} refused (allow_weak is off)", sname);
    /* No stored hash can come from a longer password (pwscheme_hash refuses it). */
    if (pwlen > PWSCHEME_PW_MAX)
        return 0;

    switch (m) {
    case M_ARGON2ID: return pwscheme_argon2_verify(body, true, password, pwlen, err);
    case M_ARGON2I: return pwscheme_argon2_verify(body, false, password, pwlen, err);
    case M_SCRAM: return pwscheme_scram_verify(body, password, pwlen, err);
    case M_BLF_CRYPT:
        if (!has_prefix(body, "$2y$") && !has_prefix(body, "$2b$") && !has_prefix(body, "$2a$"))
            return error_set(err, "malformed {BLF-CRYPT} hash");
        return verify_crypt(body, password, pwlen, err);
    case M_SHA512_CRYPT:
        if (!has_prefix(body, "$6$"))
            return error_set(err, "malformed {SHA512-CRYPT} hash");
        return verify_crypt(body, password, pwlen, err);
    case M_SHA256_CRYPT:
        if (!has_prefix(body, "$5$"))
            return error_set(err, "malformed {SHA256-CRYPT} hash");
        return verify_crypt(body, password, pwlen, err);
    case M_MD5_CRYPT:
        if (!has_prefix(body, "$1$"))
            return error_set(err, "malformed {MD5-CRYPT} hash");
        return verify_crypt(body, password, pwlen, err);
    case M_CRYPT: {
        const char *family = crypt_family(body, &weak);
        if (family == NULL)
            return error_set(err, "malformed or unknown crypt hash");
        if (weak && !allow_weak)
            return refuse_weak(family, err);
        return verify_crypt(body, password, pwlen, err);
    }
    case M_MD5:
        if (has_prefix(body, "$1$"))
            return verify_crypt(body, password, pwlen, err);
        return pwscheme_weak_verify(PWSCHEME_WEAK_PLAIN_MD5, body, password, pwlen, err);
    case M_PLAIN: return pwscheme_weak_verify(PWSCHEME_WEAK_PLAIN, body, password, pwlen, err);
    case M_PLAIN_MD5: return pwscheme_weak_verify(PWSCHEME_WEAK_PLAIN_MD5, body, password, pwlen, err);
    case M_SHA1: return pwscheme_weak_verify(PWSCHEME_WEAK_SHA1, body, password, pwlen, err);
    case M_SSHA: return pwscheme_weak_verify(PWSCHEME_WEAK_SSHA, body, password, pwlen, err);
    }
    return error_set(err, "unhandled password scheme");
}

bool pwscheme_needs_upgrade(const char *stored)
{
    if (stored == NULL)
        return true;
    const char *enc = stored;
    if (strncasecmp(stored, "{ARGON2ID}", 10) == 0)
        enc = stored + 10;
    struct pwscheme_argon2_params p;
    if (pwscheme_argon2_parse(enc, true, &p) < 0)
        return true;
    return p.m_cost_kib < pwscheme_argon2_default.m_cost_kib || p.t_cost < pwscheme_argon2_default.t_cost;
}

int pwscheme_dummy_like(const char *sample, char *out, size_t outsz)
{
    enum method m;
    bool weak;
    const char *body;
    char sname[SCHEME_NAME_MAX + 1];
    unsigned char rnd[18];
    char pw[40];
    if (parse_stored(sample, &m, &weak, &body, sname, NULL) < 0 || weak || secret_random(rnd, sizeof(rnd)) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    int r = -1;
    if (m == M_ARGON2ID || m == M_ARGON2I) {
        struct pwscheme_argon2_params p;
        if (pwscheme_argon2_parse(body, m == M_ARGON2ID, &p) == 0)
            r = pwscheme_hash(pw, strlen(pw), &p, out, outsz, NULL);
    } else if (m == M_SCRAM) {
        r = pwscheme_scram_dummy(body, pw, out, outsz);
    } else if (m == M_CRYPT || m == M_BLF_CRYPT || m == M_SHA512_CRYPT || m == M_SHA256_CRYPT) {
        struct crypt_data *cd = calloc(1, sizeof(*cd));
        const char *res = cd ? crypt_rn(pw, body, cd, (int)sizeof(*cd)) : NULL;
        if (res != NULL && res[0] != '*' && (size_t)snprintf(out, outsz, "{%s}%s", sname, res) < outsz)
            r = 0;
        if (cd != NULL)
            secret_wipe(cd, sizeof(*cd));
        free(cd);
    }
    secret_wipe(pw, sizeof(pw));
    return r;
}
