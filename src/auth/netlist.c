/* Allow-lists of networks. Every address is compared as 16 bytes, IPv4 as
 * ::ffff:a.b.c.d with its prefix + 96, so a mapped address (what a dual-stack
 * socket reports for an IPv4 client) and its IPv4 form are one and the same. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "auth/netlist.h"

#define TOKEN_MAX 64 /* INET6_ADDRSTRLEN + "/128", with room to spare */

struct net {
    uint8_t addr[16];
    unsigned bits;
};

static bool is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',';
}

/* Parses a textual address into its 16-byte form; *v4 tells whether it was
 * written as dotted IPv4 (its prefix counts from bit 96). */
static bool parse_addr(const char *s, size_t len, uint8_t out[16], bool *v4)
{
    char buf[TOKEN_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    *v4 = false;
    return inet_pton(AF_INET6, buf, out) == 1;
}

/* "ADDR" or "ADDR/BITS"; the prefix is plain digits (no sign, no leading zero). */
static bool parse_net(const char *s, size_t len, struct net *n)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    bool v4;
    if (!parse_addr(s, alen, n->addr, &v4))
        return false;
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t dl = len - alen - 1;
        if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0'))
            return false;
        bits = 0;
        for (size_t i = 0; i < dl; i++) {
            if (d[i] < '0' || d[i] > '9')
                return false;
            bits = bits * 10 + (unsigned)(d[i] - '0');
        }
        if (bits > max)
            return false;
    }
    n->bits = v4 ? bits + 96 : bits;
    return true;
}

static bool net_contains(const struct net *n, const uint8_t a[16])
{
    unsigned full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return ((n->addr[full] ^ a[full]) & mask) == 0;
}

/* The next entry at or after p, with its length (0 at the end of the list). */
static const char *next_token(const char *p, size_t *len)
{
    while (*p != '\0' && is_sep(*p))
        p++;
    size_t n = 0;
    while (p[n] != '\0' && !is_sep(p[n]))
        n++;
    *len = n;
    return p;
}

int netlist_allow(const char *networks, const char *addr)
{
    if (networks == NULL)
        return 1;
    uint8_t a[16];
    bool v4;
    bool have_addr = addr != NULL && parse_addr(addr, strlen(addr), a, &v4);
    bool any = false, allowed = false;
    size_t len;
    /* The whole list is parsed even after a match, so a malformed entry is
     * reported whatever the address, not only for some clients. */
    for (const char *p = next_token(networks, &len); len > 0; p = next_token(p + len, &len)) {
        struct net n;
        if (!parse_net(p, len, &n))
            return -1;
        any = true;
        if (have_addr && net_contains(&n, a))
            allowed = true;
    }
    return !any || allowed ? 1 : 0;
}

int netlist_check(const char *networks, struct error *err)
{
    if (networks == NULL)
        return 0;
    size_t len;
    unsigned idx = 0;
    for (const char *p = next_token(networks, &len); len > 0; p = next_token(p + len, &len)) {
        struct net n;
        idx++;
        if (parse_net(p, len, &n))
            continue;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
                return error_set(err, "network entry %u is not an address or CIDR", idx);
        return error_set(err, "'%.*s' is not an address or CIDR (a.b.c.d[/n], x:y::z[/n])",
                         len > TOKEN_MAX ? TOKEN_MAX : (int)len, p);
    }
    return 0;
}
