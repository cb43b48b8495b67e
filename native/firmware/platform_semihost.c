/* platform_semihost.c - the firmware's I/O under QEMU through Arm semihosting (bkpt 0xab):
 * output with SYS_WRITE0, the exit status with SYS_EXIT_EXTENDED. No input. On a real board
 * without a debugger a semihosting call faults, so no board image links this file. */
#include "platform.h"
#include "semihost.h"

void fw_platform_init(void) {}

void fw_puts(const char *s) { sh_puts(s); }

int fw_getc(void) { return -1; }

void fw_exit(int code) { sh_exit(code); }
