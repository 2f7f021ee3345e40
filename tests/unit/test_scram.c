/* SCRAM-SHA-256(-PLUS): the RFC 7677 vector end to end, keys in Dovecot's
 * notation, SASLprep, channel-binding rules, wrong proofs and nonces,
 * malformed messages, and the {SCRAM-SHA-256} password scheme.
 *
 * The client side is written here with OpenSSL directly (not with the code
 * under test), following RFC 5802 section 3.
 * Vectors from other tools:
 *   dovecot_pencil/dovecot_horse: `doveadm pw -s SCRAM-SHA-256 -p pencil` and
 *                                 `-p 'correct horse'` (Dovecot 2.3.19)
 *   ours_10000: Python hashlib (PBKDF2, HMAC, SHA-256) with salt "saltsaltsaltsalt",
 *               which `doveadm pw -t '{SCRAM-SHA-256}...' -p 'correct horse'` verifies
 *   pencil keys with the RFC 7677 salt: Python hashlib too */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pwscheme.h"
#include "common/b64.h"
#include "sasl/scram.h"

static const char dovecot_pencil[] = "{SCRAM-SHA-256}4096,3qSh2hLJijImBqpUUg3eJw==,"
                                     "adJ/RnpW0hhusOSF6yvR/vCbxg2gdpOx4Krfo7Lvljc=,"
                                     "axKJpDABUUwMsD+AIKv1pC9BEeYZITZphQZPuO3XcZQ=";
static const char dovecot_horse[] = "{SCRAM-SHA-256}4096,QJc6Jsk3K5Lz80Nqsar+vw==,"
                                    "IGSjkG8XMGhUJUyJXvSrHR1bgkDEO+7+WPU09qW9qCU=,"
                                    "Eb7k9Tn6z43fMAWOgpT32XD1lah0gOAUQH0QUZPOsgM=";
static const char ours_10000[] = "{SCRAM-SHA-256}10000,c2FsdHNhbHRzYWx0c2FsdA==,"
                                 "7tZeYy5pJ+yCaU2sTYoFklY0Qtf7l65dKDFyNqGgd4M=,"
                                 "EXKyocw49icOn4fB46vFu28rDXpP63sNmc84A1md2xg=";

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="

static const unsigned char exporter[32] = "0123456789abcdef0123456789abcdef";    /* a tls-exporter value */
static const unsigned char unique[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* a TLS 1.2 Finished */

/* ---- the client, by hand ---- */

struct client {
    unsigned char salted[32];
    char nonce[512];
    char server_first[SCRAM_MSG_MAX];
    char cfinal[2048];
    char expect_v[80];
    unsigned char client_key[32];
};

static void hmac(const unsigned char *key, const char *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, (const unsigned char *)data, len, out, &n));
    assert_int_equal(n, 32);
}

/* Parses server-first, then writes client-final with c=base64(cbind) and the
 * proof for pw; expect_v gets the ServerSignature the server must send. */
static void client_final(struct client *c, const char *bare, const char *sfirst, const char *pw,
                         const unsigned char *cbind, size_t cbind_len, const char *ext)
{
    char salt_b64[128], nonce[512];
    unsigned iter = 0;
    assert_int_equal(sscanf(sfirst, "r=%511[^,],s=%127[^,],i=%u", nonce, salt_b64, &iter), 3);
    unsigned char salt[96];
    long sl = b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
    assert_true(sl > 0);
    assert_int_equal(
        PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)sl, (int)iter, EVP_sha256(), 32, c->salted), 1);
    char cb64[256];
    assert_true(b64_encode(cbind, cbind_len, cb64, sizeof(cb64)) > 0);
    char wp[1024];
    snprintf(wp, sizeof(wp), "c=%s,r=%s%s", cb64, nonce, ext != NULL ? ext : "");
    char am[4096];
    int amlen = snprintf(am, sizeof(am), "%s,%s,%s", bare, sfirst, wp);
    unsigned char ck[32], sk[32], sig[32], proof[32], srvk[32], ssig[32];
    hmac(c->salted, "Client Key", 10, ck);
    SHA256(ck, 32, sk);
    hmac(sk, am, (size_t)amlen, sig);
    for (int i = 0; i < 32; i++)
        proof[i] = ck[i] ^ sig[i];
    memcpy(c->client_key, ck, 32);
    char p64[64];
    b64_encode(proof, 32, p64, sizeof(p64));
    snprintf(c->cfinal, sizeof(c->cfinal), "%s,p=%s", wp, p64);
    hmac(c->salted, "Server Key", 10, srvk);
    hmac(srvk, am, (size_t)amlen, ssig);
    char v64[64];
    b64_encode(ssig, 32, v64, sizeof(v64));
    snprintf(c->expect_v, sizeof(c->expect_v), "v=%s", v64);
}

static size_t gs2_cbind(const char *gs2, const unsigned char *cb, size_t cblen, unsigned char *out)
{
    size_t n = strlen(gs2);
    memcpy(out, gs2, n);
    if (cblen > 0)
        memcpy(out + n, cb, cblen);
    return n + cblen;
}

static const char *bare_of(const char *cfirst)
{
    /* gs2-header ends at its second comma. */
    const char *p = strchr(cfirst, ',');
    return strchr(p + 1, ',') + 1;
}

/* A whole conversation; returns scram_server_final's result, out = its answer.
 * The client's c= is cbind (gs2 header and any binding data it has). */
