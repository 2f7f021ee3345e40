#include "pop3/command.h"

#include <string.h>

#include "common/strnum.h"

int pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    if (len == 0)
        return POP3_PARSE_EMPTY;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            return POP3_PARSE_BADCHAR;
    }
    line[len] = '\0';
    size_t k = 0;
    while (k < len && line[k] != ' ') {
        char c = line[k];
        if (k >= 4 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return POP3_PARSE_KEYWORD;
        cmd->keyword[k] = (char)(c & ~0x20);
        k++;
    }
    if (k < 3)
        return POP3_PARSE_KEYWORD;
    size_t pos = k;
    while (pos < len) {
        line[pos++] = '\0'; /* the separating space */
        if (pos >= len || line[pos] == ' ')
            return POP3_PARSE_SPACING;
        if (cmd->argc >= POP3_MAX_ARGS)
            return POP3_PARSE_TOO_MANY;
        const char *start = line + pos;
        while (pos < len && line[pos] != ' ')
            pos++;
        cmd->argv[cmd->argc] = start;
        cmd->arglen[cmd->argc] = (size_t)(line + pos - start);
        cmd->argc++;
    }
    return POP3_PARSE_OK;
}

int pop3_msgnum(const char *arg, size_t len, uint32_t max, uint32_t *index)
{
    uint32_t n;
    /* A u32 has at most 10 digits; a longer run of zeros is noise, not a number. */
    if (len > 10 || strnum_u32(arg, len, &n) < 0 || n == 0)
        return -1;
    if (n > max)
        return -2;
    *index = n - 1;
    return 0;
}
