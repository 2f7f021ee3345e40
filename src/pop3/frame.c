#include "pop3/frame.h"

#include <string.h>

enum pop3_frame_status pop3_frame_next(struct pop3_framer *f, const char *buf, size_t len, size_t max,
                                       size_t *linelen, size_t *consumed)
{
    *linelen = 0;
    const char *lf = memchr(buf, '\n', len);
    if (f->discarding) {
        if (lf == NULL) {
            *consumed = len;
            return POP3_FRAME_NEED_MORE;
        }
        *consumed = (size_t)(lf - buf) + 1;
        f->discarding = false;
        return POP3_FRAME_TOO_LONG;
    }
    if (lf == NULL) {
        *consumed = 0;
        if (len > max + 1) { /* max octets plus a CR still cannot end the line */
            f->discarding = true;
            *consumed = len;
        }
        return POP3_FRAME_NEED_MORE;
    }
    size_t n = (size_t)(lf - buf);
    *consumed = n + 1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > max)
        return POP3_FRAME_TOO_LONG;
    *linelen = n;
    return POP3_FRAME_LINE;
}
