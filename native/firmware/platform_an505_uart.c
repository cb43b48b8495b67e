/* platform_an505_uart.c - the firmware's I/O on QEMU's mps2-an505 board through its UART0, a
 * CMSDK APB UART that QEMU connects to its standard input and output (-nographic): the serial
 * loop of fw_main.c runs under QEMU as on a Pico 2, only this driver differs. The exit status
 * still goes to QEMU by semihosting. */
#include <stdint.h>

#include "platform.h"
#include "semihost.h"

#define UART0_BASE 0x40200000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x000u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x004u)) /* bit 0 TX full, 1 RX full */
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x008u))  /* bit 0 TX, 1 RX enable */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x010u))

void fw_platform_init(void)
{
    UART_BAUDDIV = 16u; /* QEMU ignores the rate; 16 is the smallest the UART accepts */
    UART_CTRL = 3u;
}

static void put_byte(char c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = (uint8_t)c;
}

void fw_puts(const char *s)
{
    while (*s) put_byte(*s++);
}

int fw_getc(void)
{
    while (!(UART_STATE & 2u)) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void fw_exit(int code) { sh_exit(code); }
