/* libFuzzer target for IPC datagrams as a compromised peer would send them.
 * Each input is read as an auth request and as an auth result. Checks,
 * aborting on any mismatch:
 *   - the readers never read past the datagram (ASan, exact-size copy);
 *   - a datagram that parses re-encodes to exactly the same bytes (no
 *     trailing bytes, no ambiguity), with NUL-free strings within their caps
 *     and tls 0 or 1;
 *   - a refused request leaves the struct wiped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ipc/auth_msg.h"
#include "ipc/msg.h"

static struct ipc_writer w;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > IPC_MSG_MAX)
        return 0; /* ipc_recv() refuses those */
    uint8_t *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);

    struct ipc_reader r;
    int type = ipc_r_init(&r, buf, size);
    CHECK(size == 0 ? type == -1 : type == data[0]);

    static struct ipc_auth_req q;
    if (ipc_r_init(&r, buf, size) >= 0) {
        if (ipc_auth_req_read(&r, &q) == 0) {
            CHECK(q.tls <= 1 && q.secret_len <= IPC_SECRET_MAX);
            CHECK(strlen(q.secret) == q.secret_len);
            ipc_auth_req_write(&w, &q);
            CHECK(!w.overflow && w.len == size);
            CHECK(memcmp(w.buf + 1, data + 1, size - 1) == 0 && w.buf[0] == IPC_AUTH_REQ);
        } else {
            const uint8_t *b = (const uint8_t *)&q;
            for (size_t i = 0; i < sizeof(q); i++)
                CHECK(b[i] == 0);
        }
    }

    static struct ipc_auth_res a;
    if (ipc_r_init(&r, buf, size) >= 0 && ipc_auth_res_read(&r, &a) == 0) {
        CHECK(strlen(a.user) < sizeof(a.user) && strlen(a.mail) < sizeof(a.mail));
        ipc_auth_res_write(&w, &a);
        CHECK(!w.overflow && w.len == size);
        CHECK(memcmp(w.buf + 1, data + 1, size - 1) == 0 && w.buf[0] == IPC_AUTH_RES);
    }

    /* the generic getters in an input-chosen order */
    if (ipc_r_init(&r, buf, size) >= 0) {
        char s[40];
        for (size_t i = 1; i < size && i < 16; i++) {
            switch (data[i] & 3) {
            case 0: ipc_r_u8(&r); break;
            case 1: ipc_r_u32(&r); break;
            default: {
                size_t n = ipc_r_str(&r, s, 1 + (data[i] >> 3));
                CHECK(n == strlen(s) && n < 1u + (data[i] >> 3));
            }
            }
        }
        (void)ipc_r_end(&r);
    }
    free(buf);
    return 0;
}
