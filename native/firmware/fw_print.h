/* fw_print.h - printing without stdio for the firmware programs (fw_main.c, fw_finetune.c): a
 * line buffer handed to the board's fw_puts (platform.h) line by line. Static functions: each
 * program that includes it gets its own copy and line buffer. */
#ifndef FW_PRINT_H
#define FW_PRINT_H

#include <stdint.h>

#include "platform.h"

static char line[256];
static uint32_t line_len;

static inline void emit(void)
{
    line[line_len] = 0;
    fw_puts(line);
    line_len = 0;
}

/* Appends to the current line; a line longer than the buffer goes out in pieces. */
static inline void put_str(const char *s)
{
    while (*s) {
        if (line_len + 2 >= sizeof line) emit();
        line[line_len++] = *s++;
    }
}

static inline void put_u32(uint32_t v, int hex)
{
    char buf[12];
    int n = 0;
    uint32_t base = hex ? 16u : 10u;
    if (hex) put_str("0x");
    do {
        uint32_t d = v % base;
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n) {
        char c[2] = {buf[--n], 0};
        put_str(c);
    }
}

static inline void put_i32(int32_t v)
{
    if (v < 0) {
        put_str("-");
        put_u32(0u - (uint32_t)v, 0);
    } else {
        put_u32((uint32_t)v, 0);
    }
}

static inline void flush(void)
{
    line[line_len++] = '\n';
    emit();
}

#endif