static int run(struct scram_server *s, const struct scram_keys *k, const char *cfirst, const char *pw,
               const unsigned char *cbind, size_t cbind_len, const char *ext, char *out, size_t outsz,
               struct client *c)
{
    char user[SCRAM_NAME_MAX + 1], authzid[SCRAM_NAME_MAX + 1];
    const char *reply = NULL;
    struct error err = {{0}};
    assert_int_equal(scram_server_client_first(s, (const unsigned char *)cfirst, strlen(cfirst), user,
                                               authzid, &reply, &err),
                     0);
    int n = scram_server_first(s, k, c->server_first, sizeof(c->server_first));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(c->server_first));
    client_final(c, bare_of(cfirst), c->server_first, pw, cbind, cbind_len, ext);
    size_t outlen = 99;
    int r = scram_server_final(s, k, (const unsigned char *)c->cfinal, strlen(c->cfinal), out, outsz, &outlen,
                               &err);
    if (r >= 0)
        assert_int_equal(outlen, strlen(out));
    return r;
}

static struct scram_keys pencil_keys(void)
{
    struct scram_keys k;
    unsigned char salt[16];
    struct error err = {{0}};
    assert_int_equal(b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt)), 16);
    assert_int_equal(scram_keys_derive("pencil", 6, salt, 16, 4096, &k, &err), 0);
    return k;
}

/* ---- tests ---- */

static void test_rfc7677_vector(void **state)
{
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    assert_non_null(s);
    char user[SCRAM_NAME_MAX + 1], authzid[SCRAM_NAME_MAX + 1], out[SCRAM_MSG_MAX];
    const char *reply = NULL;
    struct error err = {{0}};
    const char cf[] = "n,,n=user,r=" RFC_CNONCE;
    unsigned char ck[SCRAM_KEY_LEN];
    assert_false(scram_server_client_key(s, ck));
    assert_int_equal(
        scram_server_client_first(s, (const unsigned char *)cf, strlen(cf), user, authzid, &reply, &err), 0);
    assert_string_equal(user, "user");
    assert_string_equal(authzid, "");
    const char sf[] = "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096";
    assert_int_equal(scram_server_first_nonce(s, &k, RFC_SNONCE, out, sizeof(out)), (int)strlen(sf));
    assert_string_equal(out, sf);

    /* Our hand-written client agrees with the RFC's proof. */
    struct client c;
    client_final(&c, "n=user,r=" RFC_CNONCE, sf, "pencil", (const unsigned char *)"n,,", 3, NULL);
    const char cfinal[] = "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    assert_string_equal(c.cfinal, cfinal);
    assert_string_equal(c.expect_v, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

    size_t outlen = 0;
    assert_int_equal(scram_server_final(s, &k, (const unsigned char *)cfinal, strlen(cfinal), out,
                                        sizeof(out), &outlen, &err),
                     1);
    assert_string_equal(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert_int_equal(outlen, strlen(out));
    assert_true(scram_server_client_key(s, ck));
    assert_memory_equal(ck, c.client_key, 32);
    /* The conversation is over. */
    assert_int_equal(scram_server_final(s, &k, (const unsigned char *)cfinal, strlen(cfinal), out,
                                        sizeof(out), &outlen, &err),
                     -1);
    scram_server_free(&s);
    assert_null(s);
    scram_server_free(&s);
}

static void test_random_server_nonce(void **state)
{
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    struct client c;
    char out[SCRAM_MSG_MAX];
    assert_int_equal(
        run(s, &k, "n,,n=user,r=abc", "pencil", (const unsigned char *)"n,,", 3, NULL, out, sizeof(out), &c),
        1);
    assert_string_equal(out, c.expect_v);
    /* r=<client nonce><32 base64 characters> */
    const char *r = c.server_first + 2;
    assert_true(strncmp(r, "abc", 3) == 0);
    assert_int_equal(strchr(r, ',') - r, 3 + 32);
    scram_server_free(&s);

    /* Two conversations never share a server nonce. */
    char a[SCRAM_MSG_MAX], b[SCRAM_MSG_MAX];
    for (int i = 0; i < 2; i++) {
        char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1];
        const char *reply;
        s = scram_server_new(false, false, NULL, NULL, 0);
        assert_int_equal(
            scram_server_client_first(s, (const unsigned char *)"n,,n=u,r=x", 10, user, az, &reply, NULL), 0);
        assert_true(scram_server_first(s, &k, i == 0 ? a : b, SCRAM_MSG_MAX) > 0);
        scram_server_free(&s);
    }
    assert_string_not_equal(a, b);
}

static void test_server_first_errors(void **state)
{
    struct scram_keys k = pencil_keys();
    char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1], out[SCRAM_MSG_MAX];
    const char *reply;
    const unsigned char cf[] = "n,,n=u,r=x";
    /* Out of order. */
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    assert_int_equal(scram_server_first(s, &k, out, sizeof(out)), -1);
    scram_server_free(&s);
    /* Bad server nonce, bad iterations, too small a buffer. */
    const char *bad_nonce[] = {"", "a,b", "a b", "\x7f"};
    for (size_t i = 0; i < 4; i++) {
        s = scram_server_new(false, false, NULL, NULL, 0);
        assert_int_equal(scram_server_client_first(s, cf, 10, user, az, &reply, NULL), 0);
        assert_int_equal(scram_server_first_nonce(s, &k, bad_nonce[i], out, sizeof(out)), -1);
        scram_server_free(&s);
    }
    struct scram_keys weak = k;
    weak.iterations = 1000;
    s = scram_server_new(false, false, NULL, NULL, 0);
    assert_int_equal(scram_server_client_first(s, cf, 10, user, az, &reply, NULL), 0);
    assert_int_equal(scram_server_first(s, &weak, out, sizeof(out)), -1);
    scram_server_free(&s);
    s = scram_server_new(false, false, NULL, NULL, 0);
    assert_int_equal(scram_server_client_first(s, cf, 10, user, az, &reply, NULL), 0);
    assert_int_equal(scram_server_first(s, &k, out, 20), -1);
    scram_server_free(&s);
}

