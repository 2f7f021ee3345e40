/* Password schemes: known vectors from tools other than the code under test,
 * weak-scheme policy, malformed input, Argon2id round trip and the dummy hash.
 *
 * Where the vectors come from:
 *   SHA512/SHA256-CRYPT: `openssl passwd -6|-5 -salt saltsalt 'correct horse'`
 *   MD5-CRYPT:           `openssl passwd -1 -salt saltsalt 'correct horse'`
 *   bcrypt "U*U":        the crypt_blowfish / OpenBSD test vector
 *   bcrypt, yescrypt, DES: Python's crypt module (libxcrypt) with fixed settings
 *   Argon2id/Argon2i:    the reference `argon2` CLI (Debian package argon2), e.g.
 *                        `echo -n 'correct horse' | argon2 saltsaltsaltsalt -id -t 2 -m 10 -p 1 -e`
 *   PLAIN-MD5/SHA1/SSHA: `openssl dgst -md5|-sha1 -binary | base64` */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pwscheme.h"
#include "common/secret.h"

#define PW "correct horse"
#define PWLEN (sizeof(PW) - 1)

static const struct pwscheme_argon2_params fast = {.t_cost = 1, .m_cost_kib = 1024, .parallelism = 1};

static const char sha512_vec[] = "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2Ep"
                                 "lzfAqxL5Vvwp2scFtv/uamSo5z0";
