/* SASL PLAIN (RFC 4616): the parser on good and hostile messages, and the
 * mechanism table as the session uses it. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "sasl/sasl.h"

static int plain(const char *msg, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0x5a, sizeof(*c)); /* the parser must clear what it does not fill */
    err->msg[0] = '\0';
    return sasl_plain_parse((const unsigned char *)msg, len, c, err);
}

static void test_plain_good(void **state)
{
    struct sasl_creds c;
    struct error err;
    assert_int_equal(plain("\0bob\0s3cret", 11, &c, &err), 0);
    assert_string_equal(c.authzid, "");
    assert_string_equal(c.authcid, "bob");
    assert_string_equal(c.secret, "s3cret");
    assert_int_equal(c.secret_len, 6);
    /* authzid present */
    assert_int_equal(plain("admin\0bob@example.org\0pw", 24, &c, &err), 0);
    assert_string_equal(c.authzid, "admin");
    assert_string_equal(c.authcid, "bob@example.org");
    assert_string_equal(c.secret, "pw");
    assert_int_equal(c.secret_len, 2);
    /* spaces and 8-bit bytes are fine in names and passwords; so are control
     * characters in the password (only NUL is not) */
    static const char odd[] = "\0J\xc3\xb6rg Smith\0 p\x01w\tx ";
    assert_int_equal(plain(odd, sizeof(odd) - 1, &c, &err), 0);
    assert_string_equal(c.authcid, "J\xc3\xb6rg Smith");
    assert_int_equal(c.secret_len, 7);
    assert_memory_equal(c.secret, " p\x01w\tx ", 7);
    assert_int_equal(c.secret[7], '\0');
    /* the limits themselves */
    char *m = malloc(2 + 2 * SASL_NAME_MAX + SASL_SECRET_MAX);
    assert_non_null(m);
    memset(m, 'z', SASL_NAME_MAX);
    m[SASL_NAME_MAX] = '\0';
    memset(m + SASL_NAME_MAX + 1, 'c', SASL_NAME_MAX);
    m[2 * SASL_NAME_MAX + 1] = '\0';
    memset(m + 2 * SASL_NAME_MAX + 2, 'p', SASL_SECRET_MAX);
    assert_int_equal(plain(m, 2 + 2 * SASL_NAME_MAX + SASL_SECRET_MAX, &c, &err), 0);
    assert_int_equal(strlen(c.authzid), SASL_NAME_MAX);
    assert_int_equal(strlen(c.authcid), SASL_NAME_MAX);
    assert_int_equal(c.secret_len, SASL_SECRET_MAX);
    assert_int_equal(strlen(c.secret), SASL_SECRET_MAX);
    free(m);
    sasl_creds_wipe(&c);
    for (size_t i = 0; i < sizeof(c.secret); i++)
        assert_int_equal(c.secret[i], 0);
    assert_int_equal(c.secret_len, 0);
}

static void expect_bad(const char *msg, size_t len, const char *why)
{
    struct sasl_creds c;
    struct error err;
    if (plain(msg, len, &c, &err) != -1)
        fail_msg("accepted a bad PLAIN message of %zu bytes", len);
    assert_string_equal(err.msg, why);
    /* nothing half-parsed is left behind */
    assert_string_equal(c.authcid, "");
    assert_string_equal(c.authzid, "");
    assert_int_equal(c.secret_len, 0);
    assert_int_equal(c.secret[0], '\0');
}

#define NO_SEP "PLAIN message lacks its separators"
#define NO_SEP2 "PLAIN message lacks its second separator"
#define BAD_NAME "PLAIN names are empty, too long or contain control characters"
#define BAD_PW "PLAIN password is empty, too long or contains NUL"