static void test_new_arguments(void **state)
{
    unsigned char big[SCRAM_CB_DATA_MAX + 1] = {0};
    struct scram_server *s;
    assert_null(scram_server_new(true, true, "tls-exporter", big, sizeof(big)));
    assert_null(scram_server_new(true, true, "tls-exporter", NULL, 0));
    assert_null(scram_server_new(true, true, NULL, exporter, 32));
    assert_null(scram_server_new(true, true, "tls-exporter-but-a-much-longer-name!", exporter, 32));
    assert_non_null(s = scram_server_new(true, true, "tls-exporter", big, SCRAM_CB_DATA_MAX));
    scram_server_free(&s);
}

static void test_keys_format_parse(void **state)
{
    struct scram_keys k = pencil_keys(), p;
    struct error err = {{0}};
    char buf[512];
    assert_int_equal(scram_keys_format(&k, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"
                             "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
                             "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
    assert_int_equal(scram_keys_parse(buf, &p, &err), 0);
    assert_memory_equal(&k, &p, sizeof(k));
    assert_int_equal(scram_keys_parse(buf + 15, &p, &err), 0); /* without the prefix */
    assert_memory_equal(&k, &p, sizeof(k));
    assert_int_equal(scram_keys_format(&k, buf, 100), -1);
    assert_string_equal(buf, "");

    /* Fresh random salt by default. */
    struct scram_keys a, b;
    assert_int_equal(scram_keys_derive("pencil", 6, NULL, 0, 4096, &a, &err), 0);
    assert_int_equal(scram_keys_derive("pencil", 6, NULL, 0, 4096, &b, &err), 0);
    assert_int_equal(a.salt_len, SCRAM_SALT_LEN);
    assert_memory_not_equal(a.salt, b.salt, SCRAM_SALT_LEN);
    assert_int_equal(scram_keys_check_password(&a, "pencil", 6, &err), 1);
    assert_int_equal(scram_keys_derive("pencil", 6, NULL, 0, 4095, &a, &err), -1);
    assert_int_equal(scram_keys_derive("pencil", 6, NULL, 0, 10000001, &a, &err), -1);
    unsigned char salt[SCRAM_SALT_MAX + 1] = {0};
    assert_int_equal(scram_keys_derive("pencil", 6, salt, 0, 4096, &a, &err), -1);
    assert_int_equal(scram_keys_derive("pencil", 6, salt, sizeof(salt), 4096, &a, &err), -1);
    assert_int_equal(scram_keys_derive("pencil", 6, salt, SCRAM_SALT_MAX, 4096, &a, &err), 0);
    assert_int_equal(scram_keys_format(&a, buf, sizeof(buf)), 0);
    assert_int_equal(scram_keys_parse(buf, &b, &err), 0);
    assert_memory_equal(&a, &b, sizeof(a));

    static const char *const bad[] = {
        "",
        "{SCRAM-SHA-256}",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=,",
        "4095,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "10000001,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "04096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "+4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "4096,,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ=,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n",
        "4096, W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&p, 0xa5, sizeof(p));
        assert_int_equal(scram_keys_parse(bad[i], &p, &err), -1);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(p.iterations, 0); /* nothing half-parsed left behind */
    }
    assert_int_equal(scram_keys_parse(NULL, &p, &err), -1);
    /* The prefix is case-insensitive, like every {SCHEME}. */
    assert_int_equal(scram_keys_parse("{scram-sha-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"
                                      "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
                                      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
                                      &p, &err),
                     0);
    assert_int_equal(scram_keys_parse("10000000,W22ZaJ0SNY7soEsUEjb6gQ==,"
                                      "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
                                      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
                                      &p, &err),
                     0);
    assert_int_equal(p.iterations, 10000000);
}

static void test_dovecot_keys(void **state)
{
    struct scram_keys k;
    struct error err = {{0}};
    assert_int_equal(scram_keys_parse(dovecot_pencil, &k, &err), 0);
    assert_int_equal(k.iterations, 4096);
    assert_int_equal(k.salt_len, 16);
    assert_int_equal(scram_keys_check_password(&k, "pencil", 6, &err), 1);
    assert_int_equal(scram_keys_check_password(&k, "pencil ", 7, &err), 0);
    assert_int_equal(scram_keys_check_password(&k, "Pencil", 6, &err), 0);
    assert_int_equal(scram_keys_check_password(&k, "", 0, &err), 0);
    assert_int_equal(scram_keys_check_password(&k, "pen\0cil", 7, &err), 0);
    assert_int_equal(scram_keys_parse(dovecot_horse, &k, &err), 0);
    assert_int_equal(scram_keys_check_password(&k, "correct horse", 13, &err), 1);
    assert_int_equal(scram_keys_check_password(&k, "correct horsf", 13, &err), 0);

    /* A whole SCRAM login against Dovecot's keys. */
    assert_int_equal(scram_keys_parse(dovecot_pencil, &k, &err), 0);
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    struct client c;
    char out[SCRAM_MSG_MAX];
    assert_int_equal(
        run(s, &k, "n,,n=user,r=xyz", "pencil", (const unsigned char *)"n,,", 3, NULL, out, sizeof(out), &c),
        1);
    assert_string_equal(out, c.expect_v);
    scram_server_free(&s);

    /* Keys of ours with 10000 iterations, which doveadm verified. */
    struct scram_keys o;
    char buf[512];
    assert_int_equal(scram_keys_derive("correct horse", 13, (const unsigned char *)"saltsaltsaltsalt", 16,
                                       10000, &o, &err),
                     0);
    assert_int_equal(scram_keys_format(&o, buf, sizeof(buf)), 0);
    assert_string_equal(buf, ours_10000);
    assert_int_equal(pwscheme_verify(ours_10000, "correct horse", 13, false, &err), 1);
}

static void test_saslprep(void **state)
{
    struct scram_keys plain, k;
    struct error err = {{0}};
    const unsigned char salt[16] = "0123456789abcdef";
    assert_int_equal(scram_keys_derive("pencil", 6, salt, 16, 4096, &plain, &err), 0);
    /* U+00AD SOFT HYPHEN maps to nothing. */
    assert_int_equal(scram_keys_derive("pen\xC2\xAD"
                                       "cil",
                                       8, salt, 16, 4096, &k, &err),
                     0);
    assert_memory_equal(&plain, &k, sizeof(k));
    assert_int_equal(scram_keys_check_password(&plain,
                                               "pen\xC2\xAD"
                                               "cil",
                                               8, &err),
                     1);
    /* U+00A0 NO-BREAK SPACE maps to a space; U+2168 ROMAN NUMERAL NINE to "IX" (RFC 4013 section 3). */
    struct scram_keys sp;
    assert_int_equal(scram_keys_derive("a b", 3, salt, 16, 4096, &sp, &err), 0);
    assert_int_equal(scram_keys_check_password(&sp,
                                               "a\xC2\xA0"
                                               "b",
                                               4, &err),
                     1);
    assert_int_equal(scram_keys_derive("IX", 2, salt, 16, 4096, &sp, &err), 0);
    assert_int_equal(scram_keys_check_password(&sp, "\xE2\x85\xA8", 3, &err), 1);
    /* Non-ASCII that SASLprep leaves alone still hashes as its UTF-8 bytes. */
    assert_int_equal(scram_keys_derive("j\xC3\xBCrgen", 7, salt, 16, 4096, &sp, &err), 0);
    assert_int_equal(scram_keys_check_password(&sp, "j\xC3\xBCrgen", 7, &err), 1);
    assert_int_equal(scram_keys_check_password(&sp, "jurgen", 6, &err), 0);
    /* Prohibited: ASCII control, NUL, a non-character, bad UTF-8, an unassigned code point. */
    static const char *const refused[] = {"a\x07"
                                          "b",
                                          "a\tb",
                                          "\xEF\xBF\xBF",
                                          "\xff",
                                          "\xC3",
                                          "\xC0\xAF",
                                          "\xED\xA0\x80",
                                          "\xF0\xB0\x80\x80"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err.msg[0] = '\0';
        assert_int_equal(scram_keys_derive(refused[i], strlen(refused[i]), salt, 16, 4096, &k, &err), -1);
        assert_true(err.msg[0] != '\0');
        /* Checking against such a password is a plain mismatch. */
        assert_int_equal(scram_keys_check_password(&plain, refused[i], strlen(refused[i]), &err), 0);
    }
    assert_int_equal(scram_keys_derive("a\0b", 3, salt, 16, 4096, &k, &err), -1);
    /* Printable ASCII is unchanged, whatever SASLprep might be expected to fold. */
    struct scram_keys x, y;
    assert_int_equal(scram_keys_derive("  ~!A a=,", 9, salt, 16, 4096, &x, &err), 0);
    assert_int_equal(scram_keys_derive("  ~!a a=,", 9, salt, 16, 4096, &y, &err), 0);
    assert_memory_not_equal(x.stored_key, y.stored_key, 32);
}

static void test_fake_keys(void **state)
{
    const unsigned char secret[32] = "an installation secret 32 bytes";
    struct scram_keys a, b, c;
    scram_keys_fake(secret, "ghost", 10000, &a);
    scram_keys_fake(secret, "ghost", 10000, &b);
    scram_keys_fake(secret, "phantom", 10000, &c);
    assert_int_equal(a.iterations, 10000);
    assert_int_equal(a.salt_len, SCRAM_SALT_LEN);
    assert_memory_equal(a.salt, b.salt, SCRAM_SALT_LEN);
    assert_memory_not_equal(a.salt, c.salt, SCRAM_SALT_LEN);
    assert_memory_not_equal(a.stored_key, b.stored_key, 32);
    /* salt = HMAC-SHA256(secret, user)[0..16) */
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)"ghost", 5, mac, &n);
    assert_memory_equal(a.salt, mac, 16);

    /* The exchange runs to the proof, then fails like a wrong password. */
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    struct client cl;
    char out[SCRAM_MSG_MAX];
    assert_int_equal(run(s, &a, "n,,n=ghost,r=nonce", "guess", (const unsigned char *)"n,,", 3, NULL, out,
                         sizeof(out), &cl),
                     0);
    assert_string_equal(out, "e=invalid-proof");
    scram_server_free(&s);
}

