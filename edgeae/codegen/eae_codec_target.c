/* eae_codec_target.c - the `.eae` codec on a bare Cortex-M under QEMU (mps2-an386 Cortex-M4F;
 * mps2-an385 Cortex-M3, which also runs ARMv6-M Cortex-M0 builds), talking to the host
 * through ARM semihosting.
 *
 * Build (see edgeae.codegen.cortexm_codec.run_codec_target, tests/test_c_codec_target.py):
 *   arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -O2 -std=c99
 *     -masm-syntax-unified
 *     -nostartfiles -T eae_codec_target.ld -DEAE_PREFIX=model -I. eae_codec.c model_codec.c
 *     eae_codec_target.c -lc -lgcc -o target.elf
 *   qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native
 *     -icount shift=0 -kernel target.elf
 *
 * It compresses the test vectors of eae_target_vectors.h (N samples, one stream each: batch 1)
 * and prints every stream in hex, times the N compressions with SysTick (QEMU with
 * -icount shift=0 retires one instruction per virtual nanosecond; a calibration loop of a
 * known instruction count turns ticks into instructions), measures the codec's peak stack by
 * painting it, decodes a stream of all N samples and checks the symbols.
 */
#include <stdint.h>
#include <string.h>

#include "eae_codec.h"
#include "eae_target_vectors.h" /* EAE_TV_N, EAE_TV_CODEC, eae_tv_codes[EAE_TV_N * D] */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
extern const eae_codec *const CAT(EAE_PREFIX, _codecs)[];
#define CODEC (CAT(EAE_PREFIX, _codecs)[EAE_TV_CODEC])

/* ------------------------------------------------------------------ semihosting */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void put(const char *s) { semihost(0x04, s); } /* SYS_WRITE0 */

static void exit_qemu(int ok) {
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20024)); /* SYS_EXIT */
    for (;;) {
    }
}

static void put_u32(const char *label, uint32_t v) {
    char buf[48], num[11];
    int n = 0, k = 0;
    do num[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 10);
    while (*label) buf[k++] = *label++;
    buf[k++] = ' ';
    while (n) buf[k++] = num[--n];
    buf[k++] = '\n';
    buf[k] = 0;
    put(buf);
}

static void put_hex(const char *label, const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char buf[72];
    size_t k = 0;
    while (*label) buf[k++] = *label++;
    buf[k++] = ' ';
    while (n--) {
        buf[k++] = digits[*p >> 4];
        buf[k++] = digits[*p++ & 15];
        if (k >= sizeof buf - 3) {
            buf[k] = 0;
            put(buf);
            k = 0;
        }
    }
    buf[k++] = '\n';
    buf[k] = 0;
    put(buf);
}

/* --------------------------------------------------------------------- SysTick */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void ticks_start(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
}

static uint32_t ticks_now(void) { return 0xFFFFFFu - SYST_CVR; } /* counts down from 2**24-1 */

/* ticks from a to b, modulo the 24-bit counter (intervals stay far below 2**24 ticks) */
static uint32_t ticks_since(uint32_t a) { return (ticks_now() - a) & 0xFFFFFFu; }

/* 2 * iters instructions: subs + bne per iteration. */
static void __attribute__((noinline)) spin(uint32_t iters) {
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(iters) : : "cc");
}

/* ------------------------------------------------------------------------ main */
static uint8_t stream_buf[4096];
static uint8_t symbols[EAE_TV_N * 512];

static uint32_t __attribute__((noinline)) compress_all(size_t *bytes) {
    size_t i, w, total = 0;
    uint32_t t0 = ticks_now(), t;
    for (i = 0; i < EAE_TV_N; i++) {
        if (eae_compress(CODEC, eae_tv_codes + i * CODEC->code_size, 1, stream_buf,
                         sizeof stream_buf, &w))
            exit_qemu(0);
        total += w;
    }
    t = ticks_since(t0);
    *bytes = total;
    return t;
}

int main(void) {
    size_t i, w, n, bytes;
    uint32_t t0, calib, ticks;
    const eae_codec *c = CODEC;
    ticks_start();
    while (SYST_CVR == 0) { /* the first reload */
    }

    t0 = ticks_now();
    spin(1000000u);
    calib = ticks_since(t0);
    put_u32("calib_ticks_2000000_instructions", calib);

    for (i = 0; i < EAE_TV_N; i++) {
        if (eae_compress(c, eae_tv_codes + i * c->code_size, 1, stream_buf, sizeof stream_buf, &w)) {
            put("error compress\n");
            exit_qemu(0);
        }
        put_hex("stream", stream_buf, w);
    }
    ticks = compress_all(&bytes);
    put_u32("samples", EAE_TV_N);
    put_u32("bytes", (uint32_t)bytes);
    put_u32("ticks", ticks);

    { /* peak stack of one compress: paint below the current frame, run, find the mark */
        uintptr_t sp;
        uint8_t *top, *low, *p;
        __asm__ volatile("mov %0, sp" : "=r"(sp));
        top = (uint8_t *)(sp - 64);
        low = top - 8192;
        memset(low, 0xA5, (size_t)(top - low));
        eae_compress(c, eae_tv_codes, 1, stream_buf, sizeof stream_buf, &w);
        for (p = low; p < top && *p == 0xA5; p++) {
        }
        put_u32("stack_bytes", (uint32_t)(top - p + 64));
    }

    if (eae_compress(c, eae_tv_codes, EAE_TV_N, stream_buf, sizeof stream_buf, &w) ||
        eae_decompress(&c, 1, stream_buf, w, symbols, NULL, EAE_TV_N, &n, NULL) || n != EAE_TV_N) {
        put("error decode\n");
        exit_qemu(0);
    }
    {
        static uint8_t want[EAE_TV_N * 512];
        eae_quantize(c, eae_tv_codes, EAE_TV_N, want);
        if (memcmp(want, symbols, EAE_TV_N * c->code_size)) {
            put("error symbols\n");
            exit_qemu(0);
        }
    }
    put_hex("multi", stream_buf, w);
    put("decode ok\n");
    exit_qemu(1);
    return 0;
}

/* --------------------------------------------------------------- startup, vectors */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10, CP11 */
    __asm__ volatile("dsb\n isb");
#endif
    main();
    exit_qemu(0);
}

static void Fault_Handler(void) {
    put("error fault\n");
    exit_qemu(0);
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, Fault_Handler};
