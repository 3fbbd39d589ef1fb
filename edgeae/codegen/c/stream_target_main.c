/* Streaming firmware for Cortex-M (edgeae.codegen.cortexm_stream): a recording of ${n} time
   steps pushed one step at a time (a restart every ${per_case} steps; 0: never), a window every
   ${hop} steps; the header and every chunk printed in hex. Then the same sensor loop timed
   ${repeats} times (SysTick), and run once more on a painted stack. */
#include <stdio.h>
#include <string.h>
#include "${prefix}_stream.h"

${recording}
static float ring[${UP}_STREAM_RING_FLOATS];
static ${prefix}_stream s;
static uint8_t buf[1024];

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void show(const char *what, size_t len)
{
    size_t j;
    printf("%s", what);
    for (j = 0; j < len; ++j) printf(" %02x", buf[j]);
    printf("\n");
}

/* The sensor loop over the whole recording; the number of windows, or -1 on an error. */
static long run(int print)
{
    size_t t, len = 0, in_case = 0;
    long windows = 0;
    if (${prefix}_stream_init(&s, ring, ${UP}_STREAM_RING_FLOATS, ${hop}u, NULL) != EAE_OK) return -1;
    if (${prefix}_stream_header(&s, buf, sizeof buf, &len) != EAE_OK) return -1;
    if (print) show("header", len);
    for (t = 0; t < ${n}u; ++t) {
        (void)${prefix}_stream_push(&s, recording + t * ${UP}_STREAM_CHANNELS, 1);
        if (${prefix}_stream_ready(&s)) {
            if (${prefix}_stream_chunk_${tag}(&s, buf, sizeof buf, &len) != EAE_OK) return -1;
            ++windows;
            if (print) show("chunk", len);
        }
        if (${per_case}u != 0u && ++in_case == ${per_case}u) {
            ${prefix}_stream_restart(&s);
            in_case = 0;
        }
    }
    return windows;
}

int main(void)
{
    int r;
    long windows;
    uint32_t t0, t1;
    uintptr_t sp;
    uint8_t *top, *low, *p;
    if (${prefix}_stream_bound(NULL) > sizeof buf) return 3;
    SYST_RVR = 0xFFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u;
    t0 = SYST_CVR;
    __asm volatile(".syntax unified\n ldr r0, =${calib}\n1: subs r0, #1\n bne 1b" ::: "r0", "cc");
    t1 = SYST_CVR;
    printf("calib %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    windows = run(1);
    printf("windows %ld\n", windows);
    printf("state %lu\n", (unsigned long)sizeof s);
    if (windows < 0) return 4;
    t0 = SYST_CVR;
    for (r = 0; r < ${repeats}; ++r) (void)run(0);
    t1 = SYST_CVR;
    printf("ticks %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    __asm volatile("mov %0, sp" : "=r"(sp));
    top = (uint8_t *)(sp - 64);
    low = top - 16384;
    memset(low, 0xA5, (size_t)(top - low));
    (void)run(0);
    for (p = low; p < top && *p == 0xA5; p++) {
    }
    printf("stack %lu\n", (unsigned long)(top - p + 64));
    return 0;
}
