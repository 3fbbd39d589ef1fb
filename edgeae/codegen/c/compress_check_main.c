/* Host check of ${prefix}_compress_${tag} (edgeae.codegen.compress_c.check_compress): SAMPLES N ->
   stdout: the C codes (N, D) float32, then u32 length + one stream of all N, then u32 length +
   a header and one append per sample. */
#include <stdio.h>
#include <stdlib.h>
#include "${prefix}_compress.h"
#include "${unit}.h"

static void put(const uint8_t *p, size_t n)
{
    unsigned char l[4];
    l[0] = (unsigned char)n; l[1] = (unsigned char)(n >> 8); l[2] = (unsigned char)(n >> 16);
    l[3] = (unsigned char)(n >> 24);
    fwrite(l, 1, 4, stdout);
    fwrite(p, 1, n, stdout);
}

int main(int argc, char **argv)
{
    size_t n, i, len = 0, pos, part;
    ${it} *x;
    uint8_t *buf;
    size_t cap;
    FILE *f;
    eae_writer w;
    float code[${code_size}];
${extra}    if (argc != 3) return 2;
    n = (size_t)strtoul(argv[2], NULL, 10);
    x = (${it} *)malloc(n * ${xn}u * sizeof *x + 1);
    cap = ${prefix}_compress_bound(n) + 64u * n + 64u;
    buf = (uint8_t *)malloc(cap);
    f = fopen(argv[1], "rb");
    if (!x || !buf || !f || fread(x, sizeof *x, n * ${xn}u, f) != n * ${xn}u) return 3;
    fclose(f);
    for (i = 0; i < n; ++i) {
        if (${unit}(x + i * ${xn}u, ${args}) != 0) return 4;
        fwrite(code, sizeof code, 1, stdout);
    }
    if (${prefix}_compress_${tag}(x, n, buf, ${prefix}_compress_bound(n), &len) != EAE_OK) return 5;
    put(buf, len);
    if (${prefix}_compress_begin(&w, NULL, buf, cap, &pos) != EAE_OK) return 7;
    for (i = 0; i < n; ++i) {
        if (${prefix}_compress_append_${tag}(&w, x + i * ${xn}u, 1, buf + pos, cap - pos, &part) != EAE_OK) return 8;
        pos += part;
    }
    put(buf, pos);
    free(x);
    free(buf);
    return 0;
}
