/* PROXY protocol v2 parser. Written here because no Debian library offers
 * one (HAProxy's own is inside haproxy); the format is a fixed 16-byte
 * prefix, an address block and type-length-value records. */
#include "event/proxy_header.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum { CMD_LOCAL = 0, CMD_PROXY = 1 };
enum { FAM_UNSPEC = 0, FAM_INET = 1, FAM_INET6 = 2, FAM_UNIX = 3 };
enum { PROTO_UNSPEC = 0, PROTO_STREAM = 1, PROTO_DGRAM = 2 };

static enum proxy_result bad(const char **why, const char *what)
{
    *why = what;
    return PROXY_BAD;
}

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Every TLV must fit in what the length field announced. */
static bool tlvs_well_formed(const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (n < 3 || n - 3 < be16(p + 1))
            return false;
        size_t step = 3 + (size_t)be16(p + 1);
        p += step;
        n -= step;
    }
    return true;
}

enum proxy_result proxy_v2_parse(const unsigned char *b, size_t len, struct proxy_info *out, size_t *need,
                                 const char **why)
{
    memset(out, 0, sizeof(*out));
    *need = 0;
    *why = NULL;
    if (len == 0) {
        *need = PROXY_V2_PREFIX;
        return PROXY_NEED_MORE;
    }
    size_t k = len < sizeof(signature) ? len : sizeof(signature);
    if (memcmp(b, signature, k) != 0)
        return bad(why, b[0] == 'P' ? "PROXY protocol v1 header; popsd reads v2 (HAProxy: send-proxy-v2)"
                                    : "no PROXY protocol v2 header");
    if (len < PROXY_V2_PREFIX) {
        *need = PROXY_V2_PREFIX;
        return PROXY_NEED_MORE;
    }
    unsigned version = b[12] >> 4, command = b[12] & 0x0f;
    unsigned family = b[13] >> 4, proto = b[13] & 0x0f;
    if (version != 2)
        return bad(why, "unsupported PROXY protocol version");
    if (command != CMD_LOCAL && command != CMD_PROXY)
        return bad(why, "unknown PROXY command");
    size_t total = PROXY_V2_PREFIX + be16(b + 14);
    if (total > PROXY_V2_MAX)
        return bad(why, "PROXY header too long");
    if (len < total) {
        *need = total;
        return PROXY_NEED_MORE;
    }
    size_t addr_len;
    switch (family) {
    case FAM_UNSPEC: addr_len = 0; break;
    case FAM_INET: addr_len = 12; break;
    case FAM_INET6: addr_len = 36; break;
    case FAM_UNIX: addr_len = 216; break;
    default: return bad(why, "unknown PROXY address family");
    }
    if (proto > PROTO_DGRAM)
        return bad(why, "unknown PROXY transport");
    if (total - PROXY_V2_PREFIX < addr_len)
        return bad(why, "PROXY address block truncated");
    if (!tlvs_well_formed(b + PROXY_V2_PREFIX + addr_len, total - PROXY_V2_PREFIX - addr_len))
        return bad(why, "malformed PROXY TLV");
    out->header_len = total;
    if (command == CMD_LOCAL)
        out->local = true;
    else if (proto == PROTO_DGRAM)
        return bad(why, "PROXY header for a datagram flow");
    else if (proto == PROTO_STREAM && family == FAM_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, b + 16, 4);
        memcpy(&s->sin_port, b + 24, 2);
        out->src_len = sizeof(*s);
    } else if (proto == PROTO_STREAM && family == FAM_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, b + 16, 16);
        memcpy(&s->sin6_port, b + 48, 2);
        out->src_len = sizeof(*s);
    } else {
        out->local = true; /* UNSPEC or UNIX: no TCP client to name */
    }
    return PROXY_OK;
}