static void test_wrong_proof(void **state)
{
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    struct client c;
    char out[SCRAM_MSG_MAX];
    assert_int_equal(run(s, &k, "n,,n=user,r=abcdef", "pencil2", (const unsigned char *)"n,,", 3, NULL, out,
                         sizeof(out), &c),
                     0);
    assert_string_equal(out, "e=invalid-proof");
    /* A ClientKey is recovered, but not the wrong password's: the proof was
     * made with the client's own StoredKey, the server unmasks with the real one. */
    unsigned char ck[32];
    assert_true(scram_server_client_key(s, ck));
    assert_memory_not_equal(ck, c.client_key, 32);
    scram_server_free(&s);

    /* One flipped bit in a correct proof. */
    s = scram_server_new(false, false, NULL, NULL, 0);
    char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1];
    const char *reply;
    const char cf[] = "n,,n=user,r=" RFC_CNONCE;
    assert_int_equal(
        scram_server_client_first(s, (const unsigned char *)cf, strlen(cf), user, az, &reply, NULL), 0);
    assert_true(scram_server_first_nonce(s, &k, RFC_SNONCE, out, sizeof(out)) > 0);
    const char cfinal[] = "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVM=";
    size_t outlen = 0;
    assert_int_equal(scram_server_final(s, &k, (const unsigned char *)cfinal, strlen(cfinal), out,
                                        sizeof(out), &outlen, NULL),
                     0);
    assert_string_equal(out, "e=invalid-proof");
    assert_int_equal(outlen, 15);
    scram_server_free(&s);
}

