/* Splits the client's byte stream into command lines. A line ends at LF (a CR
 * before it is dropped), so both CRLF and bare-LF clients work. A line longer
 * than the limit is skipped up to its end and reported once, when it ends, so
 * the replies stay in step with a pipelining client. */
#ifndef POPSD_POP3_FRAME_H
#define POPSD_POP3_FRAME_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 2449: a command line is at most 255 octets including CRLF. AUTH lines
 * (tokens in the initial response and continuations) may be longer. */
#define POP3_CMD_MAX 255
/* The same limit for a line without its CRLF. */
#define POP3_CMD_TEXT_MAX (POP3_CMD_MAX - 2)
#define POP3_FRAME_MAX 8192

enum pop3_frame_status {
    POP3_FRAME_NEED_MORE, /* no complete line yet; *consumed bytes may be dropped */
    POP3_FRAME_LINE,      /* buf[0..*linelen) is a line; drop *consumed bytes */
    POP3_FRAME_TOO_LONG,  /* an over-long line just ended; drop *consumed bytes */
};

struct pop3_framer {
    bool discarding; /* inside an over-long line */
};

enum pop3_frame_status pop3_frame_next(struct pop3_framer *f, const char *buf, size_t len, size_t max,
                                       size_t *linelen, size_t *consumed);

#endif
