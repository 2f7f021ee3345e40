/* Strict number parsing for protocol and config input: only ASCII digits,
 * no sign, no whitespace, no trailing bytes, no overflow. "4294967297" is an
 * error, never 1. */
#ifndef POPSD_COMMON_STRNUM_H
#define POPSD_COMMON_STRNUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len) as a decimal u32. Returns 0, or -1 on any noise or overflow. */
int strnum_u32(const char *s, size_t len, uint32_t *out);
/* Parses s[0..len) as a decimal u64. Returns 0, or -1 on any noise or overflow. */
int strnum_u64(const char *s, size_t len, uint64_t *out);
/* Same for NUL-terminated strings and u64. */
int strnum_u32_str(const char *s, uint32_t *out);
int strnum_u64_str(const char *s, uint64_t *out);
/* Parses a duration such as "30", "30s", "10m", "2h", "1d", "250ms" into milliseconds. */
int strnum_duration_ms(const char *s, uint64_t *ms_out);
/* Parses "yes"/"no"/"true"/"false"/"on"/"off"/"1"/"0". */
int strnum_bool(const char *s, bool *out);

#endif
