/* Parses one command line into a keyword and arguments, strictly: a keyword of
 * 3-4 letters (case-insensitive), arguments separated by single spaces, no
 * control bytes (NUL, bare CR, ...). Message numbers are strict decimals. */
#ifndef POPSD_POP3_COMMAND_H
#define POPSD_POP3_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#define POP3_MAX_ARGS 2

struct pop3_cmd {
    char keyword[5]; /* upper-cased */
    unsigned argc;
    const char *argv[POP3_MAX_ARGS]; /* point into the caller's buffer, NUL-terminated there */
    size_t arglen[POP3_MAX_ARGS];
};

enum pop3_parse_status {
    POP3_PARSE_OK = 0,
    POP3_PARSE_EMPTY = -1,    /* empty line */
    POP3_PARSE_BADCHAR = -2,  /* NUL, bare CR or another control byte */
    POP3_PARSE_KEYWORD = -3,  /* not a 3-4 letter keyword */
    POP3_PARSE_TOO_MANY = -4, /* more arguments than any command takes */
    POP3_PARSE_SPACING = -5,  /* empty argument (double or trailing space) */
};

/* Parses line[0..len) in place: separators are overwritten with NUL, so line
 * needs len+1 bytes of storage. Returns POP3_PARSE_OK or a negative status. */
int pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd);

/* A message number argument: 1..max (max = messages in the snapshot). Returns
 * 0 and the 0-based index, -1 if not a strict decimal (or 0, or overflow),
 * -2 if it names no message. */
int pop3_msgnum(const char *arg, size_t len, uint32_t max, uint32_t *index);

#endif
