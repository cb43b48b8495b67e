/* cpu_probe.c - print what CPU the Linux target binaries run on under qemu-user, so the
 * Makefile can check that QEMU emulates the core it claims (-cpu cortex-a53 / a72 / a76 /
 * cortex-a7): on aarch64 the MIDR_EL1 part number (Linux and qemu-user let EL0 read it) and the
 * dot-product hwcap; on 32-bit Arm the AT_PLATFORM string and the VFP / NEON / VFPv4 hwcaps. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/auxv.h>

int main(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
#if defined(__aarch64__)
    uint64_t midr;
    __asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
    printf("cpu: aarch64 %s midr 0x%08llx part 0x%03llx asimd %lu asimddp %lu\n", platform ? platform : "?",
           (unsigned long long)midr, (unsigned long long)((midr >> 4) & 0xfff), (hw >> 1) & 1, (hw >> 20) & 1);
#elif defined(__arm__)
    printf("cpu: arm platform %s vfp %lu neon %lu vfpv4 %lu\n", platform ? platform : "?", (hw >> 6) & 1,
           (hw >> 12) & 1, (hw >> 16) & 1);
#else
    printf("cpu: host %s\n", platform ? platform : "?");
#endif
    return 0;
}