static const char sha256_vec[] = "$5$saltsalt$myjXcpMpE2Ofk7fj9hqyNYSn6lmWG4Mqnjx.KIRRr4/";
static const char md5crypt_vec[] = "$1$saltsalt$NuzA7WTAelpl95xgBGWN60";
static const char bcrypt_uu[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"; /* "U*U" */
static const char bcrypt_vec[] = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2";
static const char yescrypt_vec[] = "$y$j9T$saltsaltsaltsalt$gNcNhvFTt75JDF1LO9O.MCPyp8TkQxrhQSKqUeo/Uy6";
static const char des_vec[] = "abhfCpXqd4GrI";
static const char argon2id_vec[] =
    "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk";
static const char argon2id_p2_vec[] =
    "$argon2id$v=19$m=64,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$vnXYxPvf2nX+mBli9pMlKONYXiHquLCsjGLLhNWRSAU";
static const char argon2i_vec[] =
    "$argon2i$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$k74KtOeXRC+Liob2I0b0MKFpIPhXAdb8cojiLViemA4";

static char buf[PWSCHEME_HASH_MAX];

static const char *with(const char *scheme, const char *body)
{
    snprintf(buf, sizeof(buf), "%s%s", scheme, body);
    return buf;
}

static int verify(const char *stored, const char *pw, bool weak)
{
    struct error err = {{0}};
    return pwscheme_verify(stored, pw, strlen(pw), weak, &err);
}

static void test_sha_crypt_vectors(void **state)
{
    assert_int_equal(verify(with("{SHA512-CRYPT}", sha512_vec), PW, false), 1);
    assert_int_equal(verify(with("{SHA512-CRYPT}", sha512_vec), "correct horsf", false), 0);
    assert_int_equal(verify(with("{SHA512-CRYPT}", sha512_vec), "", false), 0);
    assert_int_equal(verify(with("{sha512-Crypt}", sha512_vec), PW, false), 1); /* case-insensitive */
    assert_int_equal(verify(with("{CRYPT}", sha512_vec), PW, false), 1);
    assert_int_equal(verify(sha512_vec, PW, false), 1); /* bare crypt string */
    assert_int_equal(verify(with("{SHA256-CRYPT}", sha256_vec), PW, false), 1);
    assert_int_equal(verify(with("{SHA256-CRYPT}", sha256_vec), "Correct horse", false), 0);
    assert_int_equal(verify(sha256_vec, PW, false), 1);
    /* Scheme and body disagree. */
    assert_int_equal(verify(with("{SHA256-CRYPT}", sha512_vec), PW, false), -1);
    assert_int_equal(verify(with("{SHA512-CRYPT}", sha256_vec), PW, false), -1);
}

static void test_bcrypt_vectors(void **state)
{
    assert_int_equal(verify(bcrypt_uu, "U*U", false), 1);
    assert_int_equal(verify(bcrypt_uu, "U*V", false), 0);
    assert_int_equal(verify(with("{BLF-CRYPT}", bcrypt_uu), "U*U", false), 1);
    /* $2y$ and $2b$ are the same algorithm with a different tag. */
    char y[sizeof(bcrypt_uu)];
    memcpy(y, bcrypt_uu, sizeof(y));
    y[2] = 'y';
    assert_int_equal(verify(with("{BLF-CRYPT}", y), "U*U", false), 1);
    assert_int_equal(verify(with("{blf-crypt}", bcrypt_vec), PW, false), 1);
    assert_int_equal(verify(with("{BLF-CRYPT}", bcrypt_vec), PW "x", false), 0);
    assert_int_equal(verify(with("{BLF-CRYPT}", sha512_vec), PW, false), -1);
}

static void test_yescrypt_vector(void **state)
{
    assert_int_equal(verify(yescrypt_vec, PW, false), 1);
    assert_int_equal(verify(with("{CRYPT}", yescrypt_vec), PW, false), 1);
    assert_int_equal(verify(yescrypt_vec, "wrong", false), 0);
}

static void test_argon2_vectors(void **state)
{
    assert_int_equal(verify(with("{ARGON2ID}", argon2id_vec), PW, false), 1);
    assert_int_equal(verify(with("{argon2id}", argon2id_vec), PW, false), 1);
    assert_int_equal(verify(argon2id_vec, PW, false), 1);
    assert_int_equal(verify(argon2id_vec, "correct horse ", false), 0);
    assert_int_equal(verify(argon2id_p2_vec, PW, false), 1);
    assert_int_equal(verify(with("{ARGON2I}", argon2i_vec), PW, false), 1);
    assert_int_equal(verify(argon2i_vec, PW, false), 1);
    assert_int_equal(verify(argon2i_vec, "nope", false), 0);
    /* The prefix names the variant; the body must agree. */
    assert_int_equal(verify(with("{ARGON2I}", argon2id_vec), PW, false), -1);
    assert_int_equal(verify(with("{ARGON2ID}", argon2i_vec), PW, false), -1);
}

static void test_argon2_hash_roundtrip(void **state)
{
    char h1[PWSCHEME_HASH_MAX], h2[PWSCHEME_HASH_MAX];
    struct error err = {{0}};
    assert_int_equal(pwscheme_hash("hunter2hunter2", 14, &fast, h1, sizeof(h1), &err), 0);
    assert_int_equal(pwscheme_hash("hunter2hunter2", 14, &fast, h2, sizeof(h2), &err), 0);
    assert_true(strncmp(h1, "{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$", 40) == 0);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_int_equal(pwscheme_verify(h1, "hunter2hunter2", 14, false, &err), 1);
    assert_int_equal(pwscheme_verify(h2, "hunter2hunter2", 14, false, &err), 1);
    assert_int_equal(pwscheme_verify(h1, "hunter2hunter3", 14, false, &err), 0);
    assert_int_equal(pwscheme_verify(h1, "hunter2hunter2", 13, false, &err), 0);
    /* Embedded NUL is part of the password for Argon2. */
    assert_int_equal(pwscheme_hash("a\0b", 3, &fast, h1, sizeof(h1), &err), 0);
    assert_int_equal(pwscheme_verify(h1, "a\0b", 3, false, &err), 1);
    assert_int_equal(pwscheme_verify(h1, "a\0c", 3, false, &err), 0);
    assert_int_equal(pwscheme_verify(h1, "a", 1, false, &err), 0);
}

static void test_argon2_hash_errors(void **state)
{
    char h[PWSCHEME_HASH_MAX];
    struct error err = {{0}};
    assert_int_equal(pwscheme_hash("pw", 2, &fast, h, 40, &err), -1);
    assert_non_null(strstr(err.msg, "too small"));
    struct pwscheme_argon2_params bad = {.t_cost = 0, .m_cost_kib = 1024, .parallelism = 1};
    assert_int_equal(pwscheme_hash("pw", 2, &bad, h, sizeof(h), &err), -1);
    bad = (struct pwscheme_argon2_params){.t_cost = 1, .m_cost_kib = 1, .parallelism = 1};
    assert_int_equal(pwscheme_hash("pw", 2, &bad, h, sizeof(h), &err), -1);
    static char longpw[600];
    memset(longpw, 'a', sizeof(longpw));
    assert_int_equal(pwscheme_hash(longpw, sizeof(longpw), &fast, h, sizeof(h), &err), -1);
    /* ... and no stored hash can match such a password. */
    assert_int_equal(pwscheme_verify(argon2id_vec, longpw, sizeof(longpw), false, &err), 0);
}

static void test_argon2_defaults(void **state)
{
    assert_int_equal(pwscheme_argon2_default.t_cost, 3);
    assert_int_equal(pwscheme_argon2_default.m_cost_kib, 65536);
    assert_int_equal(pwscheme_argon2_default.parallelism, 1);
}

struct weak_case {
    const char *stored;
    const char *family; /* expected in the refusal message */
};

static const struct weak_case weak_cases[] = {
    {"{PLAIN}" PW, "{PLAIN}"},
    {"{plain}" PW, "{PLAIN}"},
    {"{CLEAR}" PW, "{CLEAR}"},
    {"{CLEARTEXT}" PW, "{CLEARTEXT}"},
    {"{MD5-CRYPT}$1$saltsalt$NuzA7WTAelpl95xgBGWN60", "{MD5-CRYPT}"},
    {"{MD5}$1$saltsalt$NuzA7WTAelpl95xgBGWN60", "{MD5}"},
    {"{MD5}3cb4e732631f47e6eb961f34554b7cde", "{MD5}"},
    {"{PLAIN-MD5}3cb4e732631f47e6eb961f34554b7cde", "{PLAIN-MD5}"},
    {"{PLAIN-MD5}PLTnMmMfR+brlh80VUt83g==", "{PLAIN-MD5}"},
    {"{LDAP-MD5}PLTnMmMfR+brlh80VUt83g==", "{LDAP-MD5}"},
    {"{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "{SHA}"},
    {"{SHA1}L55TUjtiq8FBorTWAZ0jy6g129A=", "{SHA1}"},
    {"{SHA1}2f9e53523b62abc141a2b4d6019d23cba835dbd0", "{SHA1}"},
    {"{SSHA}j+QhUFeb/Km8696wAFHl1Vjce21OYUNsNHU=", "{SSHA}"},
    {"$1$saltsalt$NuzA7WTAelpl95xgBGWN60", "MD5-CRYPT"},
    {"{CRYPT}$1$saltsalt$NuzA7WTAelpl95xgBGWN60", "MD5-CRYPT"},
    {"abhfCpXqd4GrI", "DES crypt"},
    {"{CRYPT}abhfCpXqd4GrI", "DES crypt"},
};

static void test_weak_refused_unless_allowed(void **state)
{
    for (size_t i = 0; i < sizeof(weak_cases) / sizeof(weak_cases[0]); i++) {
        const char *s = weak_cases[i].stored;
        struct error err = {{0}};
        assert_int_equal(pwscheme_verify(s, PW, PWLEN, false, &err), -1);
        if (strstr(err.msg, "weak") == NULL || strstr(err.msg, weak_cases[i].family) == NULL)
            fail_msg("case %zu: unexpected refusal message '%s'", i, err.msg);
        /* The detail may be logged: it names the scheme, never the hash. */
        assert_null(strstr(err.msg, "saltsalt"));
        assert_null(strstr(err.msg, "3cb4e7"));
        if (pwscheme_verify(s, PW, PWLEN, true, &err) != 1)
            fail_msg("case %zu (%s) did not verify with allow_weak: %s", i, s, err.msg);
        if (pwscheme_verify(s, "Correct horse", PWLEN, true, &err) != 0)
            fail_msg("case %zu (%s) accepted a wrong password", i, s);
        /* A prefix of the password must not match either -- except under DES
         * crypt, which only ever looks at the first 8 characters (one more
         * reason it is refused by default). */
        int want = strcmp(weak_cases[i].family, "DES crypt") == 0 ? 1 : 0;
        assert_int_equal(pwscheme_verify(s, PW, PWLEN - 1, true, &err), want);
    }
    assert_int_equal(verify(des_vec, PW, true), 1);
    assert_int_equal(verify(md5crypt_vec, "x", true), 0);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "{}",
        "{SHA512-CRYPT",
        "{UNKNOWN}abc",
        "{SHA 512}abc",
        "{ARGON2ID}",
        "{ARGON2ID}garbage",
        "{ARGON2ID}$argon2id$v=19$m=1024,t=2,p=1$$",
        "{ARGON2ID}$argon2id$v=19$m=1024,t=2$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8",
        "{ARGON2ID}$argon2id$v=18$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8",
        "{ARGON2ID}$argon2id$v=19$m=-1,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8",
        "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk$",
        "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFn!A8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk",
        /* A stored string may not make authd allocate 4 GiB. */
        "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk",
        "$argon2id$v=19$m=1024,t=1000,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk",
        "{SHA512-CRYPT}$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2Ep", /* cut */
        "{SHA512-CRYPT}$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vv"
        "wp2scFtv/uamSo5z0X", /* padded */
        "{BLF-CRYPT}$2b$05$short",
        "{BLF-CRYPT}$2b$99$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
        "plaintext-not-a-hash",
        "{CRYPT}plaintext",
        "$9$unknown$family",
        "abhfCpXqd4Gr!",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct error err = {{0}};
        if (pwscheme_verify(bad[i], PW, PWLEN, false, &err) != -1)
            fail_msg("case %zu '%s' was not refused as malformed", i, bad[i]);
        if (err.msg[0] == '\0')
            fail_msg("case %zu '%s': no error detail", i, bad[i]);
    }
    struct error err = {{0}};
    assert_int_equal(pwscheme_verify(NULL, PW, PWLEN, false, &err), -1);
    /* Malformed bodies of weak schemes, once they are allowed. */
    assert_int_equal(verify("{PLAIN-MD5}zz", PW, true), -1);
    assert_int_equal(verify("{PLAIN-MD5}3cb4e732631f47e6eb961f34554b7cdg", PW, true), -1);
    assert_int_equal(verify("{SHA1}L55TUjtiq8FBorTWAZ0jy6g129A", PW, true), -1);
    assert_int_equal(verify("{SSHA}L55TUjtiq8FBorTWAZ0jy6g129A=", PW, true), -1); /* no salt */
    assert_int_equal(verify("{SSHA}!!!!", PW, true), -1);
}

static void test_crypt_nul_in_password(void **state)
{
    struct error err = {{0}};
    /* crypt(3) would stop at the NUL and match "U*U"; we must not. */
    assert_int_equal(pwscheme_verify(bcrypt_uu, "U*U\0junk", 8, false, &err), 0);
    assert_int_equal(pwscheme_verify(bcrypt_uu, "U*U", 3, false, &err), 1);
}

static void *dummy_thread(void *arg)
{
    return (void *)pwscheme_dummy_hash(&fast);
}

static void test_dummy_hash(void **state)
{
    const char *d = pwscheme_dummy_hash(&fast);
    assert_non_null(d);
    assert_true(strncmp(d, "{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$", 40) == 0);
    /* Made once: later callers get the same hash whatever they ask for. */
    struct pwscheme_argon2_params other = {.t_cost = 2, .m_cost_kib = 2048, .parallelism = 1};
    assert_ptr_equal(pwscheme_dummy_hash(&other), d);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, dummy_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_ptr_equal(r, d);
    }
    unsigned char rnd[16];
    assert_int_equal(secret_random(rnd, sizeof(rnd)), 0);
    struct error err = {{0}};
    assert_int_equal(pwscheme_verify(d, (const char *)rnd, sizeof(rnd), false, &err), 0);
    assert_int_equal(pwscheme_verify(d, "", 0, false, &err), 0);
}

