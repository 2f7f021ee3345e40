/* libFuzzer target for Maildir file names and size-cache lines, the two
 * places where bytes written by other programs decide what we tell a client.
 * The input is parsed as a file name and as a popsd.sizes line; invariants
 * are checked and any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "store/maildir_name.h"
#include "store/sizecache.h"

static void check_uidl(const char *base, size_t len)
{
    char uidl[STORE_UIDL_MAX + 1];
    CHECK(maildir_name_uidl(base, len, uidl) == 0);
    size_t n = strlen(uidl);
    CHECK(n >= 1 && n <= STORE_UIDL_MAX);
    for (size_t i = 0; i < n; i++)
        CHECK(uidl[i] >= 0x21 && uidl[i] <= 0x7e);
    if (maildir_name_uidl_valid(base, len)) {
        CHECK(n == len && memcmp(uidl, base, len) == 0);
    } else {
        CHECK(n == MAILDIR_UIDL_HASH_LEN);
        for (size_t i = 0; i < n; i++)
            CHECK((uidl[i] >= '0' && uidl[i] <= '9') || (uidl[i] >= 'a' && uidl[i] <= 'f'));
    }
}

static void check_name(const char *name, size_t len)
{
    struct maildir_name n;
    if (maildir_name_parse(name, len, &n) < 0)
        return;
    CHECK(len >= 1 && len <= MAILDIR_NAME_MAX && name[0] != '.');
    CHECK(memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL);
    CHECK(n.base_len >= 1 && n.base_len <= len);
    CHECK(memchr(name, ':', n.base_len) == NULL);
    CHECK(n.base_len == len || name[n.base_len] == ':');
    if (n.has_size && n.has_wire)
        CHECK(n.wire_size >= n.size && n.wire_size - n.size <= n.size);
    if (n.has_size || n.has_wire)
        CHECK(memchr(name, ',', n.base_len) != NULL);
    /* Parsing is a pure function of the bytes. */
    struct maildir_name again;
    CHECK(maildir_name_parse(name, len, &again) == 0);
    CHECK(memcmp(&n, &again, sizeof(n)) == 0);
    check_uidl(name, n.base_len);
}

static void check_cache_line(const char *line, size_t len)
{
    struct sizecache_line l;
    if (sizecache_parse_line(line, len, &l) < 0)
        return;
    CHECK(l.base == line && sizecache_name_ok(l.base, l.base_len));
    CHECK(l.wire >= l.physical && l.wire - l.physical <= l.physical);
    /* Canonical: formatting gives back exactly the input line. */
    char buf[SIZECACHE_LINE_MAX + 2];
    size_t n = sizecache_format_line(&l, buf);
    CHECK(n == len + 1 && memcmp(buf, line, len) == 0 && buf[len] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    const char *s = (const char *)data;
    check_name(s, size);
    check_cache_line(s, size);
    check_uidl(s, size);
    return 0;
}
