/* platform.h - what the firmware needs from the board it runs on: a way to print, a way to read
 * a byte, and a way to stop. One implementation is linked into each image:
 *
 *   platform_semihost.c    QEMU (mps2-an505, mps2-an385): output by Arm semihosting, no input,
 *                          the exit status handed to QEMU (the conformance images)
 *   platform_an505_uart.c  QEMU mps2-an505: input and output on the board's UART0 (the CMSDK
 *                          APB UART QEMU connects to its stdio), exit by semihosting; runs the
 *                          serial loop of fw_main.c under QEMU
 *   platform_rp2350.c      a real RP2350 (Pico 2): UART0 on GPIO 0 (TX) / 1 (RX), 115200 8N1,
 *                          programmed register by register (no SDK); stopping halts the core */
#ifndef FW_PLATFORM_H
#define FW_PLATFORM_H

/* Called by the reset handler after .data/.bss are set up, before main. */
void fw_platform_init(void);

/* Print a NUL-terminated string ('\n' ends a line). */
void fw_puts(const char *s);

/* The next input byte, waiting for it; -1 when the platform has no (more) input. */
int fw_getc(void);

/* Stop with status `code` (0: success). */
__attribute__((noreturn)) void fw_exit(int code);

#endif