static void test_needs_upgrade(void **state)
{
    assert_false(pwscheme_needs_upgrade("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                                        "MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk"));
    assert_false(pwscheme_needs_upgrade("$argon2id$v=19$m=131072,t=4,p=2$c2FsdHNhbHRzYWx0c2FsdA$"
                                        "MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/Myoh5GZwk"));
    assert_true(pwscheme_needs_upgrade(argon2id_vec)); /* m=1024 < default */
    assert_true(pwscheme_needs_upgrade(argon2i_vec));
    assert_true(pwscheme_needs_upgrade(sha512_vec));
    assert_true(pwscheme_needs_upgrade(bcrypt_vec));
    assert_true(pwscheme_needs_upgrade("{PLAIN}x"));
    assert_true(pwscheme_needs_upgrade("garbage"));
    assert_true(pwscheme_needs_upgrade(NULL));
}

/* The dummy for unknown users follows the scheme and cost of a real user's hash. */
static void test_dummy_like(void **state)
{
    char out[PWSCHEME_HASH_MAX];
    const char *sha = "{SHA512-CRYPT}$6$rounds=7000$abcdefgh$";
    char sample[PWSCHEME_HASH_MAX];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    const char *h = crypt_rn("pw", "$6$rounds=7000$abcdefgh$", cd, (int)sizeof(*cd));
    assert_non_null(h);
    snprintf(sample, sizeof(sample), "{SHA512-CRYPT}%s", h);
    free(cd);
    assert_int_equal(pwscheme_dummy_like(sample, out, sizeof(out)), 0);
    assert_true(strncmp(out, sha, 28) == 0); /* same scheme, rounds and salt setting */
    assert_int_equal(pwscheme_verify(out, "pw", 2, false, NULL), 0);
    struct pwscheme_argon2_params p = {.t_cost = 2, .m_cost_kib = 1024, .parallelism = 1};
    char a[PWSCHEME_HASH_MAX];
    assert_int_equal(pwscheme_hash("pw", 2, &p, a, sizeof(a), NULL), 0);
    assert_int_equal(pwscheme_dummy_like(a, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "$m=1024,t=2,p=1$"));
    assert_int_equal(pwscheme_verify(out, "pw", 2, false, NULL), 0);
    assert_int_equal(pwscheme_dummy_like("{PLAIN}secret", out, sizeof(out)), -1);
    assert_int_equal(pwscheme_dummy_like("{NOPE}x", out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha_crypt_vectors),
        cmocka_unit_test(test_bcrypt_vectors),
        cmocka_unit_test(test_yescrypt_vector),
        cmocka_unit_test(test_argon2_vectors),
        cmocka_unit_test(test_argon2_hash_roundtrip),
        cmocka_unit_test(test_argon2_hash_errors),
        cmocka_unit_test(test_argon2_defaults),
        cmocka_unit_test(test_weak_refused_unless_allowed),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_crypt_nul_in_password),
        cmocka_unit_test(test_dummy_hash),
        cmocka_unit_test(test_dummy_like),
        cmocka_unit_test(test_needs_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
