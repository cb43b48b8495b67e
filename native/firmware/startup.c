/* startup.c - vector table and reset handler of the Cortex-M firmware (M33 and M0+).
 *
 * The linker script (sections.ld) places .vectors first in flash. Reset copies .data from
 * flash, zeroes .bss, enables the FPU when the build uses it, paints the stack (so main can
 * measure its high-water mark), sets up the board's I/O (fw_platform_init, platform.h) and
 * hands main's return value to fw_exit: QEMU's exit status through semihosting, or a halt on
 * a real RP2350. A fault prints what it was and stops with status 3.
 *
 * With -DFW_UNIT_TESTS the same start-up runs the C unit tests (native/tests) on the M33: that
 * image is a test harness, not firmware, so it links newlib's stdio and heap over semihosting
 * (--specs=rdimon.specs), and initialise_monitor_handles() opens stdout before main. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(FW_UNIT_TESTS)
#include <errno.h>
#include <stdio.h>
void initialise_monitor_handles(void);

/* newlib's heap for the unit tests: [_heap_start, _heap_end) from mps2_an505_unit.ld */
extern char _heap_start[], _heap_end[];
void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    static char *brk = _heap_start;
    if (incr > _heap_end - brk || incr < _heap_start - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *prev = brk;
    brk += incr;
    return prev;
}
#endif

#include "platform.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _sstack[], _estack[];
int main(void);

#define STACK_PAINT 0x5AA5C33Cu

/* Bytes of stack ever used: the first word from the bottom that lost its paint. */
uint32_t fw_stack_used(void)
{
    const uint32_t *p = _sstack;
    while (p < _estack && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)_estack - (uintptr_t)p);
}

static void paint_stack(void)
{
    /* paint from the bottom up to a safe distance below this frame */
    volatile uint32_t here = 0;
    uint32_t *top = (uint32_t *)(((uintptr_t)&here - 256u) & ~(uintptr_t)3u);
    for (uint32_t *p = _sstack; p < top; p++) *p = STACK_PAINT;
}

__attribute__((noreturn)) void Reset_Handler(void)
{
    uint32_t *src = _sidata, *dst = _sdata;
    while (dst < _edata) *dst++ = *src++;
    for (dst = _sbss; dst < _ebss; dst++) *dst = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU) before any floating-point instruction */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    paint_stack();
    fw_platform_init();
#if defined(FW_UNIT_TESTS)
    initialise_monitor_handles();
    int rc = main();
    fflush(stdout);
    fw_exit(rc);
#else
    fw_exit(main());
#endif
}

static __attribute__((noreturn)) void fault(const char *what)
{
    fw_puts("FAIL: ");
    fw_puts(what);
    fw_puts("\n");
    fw_exit(3);
}

void NMI_Handler(void) { fault("NMI"); }
void HardFault_Handler(void) { fault("HardFault"); }
void MemManage_Handler(void) { fault("MemManage fault"); }
void BusFault_Handler(void) { fault("BusFault"); }
void UsageFault_Handler(void) { fault("UsageFault"); }
void SecureFault_Handler(void) { fault("SecureFault"); }
void Default_Handler(void) { fault("unexpected interrupt"); }

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) const vector fw_vectors[16] = {
    (vector)(uintptr_t)_estack, /* initial stack pointer */
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,   /* reserved on ARMv6-M */
    BusFault_Handler,    /* reserved on ARMv6-M */
    UsageFault_Handler,  /* reserved on ARMv6-M */
    SecureFault_Handler, /* ARMv8-M Mainline only */
    0,
    0,
    0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};

/* newlib's libc.a objects may reference these from init/fini code paths */
void _init(void) {}
void _fini(void) {}
