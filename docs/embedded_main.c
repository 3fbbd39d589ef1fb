/* Minimal use of generated encoder + decoder (from `edgeae codegen BUNDLE -o DIR --precision int8`).
 * Build:  cc -std=c99 -O2 main.c model_encoder_int8.c model_decoder_int8.c -o demo
 * Run:    ./demo image.raw     (one sample of raw uint8 pixels, MODEL_ENCODER_INT8_X_SIZE bytes) */
#include <stdio.h>

#include "model_decoder_int8.h"
#include "model_encoder_int8.h"

int main(int argc, char **argv)
{
    static uint8_t pixels[MODEL_ENCODER_INT8_X_SIZE];
    static uint8_t x_hat[MODEL_DECODER_INT8_X_HAT_SIZE];
    float code[MODEL_ENCODER_INT8_CODE_SIZE];
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (f == NULL || fread(pixels, 1, sizeof pixels, f) != sizeof pixels) {
        fprintf(stderr, "usage: %s SAMPLE.raw (%d bytes)\n", argv[0], MODEL_ENCODER_INT8_X_SIZE);
        return 1;
    }
    fclose(f);
    model_encoder_int8(pixels, code);   /* uint8 pixels -> latent code */
    model_decoder_int8(code, x_hat);    /* latent code -> uint8 pixels */
    printf("code[0] = %g, %d pixels decoded, RAM for both: %d + %d bytes\n", (double)code[0],
           MODEL_DECODER_INT8_X_HAT_SIZE, MODEL_ENCODER_INT8_ARENA_BYTES, MODEL_DECODER_INT8_ARENA_BYTES);
    return 0;
}
