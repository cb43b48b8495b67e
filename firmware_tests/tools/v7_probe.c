/* v7_probe.c - negative control for the armv6 target: `movw` exists from ARMv6T2/ARMv7 on, not
 * on the ARM1176 (ARMv6KZ). Built for ARMv7-A, this program must die with SIGILL under
 * `qemu-arm -cpu arm1176` and exit 0 under `-cpu cortex-a7`, which shows that QEMU enforces the
 * ARMv6 instruction set on the armv6 target's binaries. */
int main(void)
{
    unsigned r;
    __asm__ volatile("movw %0, #0x1234" : "=r"(r));
    return r == 0x1234u ? 0 : 1;
}
