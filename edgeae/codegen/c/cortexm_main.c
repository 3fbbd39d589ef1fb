/* Test firmware of one generated unit on Cortex-M (edgeae.codegen.cortexm): the unit's ${n} held-out
   samples run and printed as bit patterns, ${repeats} timed calls on sample 0 (SysTick, calibrated
   by a loop of ${calib} x 2 instructions), then one call on ${paint} painted stack bytes. */
#include <stdio.h>
#include <string.h>
#include "${unit}.h"

${arrays}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint32_t ticks(void) { return SYST_CVR; } /* counts down */

int main(void)
{
    int i, j, r;
    uint32_t t0, t1;
    uintptr_t sp;
    volatile uint32_t *p;
    SYST_RVR = 0xFFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u; /* processor clock, no interrupt */
    t0 = ticks();
    __asm volatile(".syntax unified\n ldr r0, =${calib}\n1: subs r0, #1\n bne 1b" ::: "r0", "cc");
    t1 = ticks();
    printf("calib %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    for (i = 0; i < ${n}; ++i) {
        ${load}
        if (${unit}(${args}) != 0) return 3;
        printf("out %d", i);
        ${prints}
        printf("\n");
    }
    ${load0}
    t0 = ticks();
    for (r = 0; r < ${repeats}; ++r) (void)${unit}(${args});
    t1 = ticks();
    printf("ticks %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    /* stack: paint ${paint} bytes below main's sp (a loop in registers, no call), run once,
       find the lowest word the call changed */
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (p = (uint32_t *)(sp - ${paint}u); p < (uint32_t *)sp; ++p) *p = 0xA5A5A5A5u;
    (void)${unit}(${args});
    for (p = (uint32_t *)(sp - ${paint}u); p < (uint32_t *)sp && *p == 0xA5A5A5A5u; ++p) {
    }
    printf("stack %lu\n", (unsigned long)(sp - (uintptr_t)p));
    return 0;
}
