/* What every libFuzzer target shares: the entry point's prototype (the
 * targets are built with -Wmissing-prototypes) and CHECK, which aborts so that
 * libFuzzer records the input when an invariant fails. */
#ifndef POPSD_FUZZ_CHECK_H
#define POPSD_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                             \
    do {                                                                                                     \
        if (!(c))                                                                                            \
            abort();                                                                                         \
    } while (0)

#endif
