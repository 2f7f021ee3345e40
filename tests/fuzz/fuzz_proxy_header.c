/* libFuzzer target for the PROXY protocol v2 header, the first bytes a
 * proxied connection carries. Checks, aborting on any mismatch:
 *   - NEED_MORE asks for more than it has and at most PROXY_V2_MAX;
 *   - OK consumes no more than it was given, at least the 16-byte prefix,
 *     and names an AF_INET or AF_INET6 source unless local;
 *   - a result never depends on bytes past the header: feeding the input
 *     one byte longer at a time gives NEED_MORE up to the answer, then the
 *     same answer and header length. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event/proxy_header.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_info pi;
    size_t need;
    const char *why;
    enum proxy_result r = proxy_v2_parse(data, size, &pi, &need, &why);
    if (r == PROXY_NEED_MORE) {
        CHECK(need > size && need <= PROXY_V2_MAX);
        return 0;
    }
    if (r == PROXY_BAD) {
        CHECK(why != NULL && why[0] != '\0');
    } else {
        CHECK(pi.header_len >= PROXY_V2_PREFIX && pi.header_len <= size && pi.header_len <= PROXY_V2_MAX);
        if (!pi.local) {
            CHECK((pi.src.ss_family == AF_INET && pi.src_len == sizeof(struct sockaddr_in)) ||
                  (pi.src.ss_family == AF_INET6 && pi.src_len == sizeof(struct sockaddr_in6)));
        }
    }
    /* The same bytes arriving piece by piece: a copy of each prefix, so that a
     * read past the prefix shows up under ASan. */
    for (size_t len = 0; len <= size; len++) {
        uint8_t *p = malloc(len > 0 ? len : 1);
        CHECK(p != NULL);
        if (len > 0)
            memcpy(p, data, len);
        struct proxy_info q;
        enum proxy_result s = proxy_v2_parse(p, len, &q, &need, &why);
        free(p);
        if (s == PROXY_NEED_MORE) {
            CHECK(need > len);
            continue;
        }
        CHECK(s == r);
        if (r == PROXY_OK)
            CHECK(q.header_len == pi.header_len && q.local == pi.local &&
                  memcmp(&q.src, &pi.src, sizeof(q.src)) == 0);
        break;
    }
    return 0;
}
