/* The defence engine's state file: written atomically, read strictly. The
 * file lives in a directory only authd can write; it is still parsed as
 * untrusted input (bounded lengths, known table ids, no trailing bytes). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/guard.h"
#include "common/secret.h"

#define STATE_MAGIC "POPSDGUARD1\n"
#define STATE_MAGIC_LEN 12
#define STATE_END 0xff

struct guard_table *guard_state_table(struct guard *g, unsigned i);
unsigned guard_state_ntables(void);
const uint8_t *guard_state_key(const struct guard *g);

struct writer {
    FILE *f;
    unsigned table;
    bool failed;
};

static void put_be(FILE *f, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        fputc((int)((v >> (8 * i)) & 0xff), f);
}

static int write_entry(void *ctx, const struct guard_entry *e)
{
    struct writer *w = ctx;
    size_t ll = e->label ? strlen(e->label) : 0;
    fputc((int)w->table, w->f);
    fputc(e->key.len, w->f);
    fwrite(e->key.b, 1, e->key.len, w->f);
    put_be(w->f, e->value, 4);
    put_be(w->f, (uint64_t)e->expires, 8);
    put_be(w->f, ll, 2);
    if (ll)
        fwrite(e->label, 1, ll, w->f);
    w->failed |= ferror(w->f) != 0;
    return w->failed;
}

int guard_save(struct guard *g, int64_t now, const char *path, struct error *err)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return error_set_errno(err, errno, "%s", tmp);
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        return error_set_errno(err, errno, "fdopen");
    }
    fwrite(STATE_MAGIC, 1, STATE_MAGIC_LEN, f);
    fwrite(guard_state_key(g), 1, GUARD_KEYLEN, f);
    struct writer w = {.f = f};
    for (unsigned i = 0; i < guard_state_ntables(); i++) {
        w.table = i;
        guard_table_each(guard_state_table(g, i), now, write_entry, &w);
    }
    fputc(STATE_END, f);
    bool bad = w.failed || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return error_set_errno(err, bad ? e : errno, "writing %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return error_set_errno(err, e, "rename to %s", path);
    }
    return 0;
}

static bool get(FILE *f, void *p, size_t n)
{
    return fread(p, 1, n, f) == n;
}

static bool get_be(FILE *f, uint64_t *v, int bytes)
{
    uint8_t b[8];
    if (!get(f, b, (size_t)bytes))
        return false;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v = *v << 8 | b[i];
    return true;
}

static FILE *open_state(const char *path, uint8_t key[GUARD_KEYLEN])
{
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return NULL;
    char magic[STATE_MAGIC_LEN];
    if (!get(f, magic, STATE_MAGIC_LEN) || memcmp(magic, STATE_MAGIC, STATE_MAGIC_LEN) != 0 ||
        !get(f, key, GUARD_KEYLEN)) {
        fclose(f);
        errno = EINVAL;
        return NULL;
    }
    return f;
}

int guard_load_key(const char *path, uint8_t key[GUARD_KEYLEN])
{
    FILE *f = open_state(path, key);
    if (f == NULL)
        return -1;
    fclose(f);
    return 0;
}

int guard_load(struct guard *g, int64_t now, const char *path, struct error *err)
{
    uint8_t key[GUARD_KEYLEN];
    FILE *f = open_state(path, key);
    if (f == NULL)
        return error_set_errno(err, errno, "%s", path);
    bool same_key = secret_equal(key, guard_state_key(g), GUARD_KEYLEN);
    secret_wipe(key, sizeof(key));
    if (!same_key) {
        fclose(f);
        return error_set(err, "%s: written with another key", path);
    }
    for (;;) {
        int table = fgetc(f);
        if (table == STATE_END)
            break;
        struct guard_key k;
        uint64_t value, expires, ll;
        char label[GUARD_LABEL_MAX + 1];
        int kl = fgetc(f);
        if (table == EOF || (unsigned)table >= guard_state_ntables() || kl == EOF || kl > GUARD_KEY_MAX)
            goto bad;
        k.len = (uint8_t)kl;
        if (!get(f, k.b, k.len) || !get_be(f, &value, 4) || !get_be(f, &expires, 8) || !get_be(f, &ll, 2) ||
            ll > GUARD_LABEL_MAX || !get(f, label, ll))
            goto bad;
        label[ll] = '\0';
        if (memchr(label, '\0', ll) != NULL)
            goto bad;
        if ((int64_t)expires <= now)
            continue;
        bool created;
        struct guard_entry *e =
            guard_table_upsert(guard_state_table(g, (unsigned)table), &k, now, (int64_t)expires, &created);
        if (e == NULL)
            goto bad;
        e->value = (uint32_t)value;
        if (ll)
            guard_table_set_label(e, label);
    }
    if (fgetc(f) != EOF)
        goto bad;
    fclose(f);
    return 0;
bad:
    fclose(f);
    return error_set(err, "%s: malformed state file", path);
}
