/* eae_codec_tool.c - host command-line harness of the C `.eae` codec (tests, benchmarks).
 *
 * Build with the generated tables of a bundle (prefix `model` by default):
 *   cc -O2 -std=c99 -DEAE_PREFIX=model -I. eae_codec.c model_codec.c eae_codec_tool.c -o eae_codec_tool
 *
 *   eae_codec_tool info
 *   eae_codec_tool compress IDX CODES.f32 OUT.eae N1 [N2 ...]   header + one append per Ni
 *   eae_codec_tool compress-symbols IDX SYMBOLS.u8 OUT.eae N1 [N2 ...]
 *   eae_codec_tool compress-each IDX CODES.f32 N OUT    one stream per sample: u32 LE length + bytes
 *   eae_codec_tool decompress IN.eae OUT.f32 [OUT.u8]
 *   eae_codec_tool verdicts CORPUS OUT.u8    records: u32 LE length + bytes; one line each
 *   eae_codec_tool bench IDX CODES.f32 N SECONDS   one stream per sample (batch 1)
 *   eae_codec_tool caps IDX CODES.f32 N    every output capacity up to eae_bound (checks)
 * Files are raw little-endian arrays (N, D). Exit status 0 on success, 1 on an error.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eae_codec.h"

#ifndef EAE_PREFIX
#define EAE_PREFIX model
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
extern const eae_codec *const CAT(EAE_PREFIX, _codecs)[];
extern const size_t CAT(EAE_PREFIX, _codec_count);
#define CODECS CAT(EAE_PREFIX, _codecs)
#define N_CODECS CAT(EAE_PREFIX, _codec_count)

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

static int write_file(const char *path, const void *data, size_t len, const char *mode) {
    FILE *f = fopen(path, mode);
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f) fclose(f);
    return ok;
}

static int fail(const char *what, int status) {
    fprintf(stderr, "error %d: %s: %s\n", status, what, eae_strerror(status));
    return 1;
}

static const eae_codec *codec_arg(const char *s) {
    long k = strtol(s, NULL, 10);
    if (k < 0 || (size_t)k >= N_CODECS) return NULL;
    return CODECS[k];
}

/* compress[-symbols] IDX IN OUT N1 [N2 ...] */
static int cmd_compress(int argc, char **argv, int symbols) {
    const eae_codec *c = codec_arg(argv[2]);
    size_t len, total = 0, cap, pos = 0, w, start = 0, elem;
    unsigned char *in, *out;
    eae_writer wr;
    int k, rc;
    if (!c) return fail("codec index", EAE_ERR_ARG);
    in = read_file(argv[3], &len);
    if (!in) return fail(argv[3], EAE_ERR_ARG);
    for (k = 5; k < argc; k++) total += (size_t)strtoul(argv[k], NULL, 10);
    elem = symbols ? 1 : sizeof(float);
    if (total * c->code_size * elem > len) return fail("input shorter than the counts", EAE_ERR_ARG);
    cap = eae_bound(c, total) + 64 * (size_t)argc;
    out = malloc(cap);
    rc = eae_writer_begin(&wr, c, out, cap, &pos);
    if (rc) return fail("begin", rc);
    for (k = 5; k < argc; k++) {
        size_t n = (size_t)strtoul(argv[k], NULL, 10);
        if (symbols)
            rc = eae_writer_append_symbols(&wr, in + start * c->code_size, n, out + pos, cap - pos, &w);
        else
            rc = eae_writer_append(&wr, (const float *)(in + start * c->code_size * sizeof(float)), n,
                                   out + pos, cap - pos, &w);
        if (rc) return fail("append", rc);
        pos += w;
        start += n;
    }
    if (!write_file(argv[4], out, pos, "wb")) return fail(argv[4], EAE_ERR_ARG);
    printf("%zu\n", pos);
    free(in);
    free(out);
    return 0;
}

