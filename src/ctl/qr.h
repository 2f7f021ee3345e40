/* QR codes on a terminal, for `popsctl totp enroll`: the otpauth URI drawn
 * with Unicode half blocks, two module rows per text line, inside a 4-module
 * quiet zone. Light modules are drawn in the foreground colour (a full block),
 * dark ones left blank: right on the usual light-on-dark terminal; with ansi
 * the colours are forced to white on black so a light theme scans too. */
#ifndef POPSD_CTL_QR_H
#define POPSD_CTL_QR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define QR_QUIET 4 /* modules of light border every reader expects (ISO/IEC 18004) */

/* Encodes text (ECC level M, 8-bit mode) and draws it into out (NUL-terminated).
 * Returns the length drawn, or -1 (err). The matrix is wiped before it is
 * freed: it holds whatever secret text carries. */
int qr_render(const char *text, bool ansi, char *out, size_t outsz, struct error *err);

/* Draws a width x width matrix in libqrencode's layout (row-major, bit 0 of
 * each byte set = dark module). Returns the length drawn, or -1 if out is too small. */
int qr_draw(const unsigned char *modules, int width, bool ansi, char *out, size_t outsz);

#endif