static void test_plain_bad(void **state)
{
    expect_bad("", 0, NO_SEP);
    expect_bad("bobpw", 5, NO_SEP);
    expect_bad("bob\0pw", 6, NO_SEP2);
    expect_bad("\0bobpw", 6, NO_SEP2);
    expect_bad("\0", 1, NO_SEP2);
    expect_bad("\0\0pw", 4, BAD_NAME);      /* empty authcid */
    expect_bad("admin\0\0pw", 9, BAD_NAME); /* empty authcid with authzid */
    expect_bad("\0bob\0", 5, BAD_PW);       /* empty password */
    expect_bad("\0bob\0p\0w", 8, BAD_PW);   /* NUL in the password */
    expect_bad("\0bob\0pw\0", 8, BAD_PW);
    expect_bad("\0\0\0", 3, BAD_NAME);
    /* control characters in names */
    expect_bad("\0b\nob\0pw", 8, BAD_NAME);
    expect_bad("\0bob\r\0pw", 8, BAD_NAME);
    expect_bad("\0\x7f\0pw", 5, BAD_NAME);
    expect_bad("ad\tmin\0bob\0pw", 13, BAD_NAME);
    expect_bad("\x1b\0bob\0pw", 8, BAD_NAME);
}

static void test_plain_too_long(void **state)
{
    size_t cap = 4 + 2 * SASL_NAME_MAX + SASL_SECRET_MAX + 8;
    char *m = malloc(cap);
    assert_non_null(m);
    /* authcid one over */
    m[0] = '\0';
    memset(m + 1, 'c', SASL_NAME_MAX + 1);
    m[SASL_NAME_MAX + 2] = '\0';
    memcpy(m + SASL_NAME_MAX + 3, "pw", 2);
    expect_bad(m, SASL_NAME_MAX + 5, BAD_NAME);
    /* authzid one over */
    memset(m, 'z', SASL_NAME_MAX + 1);
    m[SASL_NAME_MAX + 1] = '\0';
    memcpy(m + SASL_NAME_MAX + 2, "bob\0pw", 6);
    expect_bad(m, SASL_NAME_MAX + 8, BAD_NAME);
    /* password one over */
    memcpy(m, "\0bob\0", 5);
    memset(m + 5, 'p', SASL_SECRET_MAX + 1);
    expect_bad(m, 5 + SASL_SECRET_MAX + 1, BAD_PW);
    free(m);
}

static void test_mech_table(void **state)
{
    const struct sasl_mech *m = sasl_mech_find("PLAIN");
    assert_non_null(m);
    assert_ptr_equal(sasl_mech_find("plain"), m);
    assert_ptr_equal(sasl_mech_find("PlAiN"), m);
    assert_null(sasl_mech_find("PLAIN "));
    assert_null(sasl_mech_find("LOGIN"));
    assert_null(sasl_mech_find(""));
    /* advertised strongest first; PLAIN last */
    size_t n = 0;
    while (sasl_mechs[n] != NULL)
        n++;
    assert_ptr_equal(sasl_mechs[n - 1], m);
    assert_string_equal(sasl_mechs[0]->name, "SCRAM-SHA-256-PLUS");
    assert_true(sasl_mechs[0]->relay && !sasl_mechs[0]->plaintext_secret);
    assert_string_equal(m->name, "PLAIN");
    assert_true(m->plaintext_secret);

    /* one step: VERIFY with creds, or FAIL with the parser's detail */
    struct sasl_exchange *ex = m->start();
    assert_non_null(ex);
    unsigned char out[16];
    size_t outlen = 99;
    struct sasl_creds c;
    struct error err = {{0}};
    assert_int_equal(m->step(ex, (const unsigned char *)"\0u\0p", 4, out, sizeof(out), &outlen, &c, &err),
                     SASL_STEP_VERIFY);
    assert_int_equal(outlen, 0);
    assert_string_equal(c.authcid, "u");
    assert_string_equal(c.secret, "p");
    assert_int_equal(m->step(ex, (const unsigned char *)"u\0p", 3, out, sizeof(out), &outlen, &c, &err),
                     SASL_STEP_FAIL);
    assert_string_equal(err.msg, NO_SEP2);
    m->finish(&ex);
    assert_null(ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_good),
        cmocka_unit_test(test_plain_bad),
        cmocka_unit_test(test_plain_too_long),
        cmocka_unit_test(test_mech_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
