/* Password quality for admin-set passwords: the length in characters (UTF-8
 * code points), libpwquality's refusals and score, and the breached-password
 * list (a generated Have I Been Pwned style file: sorted SHA-1 lines, CRLF and
 * LF, searched by byte offset). The dictionary refusals need cracklib's
 * dictionary (Debian: cracklib-runtime) and are skipped without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/breached.h"
#include "auth/pwcheck.h"
#include "conf/conf.h"

#define USER "alice@example.com"
#define GOOD "correct horse battery"
#define N_HASHES 10000

static struct conf c;
static char dir[] = "/tmp/test_pwcheck.XXXXXX";

static int check(const char *pw, struct error *err)
{
    return pwcheck(&c, USER, pw, strlen(pw), err);
}

static void assert_refused(const char *pw, const char *why)
{
    struct error err = {{0}};
    if (check(pw, &err) != -1)
        fail_msg("'%s' was accepted", pw);
    if (strstr(err.msg, why) == NULL)
        fail_msg("'%s': \"%s\" does not say \"%s\"", pw, err.msg, why);
}

static void test_chars(void **state)
{
    assert_int_equal(pwcheck_chars("", 0), 0);
    assert_int_equal(pwcheck_chars("abc", 3), 3);
    assert_int_equal(pwcheck_chars("\xc3\xa9", 2), 1);         /* é */
    assert_int_equal(pwcheck_chars("\xe2\x82\xac", 3), 1);     /* € */
    assert_int_equal(pwcheck_chars("\xf0\x9f\x94\x91", 4), 1); /* 🔑 */
    assert_int_equal(pwcheck_chars("a\xc3\xa9z", 4), 3);
}

static void test_length(void **state)
{
    conf_defaults(&c);
    assert_refused("", "too short");
    assert_refused("short", "too short: 5 characters, at least 12");
    assert_refused("elevenchars", "too short"); /* 11 */
    /* 11 two-byte characters are 22 bytes but 11 characters: too short. */
    assert_refused("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                   "11 characters");
    /* 12 characters with multi-byte ones pass the length check (whatever quality says next). */
    struct error err = {{0}};
    const char *utf = "j\xc3\xbcrgen-m\xc3\xbcller-\xc3\x9f\xe2\x82\xac-ho";
    assert_int_equal(pwcheck_chars(utf, strlen(utf)), 19);
    if (check(utf, &err) < 0)
        assert_null(strstr(err.msg, "too short"));
    c.pw_min_length = 30;
    assert_refused(GOOD, "at least 30");
    conf_defaults(&c);
    assert_int_equal(check(GOOD, &err), 0);
    /* The length is the caller's: bytes after it are not the password. */
    assert_int_equal(pwcheck(&c, USER, "abc\0defghijklmnop", 3, &err), -1);
}

static void test_nul(void **state)
{
    conf_defaults(&c);
    struct error err = {{0}};
    char pw[] = "correct horse\0battery";
    assert_int_equal(pwcheck(&c, USER, pw, sizeof(pw) - 1, &err), -1);
    assert_non_null(strstr(err.msg, "NUL"));
}

static void test_quality(void **state)
{
    conf_defaults(&c);
    struct error err = {{0}};
    assert_int_equal(check(GOOD, &err), 0);
    assert_int_equal(check("with some spaces in it", &err), 0);
    assert_int_equal(check("dragonfly-meadow-42", &err), 0);
    /* The user name, whole or its local part, in any case. */
    assert_refused("alice@example.com-xyz-42", "user name");
    assert_refused("my name is Alice and I like long walks", "user name");
    assert_refused("ecila-reversed-still-counts", "user name");
    assert_refused("abcdefgggfedcba", "palindrome");
    assert_refused("123456789012", "too weak");
    /* Below the configured score. */
    c.pw_min_quality = 100;
    assert_refused("dragonfly-meadow-42", "quality score");
    c.pw_min_quality = 0;
    assert_int_equal(check("kslfjwoeiru2", &err), 0);
}

static void test_dictionary(void **state)
{
    if (!pwcheck_have_dictionary())
        skip();
    conf_defaults(&c);
    assert_refused("password123456", "dictionary");
    assert_refused("Password12345678", "dictionary");
}

/* ---- breached list ---- */

static void sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL), 1);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", md[i]);
}

struct entry {
    char hash[41];
    char pw[32];
};

static int by_hash(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->hash, ((const struct entry *)b)->hash);
}

static struct entry entries[N_HASHES];

/* N_HASHES passwords "pw-N", plus "password" and one strong-looking
 * passphrase, sorted by hash. */
static void make_entries(void)
{
    for (int i = 0; i < N_HASHES - 2; i++)
        snprintf(entries[i].pw, sizeof(entries[i].pw), "pw-%d", i);
    snprintf(entries[N_HASHES - 2].pw, sizeof(entries[0].pw), "password");
    snprintf(entries[N_HASHES - 1].pw, sizeof(entries[0].pw), "dragonfly-meadow-42");
    for (int i = 0; i < N_HASHES; i++)
        sha1_hex(entries[i].pw, entries[i].hash);
    qsort(entries, N_HASHES, sizeof(entries[0]), by_hash);
}

