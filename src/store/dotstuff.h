/* Turns message bytes from disk into the RETR/TOP wire form: LF -> CRLF
 * (existing CRLF kept), a leading '.' doubled, and the ".\r\n" terminator,
 * optionally stopping after the header and N body lines (TOP). Streaming: the
 * caller feeds chunks of any size; no whole message is ever held in memory. */
#ifndef POPSD_STORE_DOTSTUFF_H
#define POPSD_STORE_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Private state: embed it, initialise it with dotstuff_init(), read only
 * wire_bytes. No byte is ever held back between chunks: a CR is emitted at
 * once, and a following LF (even in the next chunk) is then emitted alone. */
struct dotstuff {
    bool at_line_start;     /* next byte begins a line */
    bool last_cr;           /* the previous input byte was a CR (already emitted) */
    bool in_body;           /* past the empty line that ends the header */
    bool header_line_empty; /* the current header line is "" or a lone CR so far */
    bool limit_lines;       /* TOP: stop after max_body_lines body lines */
    bool done;              /* TOP limit reached: ignore further input */
    uint64_t max_body_lines;
    uint64_t body_lines;
    uint64_t wire_bytes; /* bytes counted as message size (no stuffing, no terminator) */
};

/* Worst-case output for n input bytes: every byte may become two. */
#define DOTSTUFF_OUT_MAX(n) (2 * (n) + 2)

/* Starts a RETR (top_lines < 0) or a TOP with top_lines body lines. */
void dotstuff_init(struct dotstuff *st, long long top_lines);

/* Converts in[0..len) into out, which must have room for DOTSTUFF_OUT_MAX(len)
 * bytes. Returns the number of bytes written. After st->done, writes nothing. */
size_t dotstuff_feed(struct dotstuff *st, const unsigned char *in, size_t len, unsigned char *out);

/* Ends the message: a CRLF if the last line was unterminated, then ".\r\n".
 * out needs room for 5 bytes. Returns bytes written. */
size_t dotstuff_finish(struct dotstuff *st, unsigned char *out);

/* Size a message occupies on the wire (the LIST/STAT size) for the given bytes:
 * feed successive chunks; the running total is in st->wire_bytes. Use a state
 * initialised for RETR and only ever counted, never fed: the result equals the
 * wire_bytes dotstuff_feed() reaches on the same bytes (the CRLF that
 * dotstuff_finish() adds to an unterminated last line is not part of it). */
void dotstuff_count(struct dotstuff *st, const unsigned char *in, size_t len);

#endif
