/* Known-breached passwords: Have I Been Pwned's "Pwned Passwords" SHA-1 list
 * as downloaded ordered by hash, one "SHA1HEX:COUNT" line each (CRLF or LF),
 * ascending. The file is never loaded: a binary search over byte offsets with
 * pread, O(log n) small reads, so a 30+ GB list costs ~40 reads per check. */
#ifndef POPSD_AUTH_BREACHED_H
#define POPSD_AUTH_BREACHED_H

#include <stddef.h>

#include "common/error.h"

/* Returns 1 if SHA-1(pw[0..len)) is listed (refuse the password), 0 if not
 * (an empty file lists nothing), -1 if the file cannot be read or a line read
 * on the way is malformed or out of order (err says which byte offset). */
int breached_check(const char *path, const char *pw, size_t len, struct error *err);

#endif