static void write_list(const char *path, const char *eol, bool last_eol, bool descending)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int k = 0; k < N_HASHES; k++) {
        int i = descending ? N_HASHES - 1 - k : k;
        fprintf(f, "%s:%d%s", entries[i].hash, k * 7 % 100000 + 1, k == N_HASHES - 1 && !last_eol ? "" : eol);
    }
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int breached(const char *path, const char *pw)
{
    struct error err = {{0}};
    int r = breached_check(path, pw, strlen(pw), &err);
    if (r < 0)
        print_message("breached_check: %s\n", err.msg);
    return r;
}

static void check_list(const char *path)
{
    /* first line, last line, "password", and every 97th in between */
    assert_int_equal(breached(path, entries[0].pw), 1);
    assert_int_equal(breached(path, entries[N_HASHES - 1].pw), 1);
    assert_int_equal(breached(path, "password"), 1);
    for (int i = 1; i < N_HASHES; i += 97)
        assert_int_equal(breached(path, entries[i].pw), 1);
    assert_int_equal(breached(path, "not in the list"), 0);
    assert_int_equal(breached(path, "pw-10000"), 0);
    assert_int_equal(breached(path, ""), 0);
}

static void test_breached_lf_crlf(void **state)
{
    char path[64];
    make_entries();
    snprintf(path, sizeof(path), "%s/crlf", dir);
    write_list(path, "\r\n", true, false);
    check_list(path);
    snprintf(path, sizeof(path), "%s/lf", dir);
    write_list(path, "\n", true, false);
    check_list(path);
    snprintf(path, sizeof(path), "%s/noeol", dir); /* the last line without its newline */
    write_list(path, "\r\n", false, false);
    check_list(path);
}

static void test_breached_small(void **state)
{
    char path[64], line[64];
    snprintf(path, sizeof(path), "%s/one", dir);
    char h[41];
    sha1_hex("password", h);
    snprintf(line, sizeof(line), "%s:9545824\r\n", h);
    write_text(path, line);
    assert_int_equal(breached(path, "password"), 1);
    assert_int_equal(breached(path, "Password"), 0);
    /* lower-case hex is the same hash */
    for (char *p = line; *p != ':'; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    write_text(path, line);
    assert_int_equal(breached(path, "password"), 1);
    snprintf(path, sizeof(path), "%s/empty", dir);
    write_text(path, "");
    assert_int_equal(breached(path, "password"), 0);
}

static void test_breached_errors(void **state)
{
    char path[64];
    struct error err = {{0}};
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(breached_check(path, "pw", 2, &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(breached_check(dir, "pw", 2, &err), -1); /* a directory */

    snprintf(path, sizeof(path), "%s/bad", dir);
    const char *bad[] = {
        "not a hash list\n",
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8\n",                       /* no count */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:\n",                      /* empty count */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:12x\n",                   /* noise */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FG8:1\n",                     /* not hex */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD:1\n",                      /* 39 digits */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\r\r\n",                 /* stray CR */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1 \n",                    /* trailing space */
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:123456789012345678901\n", /* 21-digit count */
        "\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(path, bad[i]);
        if (breached_check(path, "password", 8, &err) != -1)
            fail_msg("malformed list %zu accepted", i);
        assert_non_null(strstr(err.msg, "malformed"));
    }
    /* A line too long to be one. */
    char big[400];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char text[1000];
    snprintf(text, sizeof(text),
             "0000000000000000000000000000000000000000:1\n%s\nFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:1\n",
             big);
    write_text(path, text);
    assert_int_equal(breached_check(path, "password", 8, &err), -1);

    /* Out of order: caught on the way. */
    make_entries();
    snprintf(path, sizeof(path), "%s/desc", dir);
    write_list(path, "\r\n", true, true);
    assert_int_equal(breached_check(path, "password", 8, &err), -1);
    assert_non_null(strstr(err.msg, "not sorted"));
    assert_int_equal(breached_check(path, "pw-1234", 7, &err), -1);
}

static void test_pwcheck_breached(void **state)
{
    char path[64];
    make_entries();
    snprintf(path, sizeof(path), "%s/list", dir);
    write_list(path, "\r\n", true, false);
    conf_defaults(&c);
    struct error err = {{0}};
    assert_int_equal(check("dragonfly-meadow-42", &err), 0);
    snprintf(c.pw_breached_list, sizeof(c.pw_breached_list), "%s", path);
    assert_refused("dragonfly-meadow-42", "breached");
    assert_int_equal(check(GOOD, &err), 0);
    /* A list that cannot be read refuses rather than skips. */
    snprintf(c.pw_breached_list, sizeof(c.pw_breached_list), "%s/missing", dir);
    assert_refused(GOOD, "missing");
    conf_defaults(&c);
}

static int setup(void **state)
{
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chars),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_quality),
        cmocka_unit_test(test_dictionary),
        cmocka_unit_test(test_breached_lf_crlf),
        cmocka_unit_test(test_breached_small),
        cmocka_unit_test(test_breached_errors),
        cmocka_unit_test(test_pwcheck_breached),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
