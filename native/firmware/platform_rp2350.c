/* platform_rp2350.c - the firmware's I/O on a real RP2350 (Raspberry Pi Pico 2), bare metal:
 * UART0 on GPIO 0 (TX, Pico 2 pin 1) and GPIO 1 (RX, pin 2), 115200 baud, 8 data bits, no
 * parity, 1 stop bit, clocked from the 12 MHz crystal. No SDK: the registers are written
 * directly (addresses and fields from the RP2350 datasheet, as the Pico SDK's
 * hardware_regs headers name them).
 *
 * What the bootrom leaves: the core runs in Secure state on its boot clock (no PLL is set up
 * here, so the core's speed is whatever the bootrom chose; the UART does not depend on it),
 * XIP flash in its default mode, every peripheral accessible to Secure privileged code
 * (ACCESSCTRL reset values). What this file sets up, in order:
 *   1. XOSC: the 12 MHz crystal oscillator (range 1-15 MHz, start-up delay, enable, stable);
 *   2. clk_peri from XOSC, divider 1: the UART's clock is 12 MHz whatever clk_sys is;
 *   3. IO_BANK0, PADS_BANK0 and UART0 out of reset;
 *   4. UART0: IBRD 6, FBRD 33 (12 MHz / (16 * 115200) = 6.51: 115,107 baud, 0.08% off),
 *      8N1 with FIFOs, TX and RX enabled;
 *   5. GPIO 0 and 1 to function 2 (UART0 TX / RX): pad input enabled, output enabled, RX
 *      pulled up (an idle line is high), pad isolation removed (RP2350 pads start isolated). */
#include <stdint.h>

#include "platform.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
/* RP2350 atomic register aliases: +0x2000 sets the bits written, +0x3000 clears them */
#define REG_SET(addr) REG((addr) + 0x2000u)
#define REG_CLR(addr) REG((addr) + 0x3000u)

#define XOSC_BASE 0x40048000u
#define XOSC_CTRL (XOSC_BASE + 0x00u)
#define XOSC_STATUS (XOSC_BASE + 0x04u)
#define XOSC_STARTUP (XOSC_BASE + 0x0Cu)
#define XOSC_CTRL_RANGE_1_15MHZ 0xAA0u
#define XOSC_CTRL_ENABLE (0xFABu << 12)
#define XOSC_STATUS_STABLE (1u << 31)
/* start-up delay in units of 256 crystal cycles: ~1 ms at 12 MHz (47), times 64 as the Pico
 * SDK does for boards whose crystal is slow to start */
#define XOSC_STARTUP_DELAY (((12000u + 128u) / 256u) * 64u)

#define CLOCKS_BASE 0x40010000u
#define CLK_PERI_CTRL (CLOCKS_BASE + 0x48u)
#define CLK_PERI_DIV (CLOCKS_BASE + 0x4Cu)
#define CLK_PERI_CTRL_ENABLE (1u << 11)
#define CLK_PERI_CTRL_AUXSRC_XOSC (4u << 5)
#define CLK_PERI_DIV_1 (1u << 16)

#define RESETS_BASE 0x40020000u
#define RESETS_RESET (RESETS_BASE + 0x00u)
#define RESETS_RESET_DONE (RESETS_BASE + 0x08u)
#define RESET_IO_BANK0 (1u << 6)
#define RESET_PADS_BANK0 (1u << 9)
#define RESET_UART0 (1u << 26)

#define IO_BANK0_BASE 0x40028000u
#define GPIO_CTRL(n) (IO_BANK0_BASE + 0x04u + 8u * (n))
#define GPIO_FUNC_UART 2u

#define PADS_BANK0_BASE 0x40038000u
#define PAD(n) (PADS_BANK0_BASE + 0x04u + 4u * (n))
#define PAD_ISO (1u << 8)
#define PAD_OD (1u << 7)
#define PAD_IE (1u << 6)
#define PAD_PUE (1u << 3)
#define PAD_PDE (1u << 2)

#define UART0_BASE 0x40070000u
#define UARTDR (UART0_BASE + 0x00u)
#define UARTFR (UART0_BASE + 0x18u)
#define UARTIBRD (UART0_BASE + 0x24u)
#define UARTFBRD (UART0_BASE + 0x28u)
#define UARTLCR_H (UART0_BASE + 0x2Cu)
#define UARTCR (UART0_BASE + 0x30u)
#define UARTFR_TXFF (1u << 5)
#define UARTFR_RXFE (1u << 4)
#define UARTFR_BUSY (1u << 3)
#define UARTDR_ERRORS 0xF00u /* overrun, break, parity, framing */
#define UARTLCR_H_8BIT (3u << 5)
#define UARTLCR_H_FEN (1u << 4)
#define UARTCR_ENABLE ((1u << 0) | (1u << 8) | (1u << 9)) /* UARTEN, TXE, RXE */