/* The client-final for the RFC exchange with the given r= and p=. */
static int rfc_final(const char *cfinal, char *out, size_t outsz, struct error *err)
{
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1], sf[SCRAM_MSG_MAX];
    const char *reply;
    const char cf[] = "n,,n=user,r=" RFC_CNONCE;
    assert_int_equal(
        scram_server_client_first(s, (const unsigned char *)cf, strlen(cf), user, az, &reply, NULL), 0);
    assert_true(scram_server_first_nonce(s, &k, RFC_SNONCE, sf, sizeof(sf)) > 0);
    size_t outlen = 0;
    err->msg[0] = '\0';
    int r =
        scram_server_final(s, &k, (const unsigned char *)cfinal, strlen(cfinal), out, outsz, &outlen, err);
    scram_server_free(&s);
    return r;
}

#define PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static void test_wrong_nonce(void **state)
{
    char out[SCRAM_MSG_MAX];
    struct error err;
    static const char *const finals[] = {
        "c=biws,r=" RFC_CNONCE PROOF,                /* client part only */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE "x" PROOF, /* longer */
        "c=biws,r=" RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1" PROOF,
        "c=biws,r=x" RFC_CNONCE RFC_SNONCE PROOF,
        "c=biws,r=" RFC_SNONCE RFC_CNONCE PROOF,
    };
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
        assert_int_equal(rfc_final(finals[i], out, sizeof(out), &err), -1);
        assert_non_null(strstr(err.msg, "nonce"));
    }
    /* The right one, to show the harness is sound. */
    assert_int_equal(rfc_final("c=biws,r=" RFC_CNONCE RFC_SNONCE PROOF, out, sizeof(out), &err), 1);
}

static void test_malformed_final(void **state)
{
    char out[SCRAM_MSG_MAX];
    struct error err;
    static const char *const finals[] = {
        "",
        "r=" RFC_CNONCE RFC_SNONCE PROOF,               /* no c= */
        "c=,r=" RFC_CNONCE RFC_SNONCE PROOF,            /* empty c= */
        "c=biw,r=" RFC_CNONCE RFC_SNONCE PROOF,         /* bad base64 */
        "c=biws=,r=" RFC_CNONCE RFC_SNONCE PROOF,       /* bad base64 */
        "c=bh==,r=" RFC_CNONCE RFC_SNONCE PROOF,        /* non-canonical padding bits */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE,              /* no proof */
        "c=biws" PROOF,                                 /* no r= */
        "c=biws,r=" PROOF,                              /* empty r= */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE PROOF ",x=y", /* p= not last */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE PROOF ",",    /* trailing comma */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=",        /* empty proof */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV=",  /* bad */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And",    /* 31 bytes */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQA", /* 33 */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=" PROOF,
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",x" PROOF,   /* bad extension */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",x=" PROOF,  /* empty extension value */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",1=a" PROOF, /* attribute not ALPHA */
        "c=biws,r=" RFC_CNONCE RFC_SNONCE ",,p=a" PROOF,
        "C=biws,r=" RFC_CNONCE RFC_SNONCE PROOF,
        " c=biws,r=" RFC_CNONCE RFC_SNONCE PROOF,
    };
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
        if (rfc_final(finals[i], out, sizeof(out), &err) != -1)
            fail_msg("accepted: %s", finals[i]);
        assert_true(err.msg[0] != '\0');
    }
    /* Well-formed c= that is not "n,,": a binding mismatch, not a parse error. */
    assert_int_equal(rfc_final("c=bixs,r=" RFC_CNONCE RFC_SNONCE PROOF, out, sizeof(out), &err), 0);
    assert_string_equal(out, "e=channel-bindings-dont-match");
    /* NUL inside, and an output buffer too small for "v=...". */
    const char nul[] = "c=biws,r=" RFC_CNONCE RFC_SNONCE PROOF;
    char with_nul[sizeof(nul) + 1];
    memcpy(with_nul, nul, sizeof(nul));
    with_nul[5] = '\0';
    assert_int_equal(rfc_final(with_nul, out, sizeof(out), &err), -1);
    assert_int_equal(rfc_final(nul, out, 40, &err), -1);
    /* Before server-first. */
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    size_t outlen = 5;
    assert_int_equal(
        scram_server_final(s, &k, (const unsigned char *)nul, strlen(nul), out, sizeof(out), &outlen, &err),
        -1);
    assert_int_equal(outlen, 0);
    scram_server_free(&s);
}

static void test_final_extension(void **state)
{
    /* A well-formed extension before p= is covered by the proof and ignored. */
    struct scram_keys k = pencil_keys();
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    struct client c;
    char out[SCRAM_MSG_MAX];
    assert_int_equal(run(s, &k, "n,,n=user,r=abc,x=client-first-ext", "pencil", (const unsigned char *)"n,,",
                         3, ",x=f\xC3\xBC=r", out, sizeof(out), &c),
                     1);
    assert_string_equal(out, c.expect_v);
    scram_server_free(&s);
}

/* client-first expecting failure with the given reply. */
static void first_fails(bool plus_mech, bool plus_offered, const char *cb_type, const unsigned char *cb,
                        size_t cblen, const char *msg, size_t len, const char *want_reply)
{
    struct scram_server *s = scram_server_new(plus_mech, plus_offered, cb_type, cb, cblen);
    assert_non_null(s);
    char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1];
    const char *reply = NULL;
    struct error err = {{0}};
    memset(user, 'x', sizeof(user));
    if (scram_server_client_first(s, (const unsigned char *)msg, len, user, az, &reply, &err) != -1)
        fail_msg("accepted: %s", msg);
    assert_non_null(reply);
    if (strcmp(reply, want_reply) != 0)
        fail_msg("%s: reply \"%s\", wanted \"%s\"", msg, reply, want_reply);
    assert_true(err.msg[0] != '\0');
    assert_string_equal(user, "");
    assert_string_equal(az, "");
    /* A failed conversation stays failed. */
    assert_int_equal(
        scram_server_client_first(s, (const unsigned char *)"n,,n=u,r=a", 10, user, az, &reply, &err), -1);
    scram_server_free(&s);
}

