/* Terminal QR codes with libqrencode. See qr.h. */
#include <errno.h>
#include <qrencode.h>
#include <string.h>

#include "common/secret.h"
#include "ctl/qr.h"

#define ANSI_ON "\033[97;40m" /* bright white on black */
#define ANSI_OFF "\033[0m"

/* Dark? Outside the matrix is the quiet zone: light. */
static bool dark(const unsigned char *m, int width, int x, int y)
{
    return x >= 0 && y >= 0 && x < width && y < width && (m[(size_t)y * (size_t)width + (size_t)x] & 1);
}

static int put(char *out, size_t outsz, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n >= outsz)
        return -1;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int qr_draw(const unsigned char *m, int width, bool ansi, char *out, size_t outsz)
{
    size_t o = 0;
    if (outsz == 0 || width <= 0)
        return -1;
    out[0] = '\0';
    for (int y = -QR_QUIET; y < width + QR_QUIET; y += 2) {
        if (ansi && put(out, outsz, &o, ANSI_ON) < 0)
            return -1;
        for (int x = -QR_QUIET; x < width + QR_QUIET; x++) {
            bool top = dark(m, width, x, y), bottom = dark(m, width, x, y + 1);
            const char *cell = !top && !bottom ? "\u2588" /* █ both light */
                               : !top          ? "\u2580" /* ▀ light above dark */
                               : !bottom       ? "\u2584" /* ▄ dark above light */
                                               : " ";
            if (put(out, outsz, &o, cell) < 0)
                return -1;
        }
        if ((ansi && put(out, outsz, &o, ANSI_OFF) < 0) || put(out, outsz, &o, "\n") < 0)
            return -1;
    }
    return (int)o;
}

int qr_render(const char *text, bool ansi, char *out, size_t outsz, struct error *err)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return error_set_errno(err, errno, "QR code");
    int n = qr_draw(q->data, q->width, ansi, out, outsz);
    secret_wipe(q->data, (size_t)q->width * (size_t)q->width);
    QRcode_free(q);
    if (n < 0) {
        secret_wipe(out, outsz);
        return error_set(err, "QR code too large to draw");
    }
    return n;
}
