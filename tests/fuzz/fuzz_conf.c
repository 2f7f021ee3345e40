/* libFuzzer target for the configuration parser, on a NUL-terminated copy of
 * the input. Checks, aborting on any mismatch:
 *   - an error always carries a message starting with the file name;
 *   - a configuration that parses prints (conf_print) to text that parses
 *     back to the same configuration (printing it again gives the same
 *     text), when every printed line fits the parser's line limit;
 *   - every listener has an address and every certificate a cert and key,
 *     the mail location is beneath the root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "fuzz_check.h"

/* inih's line buffer (INI_MAX_LINE 200): longer lines cannot be read back. */
#define LINE_LIMIT 199

static int lines_fit(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\n')
            n = 0;
        else if (++n > LINE_LIMIT)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    static struct conf a, b;
    struct error err = {{0}};
    int r = conf_parse_string(text, "f.conf", &a, &err);
    if (r != 0) {
        CHECK(r == -1 && strncmp(err.msg, "f.conf", 6) == 0 && (err.msg[6] == ':'));
        free(text);
        return 0;
    }
    CHECK(a.n_listeners >= 1 && a.n_listeners <= CONF_MAX_LISTENERS);
    CHECK(a.n_certs >= 1 && a.n_certs <= CONF_MAX_CERTS);
    for (unsigned i = 0; i < a.n_listeners; i++)
        CHECK(a.listeners[i].n_addrs >= 1 && a.listeners[i].n_addrs <= CONF_MAX_ADDRS);
    for (unsigned i = 0; i < a.n_certs; i++)
        CHECK(a.certs[i].cert[0] == '/' && a.certs[i].key[0] == '/');
    size_t rl = strlen(a.mail_root);
    CHECK(rl >= 1 && (rl == 1 || a.mail_root[rl - 1] != '/')); /* normalised */
    CHECK(strncmp(a.mail_location, a.mail_root, rl) == 0 && (rl == 1 || a.mail_location[rl] == '/'));
    CHECK(strstr(a.mail_location, "..") == NULL);

    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    CHECK(f != NULL);
    conf_print(&a, f);
    CHECK(fclose(f) == 0);
    if (lines_fit(out)) {
        if (conf_parse_string(out, "f.conf", &b, &err) != 0) {
            fprintf(stderr, "printed configuration does not parse back: %s\n%s\n", err.msg, out);
            abort();
        }
        /* Same effective configuration: both print the same. (Not memcmp: a
         * key given twice leaves the longer first value's tail after the NUL.) */
        char *out2 = NULL;
        size_t outlen2 = 0;
        f = open_memstream(&out2, &outlen2);
        CHECK(f != NULL);
        conf_print(&b, f);
        CHECK(fclose(f) == 0);
        CHECK(outlen2 == outlen && memcmp(out, out2, outlen) == 0);
        free(out2);
    }
    free(out);
    free(text);
    return 0;
}