#define FAILS(msg, reply) first_fails(false, false, NULL, NULL, 0, msg, strlen(msg), reply)

static void test_channel_binding_rules(void **state)
{
    /* 'y' while we offered -PLUS: a downgrade. */
    first_fails(false, true, "tls-exporter", exporter, 32, "y,,n=user,r=abc", 15,
                "e=server-does-support-channel-binding");
    /* 'p' on plain SCRAM-SHA-256. */
    first_fails(false, true, "tls-exporter", exporter, 32, "p=tls-exporter,,n=user,r=abc", 28,
                "e=other-error");
    /* 'n' or 'y' on -PLUS. */
    first_fails(true, true, "tls-exporter", exporter, 32, "n,,n=user,r=abc", 15, "e=other-error");
    first_fails(true, true, "tls-exporter", exporter, 32, "y,,n=user,r=abc", 15, "e=other-error");
    /* Binding types this connection does not have. */
    first_fails(true, true, "tls-exporter", exporter, 32, "p=tls-unique,,n=user,r=abc", 26,
                "e=unsupported-channel-binding-type");
    first_fails(true, true, "tls-unique", unique, 12, "p=tls-exporter,,n=user,r=abc", 28,
                "e=unsupported-channel-binding-type");
    first_fails(true, true, "tls-exporter", exporter, 32, "p=TLS-EXPORTER,,n=user,r=abc", 28,
                "e=unsupported-channel-binding-type");
    first_fails(true, true, "tls-exporter", exporter, 32, "p=tls-server-end-point,,n=user,r=abc", 36,
                "e=unsupported-channel-binding-type");
    first_fails(true, false, NULL, NULL, 0, "p=tls-exporter,,n=user,r=abc", 28,
                "e=channel-binding-not-supported");

    struct scram_keys k = pencil_keys();
    struct client c;
    char out[SCRAM_MSG_MAX];
    unsigned char cb[128];
    size_t n;
    /* 'y' when -PLUS was not offered is fine; c= echoes "y,,". */
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    assert_int_equal(
        run(s, &k, "y,,n=user,r=abc", "pencil", (const unsigned char *)"y,,", 3, NULL, out, sizeof(out), &c),
        1);
    scram_server_free(&s);
    /* 'n' on plain SCRAM while -PLUS is offered is fine too (the client chose not to bind). */
    s = scram_server_new(false, true, "tls-exporter", exporter, 32);
    assert_int_equal(
        run(s, &k, "n,,n=user,r=abc", "pencil", (const unsigned char *)"n,,", 3, NULL, out, sizeof(out), &c),
        1);
    scram_server_free(&s);

    /* A correct -PLUS exchange over tls-exporter, with an authzid. */
    s = scram_server_new(true, true, "tls-exporter", exporter, 32);
    n = gs2_cbind("p=tls-exporter,a=admin,", exporter, 32, cb);
    assert_int_equal(
        run(s, &k, "p=tls-exporter,a=admin,n=user,r=abc", "pencil", cb, n, NULL, out, sizeof(out), &c), 1);
    assert_string_equal(out, c.expect_v);
    scram_server_free(&s);
    /* And over tls-unique (TLS 1.2). */
    s = scram_server_new(true, true, "tls-unique", unique, 12);
    n = gs2_cbind("p=tls-unique,,", unique, 12, cb);
    assert_int_equal(run(s, &k, "p=tls-unique,,n=user,r=abc", "pencil", cb, n, NULL, out, sizeof(out), &c),
                     1);
    assert_string_equal(out, c.expect_v);
    scram_server_free(&s);

    /* Binding data from another connection (a MITM's): right password, still refused. */
    unsigned char other[32];
    memcpy(other, exporter, 32);
    other[31] ^= 1;
    s = scram_server_new(true, true, "tls-exporter", exporter, 32);
    n = gs2_cbind("p=tls-exporter,,", other, 32, cb);
    assert_int_equal(run(s, &k, "p=tls-exporter,,n=user,r=abc", "pencil", cb, n, NULL, out, sizeof(out), &c),
                     0);
    assert_string_equal(out, "e=channel-bindings-dont-match");
    scram_server_free(&s);
    /* No data at all, truncated data, extra data. */
    const size_t lens[] = {0, 31, 33};
    unsigned char longer[33];
    memcpy(longer, exporter, 32);
    longer[32] = 'x';
    for (size_t i = 0; i < 3; i++) {
        s = scram_server_new(true, true, "tls-exporter", exporter, 32);
        n = gs2_cbind("p=tls-exporter,,", longer, lens[i], cb);
        assert_int_equal(
            run(s, &k, "p=tls-exporter,,n=user,r=abc", "pencil", cb, n, NULL, out, sizeof(out), &c), 0);
        assert_string_equal(out, "e=channel-bindings-dont-match");
        scram_server_free(&s);
    }
    /* The echoed gs2 header differs from the one sent. */
    static const char *const echo[] = {"y,,", "n,a=user,", "n,", "n,,x", "p=tls-exporter,,"};
    for (size_t i = 0; i < sizeof(echo) / sizeof(echo[0]); i++) {
        s = scram_server_new(false, false, NULL, NULL, 0);
        assert_int_equal(run(s, &k, "n,,n=user,r=abc", "pencil", (const unsigned char *)echo[i],
                             strlen(echo[i]), NULL, out, sizeof(out), &c),
                         0);
        assert_string_equal(out, "e=channel-bindings-dont-match");
        scram_server_free(&s);
    }
    s = scram_server_new(true, true, "tls-exporter", exporter, 32);
    n = gs2_cbind("p=tls-exporter,a=admin,", exporter, 32, cb);
    assert_int_equal(run(s, &k, "p=tls-exporter,,n=user,r=abc", "pencil", cb, n, NULL, out, sizeof(out), &c),
                     0);
    assert_string_equal(out, "e=channel-bindings-dont-match");
    scram_server_free(&s);
    /* Binding mismatch and a wrong password: the binding is reported. */
    s = scram_server_new(true, true, "tls-exporter", exporter, 32);
    n = gs2_cbind("p=tls-exporter,,", other, 32, cb);
    assert_int_equal(run(s, &k, "p=tls-exporter,,n=user,r=abc", "wrong", cb, n, NULL, out, sizeof(out), &c),
                     0);
    assert_string_equal(out, "e=channel-bindings-dont-match");
    scram_server_free(&s);
}