/* compress-each IDX CODES.f32 N OUT: one whole stream per sample, as u32 LE length + bytes */
static int cmd_compress_each(char **argv) {
    const eae_codec *c = codec_arg(argv[2]);
    size_t len, n = (size_t)strtoul(argv[4], NULL, 10), i, w;
    float *codes = (float *)read_file(argv[3], &len);
    unsigned char out[65536 + 4];
    FILE *f = fopen(argv[5], "wb");
    if (!c || !codes || !f || n * c->code_size * sizeof(float) > len) return fail("compress-each args", EAE_ERR_ARG);
    for (i = 0; i < n; i++) {
        int rc = eae_compress(c, codes + i * c->code_size, 1, out + 4, sizeof out - 4, &w);
        if (rc) return fail("compress", rc);
        out[0] = (unsigned char)w;
        out[1] = (unsigned char)(w >> 8);
        out[2] = (unsigned char)(w >> 16);
        out[3] = (unsigned char)(w >> 24);
        fwrite(out, 1, w + 4, f);
    }
    fclose(f);
    free(codes);
    return 0;
}

static int cmd_decompress(int argc, char **argv) {
    size_t len, n = 0;
    unsigned char *data = read_file(argv[2], &len);
    eae_info info;
    const eae_codec *used = NULL;
    float *codes;
    unsigned char *q;
    int rc;
    if (!data) return fail(argv[2], EAE_ERR_ARG);
    rc = eae_read_header(data, len, &info);
    if (rc) return fail("stream", rc);
    codes = malloc((size_t)info.samples * info.code_size * sizeof(float) + 1);
    q = malloc((size_t)info.samples * info.code_size + 1);
    rc = eae_decompress(CODECS, N_CODECS, data, len, q, codes, (size_t)info.samples, &n, &used);
    if (rc) return fail("stream", rc);
    if (!write_file(argv[3], codes, n * used->code_size * sizeof(float), "wb")) return fail(argv[3], EAE_ERR_ARG);
    if (argc > 4 && !write_file(argv[4], q, n * used->code_size, "wb")) return fail(argv[4], EAE_ERR_ARG);
    printf("%zu %u\n", n, (unsigned)used->bits);
    free(data);
    free(codes);
    free(q);
    return 0;
}

/* Decode every record of a corpus with a buffer exactly as long as the record, so the
 * sanitizers see any read past its end. */
