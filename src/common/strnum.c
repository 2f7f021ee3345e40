#include "common/strnum.h"

#include <string.h>
#include <strings.h>

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int strnum_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, len, UINT32_MAX, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int strnum_u64(const char *s, size_t len, uint64_t *out)
{
    return parse_u64(s, len, UINT64_MAX, out);
}

int strnum_u32_str(const char *s, uint32_t *out)
{
    return strnum_u32(s, strlen(s), out);
}

int strnum_u64_str(const char *s, uint64_t *out)
{
    return parse_u64(s, strlen(s), UINT64_MAX, out);
}

int strnum_duration_ms(const char *s, uint64_t *ms_out)
{
    size_t n = strlen(s), digits = 0;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    const char *unit = s + digits;
    uint64_t mul;
    if (*unit == '\0' || strcmp(unit, "s") == 0)
        mul = 1000;
    else if (strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "m") == 0)
        mul = 60000;
    else if (strcmp(unit, "h") == 0)
        mul = 3600000;
    else if (strcmp(unit, "d") == 0)
        mul = 86400000;
    else
        return -1;
    /* The bound is per unit: only the product must fit. (One bound for all
     * units refused "18446744073657600s", which conf_print() writes for a
     * value parsed from "213503982334d".) */
    uint64_t v;
    if (parse_u64(s, digits, UINT64_MAX / mul, &v) < 0)
        return -1;
    *ms_out = v * mul;
    return 0;
}

int strnum_bool(const char *s, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"}, *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}