/* client-first expecting success with these names. */
static void first_ok(const char *msg, const char *want_user, const char *want_authzid)
{
    struct scram_server *s = scram_server_new(false, false, NULL, NULL, 0);
    char user[SCRAM_NAME_MAX + 1], az[SCRAM_NAME_MAX + 1];
    const char *reply = NULL;
    struct error err = {{0}};
    if (scram_server_client_first(s, (const unsigned char *)msg, strlen(msg), user, az, &reply, &err) != 0)
        fail_msg("refused: %s (%s)", msg, err.msg);
    assert_string_equal(user, want_user);
    assert_string_equal(az, want_authzid);
    assert_string_equal(reply, "");
    scram_server_free(&s);
}

static void test_client_first_names(void **state)
{
    first_ok("n,,n=user,r=abc", "user", "");
    first_ok("n,a=boss,n=user,r=abc", "user", "boss");
    first_ok("n,,n=us=2Cer,r=abc", "us,er", "");
    first_ok("n,,n=us=3Der,r=abc", "us=er", "");
    first_ok("n,,n==3D=2C,r=abc", "=,", "");
    first_ok("n,a=a=2Cb=3Dc,n=user,r=abc", "user", "a,b=c");
    first_ok("n,,n=j\xC3\xBCrgen@example.org,r=abc", "j\xC3\xBCrgen@example.org", "");
    first_ok("n,,n=user,r=!\"#$%&'()*+-./09:;<=>?@AZ[\\]^_`az{|}~", "user", "");
    first_ok("n,,n=user,r=abc,x=ext,y=a=b", "user", "");
    char name[SCRAM_NAME_MAX + 1], msg[SCRAM_NAME_MAX * 6 + 32];
    memset(name, 'a', SCRAM_NAME_MAX);
    name[SCRAM_NAME_MAX] = '\0';
    snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
    first_ok(msg, name, "");
    /* 255 escaped commas: three times the bytes, still 255 characters. */
    char esc[SCRAM_NAME_MAX * 3 + 1];
    for (int i = 0; i < SCRAM_NAME_MAX; i++)
        memcpy(esc + 3 * i, "=2C", 3);
    esc[3 * SCRAM_NAME_MAX] = '\0';
    memset(name, ',', SCRAM_NAME_MAX);
    snprintf(msg, sizeof(msg), "n,a=%s,n=%s,r=abc", esc, esc);
    first_ok(msg, name, name);
}

static void test_client_first_malformed(void **state)
{
    FAILS("n,,m=ext,n=user,r=abc", "e=extensions-not-supported");
    FAILS("n,,n=us=2cer,r=abc", "e=invalid-username-encoding"); /* escapes are upper case */
    FAILS("n,,n=us=41er,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=user=,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=user=2,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=us=er,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=\xff,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=\xC0\xAF,r=abc", "e=invalid-username-encoding");     /* overlong '/' */
    FAILS("n,,n=\xED\xA0\x80,r=abc", "e=invalid-username-encoding"); /* surrogate */
    FAILS("n,,n=\xF4\x90\x80\x80,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=a\tb,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=a\x7f,r=abc", "e=invalid-username-encoding");
    FAILS("n,a=x=2,n=user,r=abc", "e=invalid-username-encoding");
    FAILS("n,a=,n=user,r=abc", "e=invalid-username-encoding");
    FAILS("n,,n=user;r=abc", "e=invalid-username-encoding"); /* '=' not an escape */
    static const char *const syntax[] = {
        "",
        "n",
        "n,",
        "n,,",
        "n,,n=user",
        "n,,r=abc",
        "n,,r=abc,n=user",
        "n,,n=,r=abc",
        "n,,n=user,r=",
        "n,,n=user,r=a b",
        "n,,n=user,r=abc,",
        "n,,n=user,r=abc,x",
        "n,,n=user,r=abc,x=",
        "n,,n=user,r=abc,1=x",
        "n,,n=user,r=abc,x=\xff",
        "n,,n=user,,r=abc",
        "x,,n=user,r=abc",
        "N,,n=user,r=abc",
        "n,n=user,r=abc",
        "n,x=y,n=user,r=abc",
        "n,a=b,c,n=user,r=abc",
        "p,,n=user,r=abc",
        "p=,,n=user,r=abc",
        "p=tls_unique,,n=user,r=abc",
        "p=tls-unique-and-a-name-longer-than-32,,n=user,r=abc",
        "y,,m=ext",
        " n,,n=user,r=abc",
        "n,, n=user,r=abc",
    };
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
        const char *want = "";
        if (strncmp(syntax[i], "y,,m=", 5) == 0)
            want = "e=extensions-not-supported";
        FAILS(syntax[i], want);
    }
    /* NUL anywhere. */
    first_fails(false, false, NULL, NULL, 0, "n,,n=us\0er,r=abc", 16, "");
    first_fails(false, false, NULL, NULL, 0, "n,,n=user,r=abc\0", 16, "");
    /* Over-long names, nonces and messages. */
    char msg[5000];
    char name[SCRAM_NAME_MAX + 2];
    memset(name, 'a', SCRAM_NAME_MAX + 1);
    name[SCRAM_NAME_MAX + 1] = '\0';
    snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
    FAILS(msg, "e=invalid-username-encoding");
    snprintf(msg, sizeof(msg), "n,a=%s,n=user,r=abc", name);
    FAILS(msg, "e=invalid-username-encoding");
    char nonce[258];
    memset(nonce, 'n', 257);
    nonce[257] = '\0';
    snprintf(msg, sizeof(msg), "n,,n=user,r=%s", nonce);
    FAILS(msg, "");
    nonce[256] = '\0';
    snprintf(msg, sizeof(msg), "n,,n=user,r=%s", nonce);
    first_ok(msg, "user", "");
    memset(msg, 'x', sizeof(msg));
    memcpy(msg, "n,,n=user,r=abc,x=", 18);
    msg[4097] = '\0';
    FAILS(msg, "");
}

