/* Maildir file names as Postfix, Dovecot's LDA and procmail write them:
 *   <unique>[,S=<physical size>][,W=<wire size>][,<other>...][:<info>]
 * The base name (everything before the first ':') identifies a message for
 * its whole life: the info part changes when flags change or new/ -> cur/.
 * These functions only look at bytes; they never touch the file system. */
#ifndef POPSD_STORE_MAILDIR_NAME_H
#define POPSD_STORE_MAILDIR_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/mailbox.h"

/* Longest file name we accept in new/ or cur/ (Linux NAME_MAX). */
#define MAILDIR_NAME_MAX 255
/* Hex characters of SHA-256(base) used as UIDL when the base is not a valid one. */
#define MAILDIR_UIDL_HASH_LEN 32

struct maildir_name {
    size_t base_len;    /* bytes before the first ':' (or the whole name); >= 1 */
    bool has_size;      /* ",S=" present, exactly once, strict decimal */
    bool has_wire;      /* ",W=" present, exactly once, strict decimal, consistent with S */
    uint64_t size;      /* physical octets on disk */
    uint64_t wire_size; /* octets with LF counted as CRLF */
};

/* Parses name[0..len). Returns 0, or -1 when it cannot be a message file:
 * empty, longer than MAILDIR_NAME_MAX, starting with '.', containing '/' or
 * NUL, or with an empty base. A malformed, repeated or out-of-range S/W field
 * is reported as absent (the size is then measured rather than trusted): W is
 * kept only when it is at least S and at most 2*S, since converting bare LFs
 * can add at most one byte per byte. */
int maildir_name_parse(const char *name, size_t len, struct maildir_name *out);

/* True if base[0..len) can be sent as a POP3 unique-id as is: 1..70 octets,
 * each 0x21..0x7E (RFC 1939 section 7). */
bool maildir_name_uidl_valid(const char *base, size_t len);

/* Writes the UIDL of base[0..len) into out (NUL-terminated): the base itself
 * when valid, otherwise the first MAILDIR_UIDL_HASH_LEN lowercase hex digits
 * of SHA-256(base), which is stable across sessions and servers. Returns 0, or
 * -1 if the digest cannot be computed (OpenSSL failure). */
int maildir_name_uidl(const char *base, size_t len, char out[STORE_UIDL_MAX + 1]);

#endif
