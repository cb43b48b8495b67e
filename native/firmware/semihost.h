/* semihost.h - the few Arm semihosting calls the firmware needs (no C library I/O, no malloc).
 * On M-profile cores a semihosting call is `bkpt 0xab` with the operation in r0 and its argument
 * in r1; QEMU runs it with -semihosting-config enable=on,target=native. */
#ifndef FW_SEMIHOST_H
#define FW_SEMIHOST_H

#include <stdint.h>

#define SH_SYS_WRITE0 0x04
#define SH_SYS_EXIT 0x18
#define SH_SYS_EXIT_EXTENDED 0x20
#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline int32_t sh_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Print a NUL-terminated string on the host's stdout. */
static inline void sh_puts(const char *s) { (void)sh_call(SH_SYS_WRITE0, s); }

/* Stop QEMU with exit status `code` (SYS_EXIT_EXTENDED carries the code; plain SYS_EXIT on
 * 32-bit Arm can only say "success" or not). */
static inline __attribute__((noreturn)) void sh_exit(int32_t code)
{
    uint32_t block[2] = {SH_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    (void)sh_call(SH_SYS_EXIT_EXTENDED, block);
    /* a host without the extension: report success or failure only */
    (void)sh_call(SH_SYS_EXIT, (const void *)(uintptr_t)(code == 0 ? SH_ADP_STOPPED_APPLICATION_EXIT : 0x20023));
    for (;;) {
    }
}

#endif