/* ---- the {SCRAM-SHA-256} password scheme ---- */

static void test_pwscheme(void **state)
{
    struct error err = {{0}};
    assert_int_equal(pwscheme_verify(dovecot_pencil, "pencil", 6, false, &err), 1);
    assert_int_equal(pwscheme_verify(dovecot_pencil, "pencil2", 7, false, &err), 0);
    assert_int_equal(pwscheme_verify(dovecot_pencil, "", 0, false, &err), 0);
    assert_int_equal(pwscheme_verify(dovecot_horse, "correct horse", 13, false, &err), 1);
    assert_int_equal(pwscheme_verify(dovecot_horse, "correct horse", 12, false, &err), 0);
    char lower[sizeof(dovecot_pencil)];
    memcpy(lower, dovecot_pencil, sizeof(lower));
    memcpy(lower + 1, "scram-sha-256", 13);
    assert_int_equal(pwscheme_verify(lower, "pencil", 6, false, &err), 1);
    /* Malformed keys are errors, not mismatches. */
    assert_int_equal(pwscheme_verify("{SCRAM-SHA-256}garbage", "pencil", 6, false, &err), -1);
    assert_int_equal(pwscheme_verify("{SCRAM-SHA-256}", "pencil", 6, false, &err), -1);
    assert_int_equal(pwscheme_verify("{SCRAM-SHA-256}{SCRAM-SHA-256}4096,3qSh2hLJijImBqpUUg3eJw==,"
                                     "adJ/RnpW0hhusOSF6yvR/vCbxg2gdpOx4Krfo7Lvljc=,"
                                     "axKJpDABUUwMsD+AIKv1pC9BEeYZITZphQZPuO3XcZQ=",
                                     "pencil", 6, false, &err),
                     -1);
    assert_int_equal(pwscheme_verify("{SCRAM-SHA-256}100,3qSh2hLJijImBqpUUg3eJw==,"
                                     "adJ/RnpW0hhusOSF6yvR/vCbxg2gdpOx4Krfo7Lvljc=,"
                                     "axKJpDABUUwMsD+AIKv1pC9BEeYZITZphQZPuO3XcZQ=",
                                     "pencil", 6, false, &err),
                     -1);
    /* PBKDF2 is weaker than Argon2id: rehash on the next login. */
    assert_true(pwscheme_needs_upgrade(dovecot_pencil));

    /* A dummy like a SCRAM sample: same iterations, fresh salt, never matches. */
    char d1[PWSCHEME_HASH_MAX], d2[PWSCHEME_HASH_MAX];
    assert_int_equal(pwscheme_dummy_like(dovecot_pencil, d1, sizeof(d1)), 0);
    assert_int_equal(pwscheme_dummy_like(dovecot_pencil, d2, sizeof(d2)), 0);
    assert_true(strncmp(d1, "{SCRAM-SHA-256}4096,", 20) == 0);
    assert_string_not_equal(d1, d2);
    assert_int_equal(pwscheme_verify(d1, "pencil", 6, false, &err), 0);
    struct scram_keys k;
    assert_int_equal(scram_keys_parse(d1, &k, &err), 0);
    assert_int_equal(k.iterations, 4096);
    struct scram_keys o;
    char ours[512];
    assert_int_equal(scram_keys_derive("pw", 2, NULL, 0, 20000, &o, &err), 0);
    assert_int_equal(scram_keys_format(&o, ours, sizeof(ours)), 0);
    assert_int_equal(pwscheme_dummy_like(ours, d1, sizeof(d1)), 0);
    assert_true(strncmp(d1, "{SCRAM-SHA-256}20000,", 21) == 0);
    assert_int_equal(pwscheme_dummy_like("{SCRAM-SHA-256}nonsense", d1, sizeof(d1)), -1);
    assert_int_equal(pwscheme_dummy_like(dovecot_pencil, d1, 50), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_random_server_nonce),
        cmocka_unit_test(test_server_first_errors),
        cmocka_unit_test(test_new_arguments),
        cmocka_unit_test(test_keys_format_parse),
        cmocka_unit_test(test_dovecot_keys),
        cmocka_unit_test(test_saslprep),
        cmocka_unit_test(test_fake_keys),
        cmocka_unit_test(test_wrong_proof),
        cmocka_unit_test(test_wrong_nonce),
        cmocka_unit_test(test_malformed_final),
        cmocka_unit_test(test_final_extension),
        cmocka_unit_test(test_channel_binding_rules),
        cmocka_unit_test(test_client_first_names),
        cmocka_unit_test(test_client_first_malformed),
        cmocka_unit_test(test_pwscheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
