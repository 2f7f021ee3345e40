/* Source-address allow-lists ("10.0.0.0/8 2001:db8::/32 192.0.2.7"), used by
 * the per-user networks policy and by app passwords. */
#ifndef POPSD_AUTH_NETLIST_H
#define POPSD_AUTH_NETLIST_H

#include "common/error.h"

/* networks: CIDRs or single addresses (IPv4, IPv6) separated by spaces, tabs or
 * commas; "" (or only separators) allows every source. An IPv4-mapped IPv6
 * address ("::ffff:192.0.2.7") is the IPv4 address, on either side. addr is a
 * textual IP; one that does not parse is not allowed.
 * Returns 1 allowed, 0 not, -1 if the list is malformed (fail closed). */
int netlist_allow(const char *networks, const char *addr);

/* Validates a list (for popsctl and the passwd-file loader): 0, or -1 with err
 * naming the bad entry. */
int netlist_check(const char *networks, struct error *err);

#endif
