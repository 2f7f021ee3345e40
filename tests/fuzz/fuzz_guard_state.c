/* The defence state file reader on arbitrary bytes: never crash, never leak,
 * and whatever it accepts must save and load again to the same tables. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/guard.h"
#include "fuzz_check.h"

static const uint8_t KEY[GUARD_KEYLEN] = {0x42};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], path2[64];
    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/fuzz-guard-%d", (int)getpid());
        snprintf(path2, sizeof(path2), "/tmp/fuzz-guard-%d.b", (int)getpid());
    }
    /* Inputs are the file body after the magic and key, so the fuzzer reaches the records. */
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite("POPSDGUARD1\n", 1, 12, f);
    fwrite(KEY, 1, GUARD_KEYLEN, f);
    fwrite(data, 1, size, f);
    fclose(f);
    struct guard_params p = guard_params_default;
    p.table_cap = 64;
    struct guard *g = guard_new(&p, KEY, NULL, NULL);
    struct error err;
    if (guard_load(g, 1000, path, &err) == 0) {
        if (guard_save(g, 1000, path2, &err) != 0)
            abort();
        struct guard *h = guard_new(&p, KEY, NULL, NULL);
        if (guard_load(h, 1000, path2, &err) != 0)
            abort();
        guard_free(&h);
    }
    guard_free(&g);
    return 0;
}
