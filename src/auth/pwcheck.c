/* Password quality for admin-set passwords. See pwcheck.h. */
#include <pwquality.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth/breached.h"
#include "auth/pwcheck.h"

size_t pwcheck_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* cracklib opens "<dict>.pwd"; without it every check fails with "error
 * loading dictionary" (and libcrack prints to stderr), so look first. */
static bool have_dictionary(pwquality_settings_t *pwq)
{
    const char *dict = NULL;
    char path[1100];
    if (pwquality_get_str_value(pwq, PWQ_SETTING_DICT_PATH, &dict) != 0 || dict == NULL || dict[0] == '\0')
        return false;
    if ((size_t)snprintf(path, sizeof(path), "%s.pwd", dict) >= sizeof(path))
        return false;
    return access(path, R_OK) == 0;
}

bool pwcheck_have_dictionary(void)
{
    pwquality_settings_t *pwq = pwquality_default_settings();
    bool r = pwq != NULL && have_dictionary(pwq);
    pwquality_free_settings(pwq);
    return r;
}

/* libpwquality looks for the name it is given; for "alice@example.com" the
 * part people put into passwords is "alice". */
static void name_for_check(const char *user, char *out, size_t outsz)
{
    size_t n = strcspn(user, "@");
    if (n == 0)
        n = strlen(user);
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, user, n);
    out[n] = '\0';
}

static int quality(const struct conf *c, const char *user, const char *pw, struct error *err)
{
    pwquality_settings_t *pwq = pwquality_default_settings();
    if (pwq == NULL)
        return error_set(err, "password check: out of memory");
    int r = 0;
    if (pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH, (int)c->pw_min_length) != 0 ||
        (!have_dictionary(pwq) && pwquality_set_int_value(pwq, PWQ_SETTING_DICT_CHECK, 0) != 0)) {
        r = error_set(err, "password check: cannot configure libpwquality");
    } else {
        char name[256];
        void *aux = NULL;
        name_for_check(user != NULL ? user : "", name, sizeof(name));
        int score = pwquality_check(pwq, pw, NULL, name[0] != '\0' ? name : NULL, &aux);
        char why[PWQ_MAX_ERROR_MESSAGE_LEN];
        if (score < 0)
            r = error_set(err, "password too weak: %s", pwquality_strerror(why, sizeof(why), score, aux));
        else if (aux != NULL)
            pwquality_strerror(why, sizeof(why), score, aux); /* frees aux */
        if (score >= 0 && (uint32_t)score < c->pw_min_quality)
            r = error_set(err,
                          "password too weak: quality score %d of 100, at least %u is required "
                          "(make it longer and less predictable)",
                          score, c->pw_min_quality);
    }
    pwquality_free_settings(pwq);
    return r;
}

int pwcheck(const struct conf *c, const char *user, const char *pw, size_t len, struct error *err)
{
    if (memchr(pw, '\0', len) != NULL || pw[len] != '\0')
        return error_set(err, "password contains a NUL byte");
    size_t chars = pwcheck_chars(pw, len);
    if (chars < c->pw_min_length)
        return error_set(err, "password too short: %zu characters, at least %u are required", chars,
                         c->pw_min_length);
    if (quality(c, user, pw, err) < 0)
        return -1;
    if (c->pw_breached_list[0] != '\0') {
        int r = breached_check(c->pw_breached_list, pw, len, err);
        if (r < 0)
            return -1; /* cannot tell: refuse rather than skip */
        if (r > 0)
            return error_set(err,
                             "password refused: it is in the list of breached passwords; choose another");
    }
    return 0;
}
