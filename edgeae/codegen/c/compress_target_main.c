/* Compression firmware for Cortex-M (edgeae.codegen.cortexm_codec): ${n} samples, one stream
   each; then ${repeats} timed calls on sample 0 and one call on a painted stack. */
#include <stdio.h>
#include <string.h>
#include "${prefix}_compress.h"

${samples}
static uint8_t buf[1024 + ${n}u * 64u];

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

int main(void)
{
    int i, r;
    size_t len = 0, j;
    uint32_t t0, t1;
    uintptr_t sp;
    uint8_t *top, *low, *p;
    SYST_RVR = 0xFFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u;
    t0 = SYST_CVR;
    __asm volatile(".syntax unified\n ldr r0, =${calib}\n1: subs r0, #1\n bne 1b" ::: "r0", "cc");
    t1 = SYST_CVR;
    printf("calib %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    for (i = 0; i < ${n}; ++i) { /* one stream per sample (batch 1) */
        if (${prefix}_compress_${tag}(samples + (size_t)i * ${xn}u, 1, buf, sizeof buf, &len) != EAE_OK) return 3;
        printf("stream");
        for (j = 0; j < len; ++j) printf(" %02x", buf[j]);
        printf("\n");
    }
    t0 = SYST_CVR;
    for (r = 0; r < ${repeats}; ++r) (void)${prefix}_compress_${tag}(samples, 1, buf, sizeof buf, &len);
    t1 = SYST_CVR;
    printf("ticks %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    __asm volatile("mov %0, sp" : "=r"(sp));
    top = (uint8_t *)(sp - 64);
    low = top - 16384;
    memset(low, 0xA5, (size_t)(top - low));
    (void)${prefix}_compress_${tag}(samples, 1, buf, sizeof buf, &len);
    for (p = low; p < top && *p == 0xA5; p++) {
    }
    printf("stack %lu\n", (unsigned long)(top - p + 64));
    return 0;
}
