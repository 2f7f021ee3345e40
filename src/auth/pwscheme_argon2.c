/* Argon2id/Argon2i: new hashes, verification, and the per-process dummy hash. */
#include <argon2.h>
#include <pthread.h>
#include <string.h>

#include "auth/pwscheme.h"
#include "auth/pwscheme_int.h"
#include "common/secret.h"
#include "common/strnum.h"

#define ARGON2_SALT_LEN 16
#define ARGON2_HASH_LEN 32
#define ARGON2ID_PREFIX "{ARGON2ID}"

/* A stored string chooses its own cost; these bounds stop one bad row from
 * making authd allocate gigabytes or spin for minutes per attempt. They sit
 * well above any sane setting (RFC 9106 tops out at 2 GiB, t=1). */
#define ARGON2_VERIFY_M_MAX (1024u * 1024u) /* KiB = 1 GiB */
#define ARGON2_VERIFY_T_MAX 64u
#define ARGON2_VERIFY_P_MAX 16u

const struct pwscheme_argon2_params pwscheme_argon2_default = {
    .t_cost = 3,
    .m_cost_kib = 65536,
    .parallelism = 1,
};

/* Reads "K=digits" followed by delim; returns the position after delim or NULL. */
static const char *parse_kv(const char *s, char key, char delim, uint32_t *v)
{
    if (s[0] != key || s[1] != '=')
        return NULL;
    s += 2;
    size_t n = strspn(s, "0123456789");
    if (s[n] != delim || strnum_u32(s, n, v) < 0)
        return NULL;
    return s + n + 1;
}

/* Unpadded base64 as argon2 writes it: at least one character, alphabet only. */
static size_t b64_span(const char *s)
{
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

int pwscheme_argon2_parse(const char *enc, bool id, struct pwscheme_argon2_params *p)
{
    const char *prefix = id ? "$argon2id$" : "$argon2i$";
    size_t plen = strlen(prefix);
    if (strncmp(enc, prefix, plen) != 0)
        return -1;
    const char *s = enc + plen;
    uint32_t v, m, t, par;
    if (s[0] == 'v') { /* absent means version 0x10, which libargon2 still verifies */
        if ((s = parse_kv(s, 'v', '$', &v)) == NULL || (v != ARGON2_VERSION_10 && v != ARGON2_VERSION_13))
            return -1;
    }
    if ((s = parse_kv(s, 'm', ',', &m)) == NULL || (s = parse_kv(s, 't', ',', &t)) == NULL ||
        (s = parse_kv(s, 'p', '$', &par)) == NULL)
        return -1;
    size_t n = b64_span(s);
    if (n == 0 || s[n] != '$')
        return -1;
    s += n + 1;
    n = b64_span(s);
    if (n == 0 || s[n] != '\0')
        return -1;
    p->m_cost_kib = m;
    p->t_cost = t;
    p->parallelism = par;
    return 0;
}

int pwscheme_argon2_verify(const char *enc, bool id, const char *pw, size_t pwlen, struct error *err)
{
    struct pwscheme_argon2_params p;
    if (pwscheme_argon2_parse(enc, id, &p) < 0)
        return error_set(err, "malformed %s hash", id ? "Argon2id" : "Argon2i");
    if (p.m_cost_kib > ARGON2_VERIFY_M_MAX || p.t_cost > ARGON2_VERIFY_T_MAX ||
        p.parallelism > ARGON2_VERIFY_P_MAX)
        return error_set(err, "Argon2 hash cost m=%u,t=%u,p=%u exceeds the verify limits", p.m_cost_kib,
                         p.t_cost, p.parallelism);
    /* libargon2 compares the tags in constant time. */
    int rc = id ? argon2id_verify(enc, pw, pwlen) : argon2i_verify(enc, pw, pwlen);
    if (rc == ARGON2_OK)
        return 1;
    if (rc == ARGON2_VERIFY_MISMATCH)
        return 0;
    return error_set(err, "Argon2 verify: %s", argon2_error_message(rc));
}

int pwscheme_hash(const char *password, size_t pwlen, const struct pwscheme_argon2_params *p, char *out,
                  size_t outsz, struct error *err)
{
    if (p == NULL)
        p = &pwscheme_argon2_default;
    if (password == NULL && pwlen > 0)
        return error_set(err, "no password");
    if (pwlen > PWSCHEME_PW_MAX)
        return error_set(err, "password longer than %d bytes", PWSCHEME_PW_MAX);
    size_t prefix = strlen(ARGON2ID_PREFIX);
    size_t enclen = argon2_encodedlen(p->t_cost, p->m_cost_kib, p->parallelism, ARGON2_SALT_LEN,
                                      ARGON2_HASH_LEN, Argon2_id);
    if (outsz < prefix + enclen)
        return error_set(err, "hash buffer too small");

    unsigned char salt[ARGON2_SALT_LEN];
    if (secret_random(salt, sizeof(salt)) < 0)
        return error_set(err, "random salt: CSPRNG failure");
    memcpy(out, ARGON2ID_PREFIX, prefix);
    int rc = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, password, pwlen, salt,
                                   sizeof(salt), ARGON2_HASH_LEN, out + prefix, outsz - prefix);
    if (rc != ARGON2_OK) {
        secret_wipe(out, outsz);
        return error_set(err, "Argon2id hash (m=%u KiB, t=%u, p=%u): %s", p->m_cost_kib, p->t_cost,
                         p->parallelism, argon2_error_message(rc));
    }
    return 0;
}

/* The first caller's cost wins; the hash is computed once under pthread_once
 * and never changes afterwards, so readers need no lock. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dummy_params_lock = PTHREAD_MUTEX_INITIALIZER;
static bool dummy_params_set;
static struct pwscheme_argon2_params dummy_params;
static char dummy_buf[PWSCHEME_HASH_MAX];
static const char *dummy_hash;

static void dummy_init(void)
{
    unsigned char pw[32];
    if (secret_random(pw, sizeof(pw)) == 0 &&
        pwscheme_hash((const char *)pw, sizeof(pw), &dummy_params, dummy_buf, sizeof(dummy_buf), NULL) == 0)
        dummy_hash = dummy_buf;
    secret_wipe(pw, sizeof(pw));
}

/* Returns NULL only if the CSPRNG or Argon2 failed (then forever: the caller's
 * pwscheme_verify(NULL, ...) fails closed with -1). */
const char *pwscheme_dummy_hash(const struct pwscheme_argon2_params *p)
{
    pthread_mutex_lock(&dummy_params_lock);
    if (!dummy_params_set) {
        dummy_params = p != NULL ? *p : pwscheme_argon2_default;
        dummy_params_set = true;
    }
    pthread_mutex_unlock(&dummy_params_lock);
    pthread_once(&dummy_once, dummy_init);
    return dummy_hash;
}
