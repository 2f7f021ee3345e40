#include "store/maildir_name.h"

#include <openssl/evp.h>
#include <string.h>

#include "common/strnum.h"

/* One ",X=value" field: counts occurrences and records whether every one of
 * them parsed, so a duplicated or garbled field is never trusted. */
struct size_field {
    unsigned seen;
    bool bad;
    uint64_t value;
};

static void take_field(struct size_field *f, const char *val, size_t len)
{
    f->seen++;
    if (strnum_u64(val, len, &f->value) < 0)
        f->bad = true;
}

int maildir_name_parse(const char *name, size_t len, struct maildir_name *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.')
        return -1;
    if (memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL)
        return -1;
    const char *colon = memchr(name, ':', len);
    size_t base_len = colon != NULL ? (size_t)(colon - name) : len;
    if (base_len == 0)
        return -1;
    out->base_len = base_len;

    /* The first comma-separated component is the unique part; fields follow. */
    struct size_field s = {0}, w = {0};
    const char *p = memchr(name, ',', base_len);
    const char *end = name + base_len;
    while (p != NULL) {
        const char *field = p + 1;
        const char *next = memchr(field, ',', (size_t)(end - field));
        size_t flen = (size_t)((next != NULL ? next : end) - field);
        if (flen >= 2 && field[1] == '=') {
            if (field[0] == 'S')
                take_field(&s, field + 2, flen - 2);
            else if (field[0] == 'W')
                take_field(&w, field + 2, flen - 2);
        }
        p = next;
    }
    if (s.seen == 1 && !s.bad) {
        out->has_size = true;
        out->size = s.value;
    }
    if (w.seen == 1 && !w.bad) {
        bool consistent = !out->has_size || (w.value >= out->size && w.value - out->size <= out->size);
        if (consistent) {
            out->has_wire = true;
            out->wire_size = w.value;
        }
    }
    return 0;
}

bool maildir_name_uidl_valid(const char *base, size_t len)
{
    if (len == 0 || len > STORE_UIDL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)base[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

int maildir_name_uidl(const char *base, size_t len, char out[STORE_UIDL_MAX + 1])
{
    if (maildir_name_uidl_valid(base, len)) {
        memcpy(out, base, len);
        out[len] = '\0';
        return 0;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(base, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen * 2 < MAILDIR_UIDL_HASH_LEN)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < MAILDIR_UIDL_HASH_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[MAILDIR_UIDL_HASH_LEN] = '\0';
    return 0;
}
