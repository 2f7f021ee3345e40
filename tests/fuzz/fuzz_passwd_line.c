/* libFuzzer target: the passwd-file line parser. The input is handed over
 * exactly as read (no NUL terminator), and an accepted entry must satisfy
 * the parser's contract, or we abort so the fuzzer reports it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "fuzz_check.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct userdb_entry e;
    struct error err;
    err.msg[0] = '\0';
    int r = userdb_passwd_parse_line((const char *)data, size, &e, &err);
    check(r >= -1 && r <= 1);
    if (r == 1) {
        size_t nl = strnlen(e.name, sizeof(e.name));
        check(nl > 0 && nl < sizeof(e.name));
        check(memchr(e.name, ':', nl) == NULL && memchr(e.name, '/', nl) == NULL);
        size_t pl = strnlen(e.pwhash, sizeof(e.pwhash));
        check(pl > 0 && pl < sizeof(e.pwhash));
        size_t ml = strnlen(e.mail, sizeof(e.mail));
        check(ml < sizeof(e.mail));
        check(ml == 0 || e.mail[0] == '/');
        check(memchr(e.mail, '%', ml) == NULL);
    } else if (r == -1) {
        check(err.msg[0] != '\0' && strnlen(err.msg, sizeof(err.msg)) < sizeof(err.msg));
        check(e.name[0] == '\0' && e.pwhash[0] == '\0'); /* nothing left behind */
    }
    userdb_entry_wipe(&e);
    return 0;
}
