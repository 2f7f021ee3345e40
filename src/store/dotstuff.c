/* RETR/TOP wire conversion. The rules, byte by byte:
 *   LF not preceded by CR  -> CRLF   (an existing CRLF passes unchanged)
 *   CR                     -> CR     (emitted at once; a bare CR is not a line end)
 *   '.' at a line start    -> ".."   (the extra dot is not counted in wire_bytes)
 * Because every LF on the wire is preceded by CR and every line-start dot is
 * doubled, the output can never contain "\r\n.\r\n" before our terminator. */
#include "store/dotstuff.h"

#include <string.h>

void dotstuff_init(struct dotstuff *st, long long top_lines)
{
    memset(st, 0, sizeof(*st));
    st->at_line_start = true;
    st->header_line_empty = true;
    if (top_lines >= 0) {
        st->limit_lines = true;
        st->max_body_lines = (uint64_t)top_lines;
    }
}

/* A line has just ended (its LF was emitted): move through the header/body
 * boundary and apply the TOP limit. */
static void end_of_line(struct dotstuff *st)
{
    st->at_line_start = true;
    if (!st->in_body) {
        if (st->header_line_empty) {
            /* The empty line ends the header; it belongs to the header part,
             * so TOP 0 stops right after it. */
            st->in_body = true;
            if (st->limit_lines && st->max_body_lines == 0)
                st->done = true;
        }
        st->header_line_empty = true;
        return;
    }
    st->body_lines++;
    if (st->limit_lines && st->body_lines >= st->max_body_lines)
        st->done = true;
}

/* A line feed: CRLF on the wire (the CR may already be out). Returns bytes written. */
static size_t emit_lf(struct dotstuff *st, unsigned char *out)
{
    size_t o = 0;
    if (!st->last_cr) {
        out[o++] = '\r';
        st->wire_bytes++;
    }
    out[o++] = '\n';
    st->wire_bytes++;
    st->last_cr = false;
    end_of_line(st);
    return o;
}

/* The header, byte by byte: it is short, and only here does the empty line
 * that ends it need watching. Returns the input position where it stopped. */
static size_t feed_header(struct dotstuff *st, const unsigned char *in, size_t len, unsigned char *out, size_t *op)
{
    size_t o = *op, i = 0;
    for (; i < len && !st->done && !st->in_body; i++) {
        unsigned char c = in[i];
        if (c == '\n') {
            o += emit_lf(st, out + o);
            continue;
        }
        if (st->at_line_start && c == '.')
            out[o++] = '.';
        if (c != '\r' || st->last_cr)
            st->header_line_empty = false; /* "" and "\r" before LF are both an empty line */
        out[o++] = c;
        st->wire_bytes++;
        st->last_cr = (c == '\r');
        st->at_line_start = false;
    }
    *op = o;
    return i;
}

size_t dotstuff_feed(struct dotstuff *st, const unsigned char *in, size_t len, unsigned char *out)
{
    size_t o = 0;
    size_t i = feed_header(st, in, len, out, &o);
    /* The body, a line at a time: copy each run up to its LF whole (the bulk
     * of RETR's work), deciding only at line starts and line ends. */
    while (i < len && !st->done) {
        if (st->at_line_start && in[i] == '.')
            out[o++] = '.';
        const unsigned char *lf = memchr(in + i, '\n', len - i);
        size_t end = lf != NULL ? (size_t)(lf - in) : len;
        size_t n = end - i;
        memcpy(out + o, in + i, n);
        o += n;
        st->wire_bytes += n;
        if (n > 0) {
            st->last_cr = in[end - 1] == '\r';
            st->at_line_start = false;
        }
        if (lf == NULL)
            break;
        o += emit_lf(st, out + o);
        i = end + 1;
    }
    return o;
}

size_t dotstuff_finish(struct dotstuff *st, unsigned char *out)
{
    size_t o = 0;
    /* A last line without LF still needs CRLF so the terminator stands on a
     * line of its own. After a TOP stop we are always at a line start. */
    if (!st->at_line_start) {
        out[o++] = '\r';
        out[o++] = '\n';
        st->at_line_start = true;
    }
    out[o++] = '.';
    out[o++] = '\r';
    out[o++] = '\n';
    st->done = true;
    return o;
}

void dotstuff_count(struct dotstuff *st, const unsigned char *in, size_t len)
{
    if (len == 0)
        return;
    /* Every byte counts once; each LF whose preceding byte (possibly the last
     * one of the previous chunk) is not CR gains the CR it will be sent with. */
    uint64_t n = len;
    const unsigned char *p = in, *end = in + len;
    const unsigned char *lf;
    while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        bool prev_cr = (lf == in) ? st->last_cr : lf[-1] == '\r';
        if (!prev_cr)
            n++;
        p = lf + 1;
    }
    st->last_cr = (in[len - 1] == '\r');
    st->wire_bytes += n;
}
