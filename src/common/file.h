/* Small configuration-side files (key sets, client secrets, CA bundles) read
 * whole, once, at start-up. */
#ifndef POPSD_COMMON_FILE_H
#define POPSD_COMMON_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

/* Reads path, which must be a regular file of 1..max bytes whose mode has none
 * of the bits in forbidden (e.g. S_IWGRP|S_IWOTH; 0 = any mode; the error then
 * says hint). Returns a malloc'd buffer holding the bytes and a NUL, with *len
 * set; or NULL with err. The buffer is wiped before it is freed on failure, so a
 * secret file leaves nothing behind. */
char *file_read_small(const char *path, size_t max, mode_t forbidden, const char *hint, size_t *len,
                      struct error *err);

#endif
