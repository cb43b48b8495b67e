/* fw_parse.h - reading a decimal number from the serial line without the C library, for the
 * firmware programs' serial loops (fw_main.c, fw_finetune.c). */
#ifndef FW_PARSE_H
#define FW_PARSE_H

#include <stdint.h>

/* A decimal number (optional sign, digits, '.', digits, optional exponent) as float. The
 * digits are gathered in an integer and scaled by an exact power of ten in double, so up to 19
 * significant digits and exponents within +-22 give the correctly rounded double, then one
 * rounding to float: what the host does with np.loadtxt (and, but for rare double-rounding
 * ties, strtof). 0 on success. */
static inline int fw_parse_float(const char *s, float *out)
{
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int neg = 0, digits = 0;
    int32_t exp10 = 0;
    uint64_t mant = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (mant < 1000000000000000000ull) mant = mant * 10u + (uint64_t)(*s - '0');
        else exp10++; /* digits beyond 19 only scale */
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            if (mant < 1000000000000000000ull) {
                mant = mant * 10u + (uint64_t)(*s - '0');
                exp10--;
            }
        }
    }
    if (!digits) return 1;
    if (*s == 'e' || *s == 'E') {
        int eneg = 0, edigits = 0;
        int32_t e = 0;
        s++;
        if (*s == '+' || *s == '-') eneg = *s++ == '-';
        for (; *s >= '0' && *s <= '9'; s++, edigits++)
            if (e < 100000) e = e * 10 + (*s - '0');
        if (!edigits) return 1;
        exp10 += eneg ? -e : e;
    }
    if (*s) return 1;
    double v = (double)mant;
    if (mant != 0) {
        while (exp10 > 22) { /* beyond float's range anyway: saturates when quantized */
            v *= 1e22;
            exp10 -= 22;
        }
        while (exp10 < -22) {
            v /= 1e22;
            exp10 += 22;
        }
        v = exp10 >= 0 ? v * pow10[exp10] : v / pow10[-exp10];
    }
    *out = (float)(neg ? -v : v);
    return 0;
}

#endif
