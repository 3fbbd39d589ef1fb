/* Host check of ${prefix}_stream_chunk_${tag} (edgeae.codegen.stream_c.check_stream):
   RECORDING STEPS HOP BLOCK CASE -> stdout: the stream (header, then one chunk per window).
   RECORDING holds STEPS time steps x ${channels} float32, time-major; they are pushed BLOCK steps
   at a time, with a restart every CASE steps (0: one recording). Each chunk is first asked for
   with a 1-byte buffer, which must fail with EAE_ERR_BUFFER and keep the window. */
#include <stdio.h>
#include <stdlib.h>
#include "${prefix}_stream.h"

static float ring[${UP}_STREAM_RING_FLOATS];

int main(int argc, char **argv)
{
    size_t steps, hop, block, per_case, at = 0, k, n, len, done_in_case = 0;
    float *x;
    uint8_t buf[1024];
    FILE *f;
    ${prefix}_stream s;
    if (argc != 6) return 2;
    steps = (size_t)strtoul(argv[2], NULL, 10);
    hop = (size_t)strtoul(argv[3], NULL, 10);
    block = (size_t)strtoul(argv[4], NULL, 10);
    per_case = (size_t)strtoul(argv[5], NULL, 10);
    x = (float *)malloc(steps * ${channels}u * sizeof *x + 1);
    f = fopen(argv[1], "rb");
    if (!x || !f || fread(x, sizeof *x, steps * ${channels}u, f) != steps * ${channels}u || block == 0) return 3;
    fclose(f);
    if (${prefix}_stream_bound(NULL) > sizeof buf) return 4;
    if (${prefix}_stream_init(&s, ring, ${UP}_STREAM_RING_FLOATS, hop, NULL) != EAE_OK) return 5;
    if (${prefix}_stream_chunk_${tag}(&s, buf, sizeof buf, &len) != EAE_ERR_ARG) return 6;
    if (${prefix}_stream_header(&s, buf, sizeof buf, &len) != EAE_OK) return 7;
    fwrite(buf, 1, len, stdout);
    while (at < steps) {
        n = steps - at < block ? steps - at : block;
        if (per_case && n > per_case - done_in_case) n = per_case - done_in_case;
        k = ${prefix}_stream_push(&s, x + at * ${channels}u, n);
        at += k;
        done_in_case += k;
        if (${prefix}_stream_ready(&s)) {
            if (${prefix}_stream_push(&s, x, 1) != 0) return 8;
            if (${prefix}_stream_chunk_${tag}(&s, buf, 1, &len) != EAE_ERR_BUFFER || !${prefix}_stream_ready(&s)) return 9;
            if (${prefix}_stream_chunk_${tag}(&s, buf, sizeof buf, &len) != EAE_OK) return 10;
            fwrite(buf, 1, len, stdout);
        } else if (k != n) {
            return 11;
        }
        if (per_case && done_in_case == per_case) {
            ${prefix}_stream_restart(&s);
            done_in_case = 0;
        }
    }
    free(x);
    return 0;
}