#define XOSC_HZ 12000000u
#define BAUD 115200u
/* the PL011 divider in 1/64ths, rounded: 64 * 12e6 / (16 * 115200) = 416.67 -> 417 = 6 + 33/64
 * (the Pico SDK's uart_set_baudrate computes the same) */
#define BAUD_DIV64 ((8u * XOSC_HZ / BAUD + 1u) / 2u)
typedef char fw_baud_is_6_33_64[BAUD_DIV64 == 417u ? 1 : -1]; /* IBRD 6, FBRD 33 */

static void delay_cycles(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; i++) {
    }
}

void fw_platform_init(void)
{
    /* 1. the crystal oscillator */
    REG(XOSC_CTRL) = XOSC_CTRL_RANGE_1_15MHZ;
    REG(XOSC_STARTUP) = XOSC_STARTUP_DELAY;
    REG(XOSC_CTRL) = XOSC_CTRL_RANGE_1_15MHZ | XOSC_CTRL_ENABLE;
    while (!(REG(XOSC_STATUS) & XOSC_STATUS_STABLE)) {
    }

    /* 2. clk_peri = XOSC: stop it, let the stop propagate, switch the source, start it */
    REG_CLR(CLK_PERI_CTRL) = CLK_PERI_CTRL_ENABLE;
    delay_cycles(100);
    REG(CLK_PERI_DIV) = CLK_PERI_DIV_1;
    REG(CLK_PERI_CTRL) = CLK_PERI_CTRL_AUXSRC_XOSC;
    REG_SET(CLK_PERI_CTRL) = CLK_PERI_CTRL_ENABLE;

    /* 3. the GPIO bank, its pads and UART0 out of reset (UART0 through a reset first, so it
     * starts from its reset state whatever ran before) */
    REG_SET(RESETS_RESET) = RESET_UART0;
    REG_CLR(RESETS_RESET) = RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0;
    const uint32_t want = RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0;
    while ((REG(RESETS_RESET_DONE) & want) != want) {
    }

    /* 4. UART0: baud rate (latched by the LCR_H write), 8N1 with FIFOs, then enable */
    REG(UARTIBRD) = BAUD_DIV64 >> 6;
    REG(UARTFBRD) = BAUD_DIV64 & 63u;
    REG(UARTLCR_H) = UARTLCR_H_8BIT | UARTLCR_H_FEN;
    REG(UARTCR) = UARTCR_ENABLE;

    /* 5. GPIO 0 = UART0 TX, GPIO 1 = UART0 RX */
    uint32_t tx = REG(PAD(0));
    REG(PAD(0)) = (tx & ~PAD_OD) | PAD_IE;
    uint32_t rx = REG(PAD(1));
    REG(PAD(1)) = (rx & ~(PAD_OD | PAD_PDE)) | PAD_IE | PAD_PUE;
    REG(GPIO_CTRL(0)) = GPIO_FUNC_UART;
    REG(GPIO_CTRL(1)) = GPIO_FUNC_UART;
    REG_CLR(PAD(0)) = PAD_ISO;
    REG_CLR(PAD(1)) = PAD_ISO;
}

static void put_byte(char c)
{
    while (REG(UARTFR) & UARTFR_TXFF) {
    }
    REG(UARTDR) = (uint8_t)c;
}

void fw_puts(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n') put_byte('\r'); /* serial terminals want CR LF */
        put_byte(*s);
    }
}

int fw_getc(void)
{
    for (;;) {
        while (REG(UARTFR) & UARTFR_RXFE) {
        }
        uint32_t v = REG(UARTDR);
        if (!(v & UARTDR_ERRORS)) return (int)(v & 0xFFu);
        /* a framing error, break or overrun (e.g. a cable plugged in): drop the byte */
    }
}

void fw_exit(int code)
{
    fw_puts(code == 0 ? "# stopped (status 0); reset the board to start again\n"
                      : "# stopped with an error; reset the board to start again\n");
    while (REG(UARTFR) & UARTFR_BUSY) {
    }
    for (;;) __asm__ volatile("wfi");
}
