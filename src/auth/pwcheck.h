/* Quality of a password an administrator sets ([passwords] in the config):
 * a minimum length in characters (NIST SP 800-63B), libpwquality's checks
 * and score (dictionary words, the user name, repetition), and the list of
 * known-breached passwords. Generated passwords need none of this. */
#ifndef POPSD_AUTH_PWCHECK_H
#define POPSD_AUTH_PWCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "conf/conf.h"

/* Unicode code points in s[0..len) (UTF-8 continuation bytes do not count). */
size_t pwcheck_chars(const char *s, size_t len);

/* true if libpwquality's cracklib dictionary is installed; without it the
 * dictionary check is skipped (pwcheck still runs the others). */
bool pwcheck_have_dictionary(void);

/* Returns 0 if pw[0..len) (NUL-terminated at len) may be user's password, or
 * -1 with the reason in err ("too short: ...", "too weak: ...", "found in the
 * list of breached passwords", or why a check could not run: fail closed). */
int pwcheck(const struct conf *c, const char *user, const char *pw, size_t len, struct error *err);

#endif