static int cmd_verdicts(char **argv) {
    size_t len, pos = 0;
    unsigned char *corpus = read_file(argv[2], &len);
    FILE *sym = fopen(argv[3], "wb");
    if (!corpus || !sym) return fail("corpus", EAE_ERR_ARG);
    while (pos + 4 <= len) {
        size_t rlen = (size_t)corpus[pos] | (size_t)corpus[pos + 1] << 8 |
                      (size_t)corpus[pos + 2] << 16 | (size_t)corpus[pos + 3] << 24;
        unsigned char *rec, *q;
        const eae_codec *used = NULL;
        size_t n = 0, max = 0;
        int rc;
        pos += 4;
        if (rlen > len - pos) return fail("corpus record", EAE_ERR_TRUNCATED);
        rec = malloc(rlen ? rlen : 1);
        memcpy(rec, corpus + pos, rlen);
        pos += rlen;
        /* first the verdict and the count with no output, then the symbols into a buffer
         * of exactly that many samples */
        rc = eae_decompress(CODECS, N_CODECS, rec, rlen, NULL, NULL, (size_t)-1, &max, &used);
        q = malloc(rc ? 1 : max * used->code_size + 1);
        if (!rc) rc = eae_decompress(CODECS, N_CODECS, rec, rlen, q, NULL, max, &n, &used);
        if (rc) printf("err %d\n", rc);
        else {
            printf("ok %zu\n", n);
            fwrite(q, 1, n * used->code_size, sym);
        }
        free(rec);
        free(q);
    }
    fclose(sym);
    free(corpus);
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Batch-1 compress: one whole stream per sample, whole passes over N samples for SECONDS. */
static int cmd_bench(char **argv) {
    const eae_codec *c = codec_arg(argv[2]);
    size_t len, n = (size_t)strtoul(argv[4], NULL, 10), cap, w, bytes = 0, calls = 0, k;
    double seconds = atof(argv[5]), t_end, *lat;
    size_t max_calls = 20000000;
    float *codes = (float *)read_file(argv[3], &len);
    unsigned char out[65536];
    if (!c || !codes || n == 0 || n * c->code_size * sizeof(float) > len) return fail("bench args", EAE_ERR_ARG);
    cap = sizeof out;
    lat = malloc(max_calls * sizeof(double));
    for (k = 0; k < n; k++) /* warm-up */
        if (eae_compress(c, codes + k * c->code_size, 1, out, cap, &w)) return fail("bench", EAE_ERR_ARG);
    t_end = now_s() + seconds;
    while (calls < max_calls) {
        double t0 = now_s();
        int rc = eae_compress(c, codes + (calls % n) * c->code_size, 1, out, cap, &w);
        double t1 = now_s();
        if (rc) return fail("bench", rc);
        lat[calls++] = t1 - t0;
        bytes += w;
        if (t1 > t_end && calls % n == 0) break; /* whole passes: bytes/sample over all N */
    }
    {
        double total = 0;
        for (k = 0; k < calls; k++) total += lat[k];
        qsort(lat, calls, sizeof(double), cmp_double);
        printf("{\"calls\": %zu, \"samples_per_s\": %.1f, \"p50_us\": %.3f, \"p90_us\": %.3f, "
               "\"p99_us\": %.3f, \"bytes_per_sample\": %.4f}\n",
               calls, (double)calls / total, 1e6 * lat[calls / 2], 1e6 * lat[calls * 9 / 10],
               1e6 * lat[calls * 99 / 100], (double)bytes / (double)calls);
    }
    free(lat);
    free(codes);
    return 0;
}

/* Every capacity 0..bound with an exactly sized heap buffer (so a sanitizer sees any write
 * past it): too small -> EAE_ERR_BUFFER, enough -> the same bytes. Prints the least size. */
static int cmd_caps(char **argv) {
    const eae_codec *c = codec_arg(argv[2]);
    size_t len, n = (size_t)strtoul(argv[4], NULL, 10), bound, cap, w, least = 0, ref_len = 0;
    float *codes = (float *)read_file(argv[3], &len);
    unsigned char *ref;
    if (!c || !codes || n * c->code_size * sizeof(float) > len) return fail("caps args", EAE_ERR_ARG);
    bound = eae_bound(c, n);
    ref = malloc(bound);
    if (eae_compress(c, codes, n, ref, bound, &ref_len)) return fail("bound too small", EAE_ERR_BUFFER);
    for (cap = 0; cap <= bound; cap++) {
        unsigned char *out = malloc(cap ? cap : 1);
        int rc = eae_compress(c, codes, n, out, cap, &w);
        if (rc == EAE_OK) {
            if (w != ref_len || memcmp(out, ref, w)) return fail("bytes differ at a larger buffer", EAE_ERR_ARG);
            if (!least) least = cap;
        } else if (rc != EAE_ERR_BUFFER || least) {
            return fail("capacity", rc);
        }
        free(out);
    }
    {   /* a decode buffer one sample short is refused */
        size_t got;
        unsigned char *q = malloc(n * c->code_size);
        int rc = eae_decompress(&c, 1, ref, ref_len, q, NULL, n - 1, &got, NULL);
        if (rc != EAE_ERR_BUFFER) return fail("decode capacity", rc);
        free(q);
    }
    printf("%zu %zu %zu\n", least, ref_len, bound);
    free(ref);
    free(codes);
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "info")) {
        size_t k;
        for (k = 0; k < N_CODECS; k++) {
            int b;
            printf("%zu bits=%u D=%u id=", k, (unsigned)CODECS[k]->bits, (unsigned)CODECS[k]->code_size);
            for (b = 0; b < EAE_MODEL_ID_SIZE; b++) printf("%02x", CODECS[k]->model_id[b]);
            printf("\n");
        }
        return 0;
    }
    if (!strcmp(cmd, "compress") && argc >= 6) return cmd_compress(argc, argv, 0);
    if (!strcmp(cmd, "compress-symbols") && argc >= 6) return cmd_compress(argc, argv, 1);
    if (!strcmp(cmd, "compress-each") && argc == 6) return cmd_compress_each(argv);
    if (!strcmp(cmd, "decompress") && argc >= 4) return cmd_decompress(argc, argv);
    if (!strcmp(cmd, "verdicts") && argc == 4) return cmd_verdicts(argv);
    if (!strcmp(cmd, "bench") && argc == 6) return cmd_bench(argv);
    if (!strcmp(cmd, "caps") && argc == 5) return cmd_caps(argv);
    fprintf(stderr, "usage: see the top of eae_codec_tool.c\n");
    return 2;
}
