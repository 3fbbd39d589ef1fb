/* eae_codec.h - the edgeae `.eae` latent codec in dependency-free C99.
 *
 * What it does
 *   Float codes (N, D) -> per-dimension uniform quantizer -> range coder with integer
 *   frequency tables -> `.eae` stream (header, chunks, chained CRC-32), byte for byte what
 *   `edgeae compress` (Python) writes for the same codes; and the reverse, a hardened reader
 *   that refuses every damaged stream `edgeae decompress` refuses. docs/FORMAT.md is the
 *   format, docs/native.md the guide.
 *
 * Build
 *   Compile eae_codec.c with the generated tables (`<prefix>_codec.c`, from
 *   `edgeae.codegen.codec.write_codec`). No libc beyond <string.h> memmove/memcpy, no
 *   malloc, no libm, no globals written. Use IEEE double arithmetic as C99 defines it:
 *   no -ffast-math, and no fused multiply-add contraction (-ffp-contract=off; gcc's
 *   -std=c99 already implies it). Doubles on a single-precision FPU are emulated, exactly.
 *
 * Memory
 *   The caller owns every buffer. Writers put bytes into `out[0..cap)` and report the number
 *   written; a buffer that is too small gives EAE_ERR_BUFFER and nothing is written past
 *   `cap`. A writer needs a few spare bytes while it works: eae_bound() is always enough.
 *
 * Cost
 *   Code: about 6 KB of Thumb-2. Tables per bit depth: D doubles lo + D doubles step +
 *   D x L cumulative frequencies (uint16) + optional D x (L-1) uint32 quantizer thresholds
 *   (without them the quantizer divides in double precision: ~4x slower on MCUs). No static
 *   RAM; under 500 bytes of stack on Cortex-M (docs/native.md has measured numbers).
 *
 * Limits
 *   bits 2..8 (symbols fit a uint8_t), precision bits+1..24; a chunk holds at most
 *   max(1, 2**18 / D) samples (longer inputs are split, as in Python).
 */
#ifndef EAE_CODEC_H
#define EAE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EAE_VERSION 1               /* container version byte */
#define EAE_MODEL_ID_SIZE 8         /* bytes of the model id in the header */
#define EAE_MAX_CHUNK_SYMBOLS (1u << 18) /* a chunk holds at most max(1, 2**18 / D) samples */

/* Status codes: 0 is success, every failure is negative. */
enum eae_status {
    EAE_OK = 0,
    EAE_ERR_ARG = -1,       /* a NULL pointer or an impossible argument */
    EAE_ERR_BUFFER = -2,    /* the output buffer is too small (nothing written past cap) */
    EAE_ERR_INPUT = -3,     /* codes not finite, or symbols outside 0..2**bits-1 */
    EAE_ERR_EMPTY = -4,     /* the stream has 0 bytes */
    EAE_ERR_MAGIC = -5,     /* not an .eae stream */
    EAE_ERR_VERSION = -6,   /* another container version */
    EAE_ERR_TRUNCATED = -7, /* header, varint, payload or CRC cut short */
    EAE_ERR_VARINT = -8,    /* an overlong or non-minimal varint */
    EAE_ERR_MODEL = -9,     /* written for another model id */
    EAE_ERR_CODE_SIZE = -10, /* code size 0 or not the codec's */
    EAE_ERR_COUNT = -11,    /* a chunk's sample count is 0, too large, or cannot fit its payload */
    EAE_ERR_CRC = -12,      /* CRC-32 mismatch */
    EAE_ERR_PAYLOAD = -13   /* the range decoder rejects a payload */
};

/* One codec: quantizer ranges and entropy tables of one bit depth of one bundle.
 * Generated as `static const` data by edgeae.codegen.codec; never written at run time. */
typedef struct eae_codec {
    uint32_t code_size;        /* D: symbols per sample */
    uint8_t bits;              /* L = 2**bits quantization levels */
    uint8_t precision;         /* each dimension's frequencies sum to 2**precision */
    uint8_t model_id[EAE_MODEL_ID_SIZE]; /* header id of (decoder graph, these tables) */
    const double *lo;          /* (D) value of symbol 0 */
    const double *step;        /* (D) (hi - lo) / (L - 1) in double; 0 for a constant dim */
    const uint16_t *cum16;     /* (D, L) cumulative frequencies (precision <= 16), or NULL */
    const uint32_t *cum32;     /* (D, L) the same as uint32 (precision > 16), or NULL */
    double min_bits;           /* half the fewest bits any sample costs (reader's bound) */
    const uint32_t *thresh;    /* (D, L-1) or NULL: order key of the least float32 code with
                                  symbol >= k, at [d][k-1] (key: see eae_codec.c) */
} eae_codec;

/* Header facts and totals of a stream, from eae_read_header. */
typedef struct eae_info {
    uint8_t version;
    uint8_t model_id[EAE_MODEL_ID_SIZE];
    uint64_t code_size;        /* as the header says (a reader compares it with the codec's) */
    uint64_t samples;          /* sum of the chunk counts */
    uint64_t chunks;
    size_t header_size;        /* bytes before the first chunk */
    size_t payload_bytes;      /* coded bytes, framing excluded */
} eae_info;

/* An open stream being appended to: the codec and the CRC-32 of the stream's header. */
typedef struct eae_writer {
    const eae_codec *codec;
    uint32_t seed;
} eae_writer;

/* Bytes that always suffice for a stream of n samples (header, chunks, working room). */
size_t eae_bound(const eae_codec *codec, size_t n);

/* Quantize float codes (n, D) to symbols (n, D); EAE_ERR_INPUT on NaN or inf. */
int eae_quantize(const eae_codec *codec, const float *codes, size_t n, uint8_t *symbols);

/* Symbols (n, D) -> float codes at the bin centres lo + q * step. */
void eae_dequantize(const eae_codec *codec, const uint8_t *symbols, size_t n, float *codes);

/* A whole stream (header + chunks) of n float codes (n, D) in one call. */
int eae_compress(const eae_codec *codec, const float *codes, size_t n,
                 uint8_t *out, size_t cap, size_t *written);

/* Start a stream: writes the header into out and prepares w for appends. */
int eae_writer_begin(eae_writer *w, const eae_codec *codec, uint8_t *out, size_t cap,
                     size_t *written);

/* Continue an existing stream: reads (only) its header, which must be this codec's. */
int eae_writer_resume(eae_writer *w, const eae_codec *codec, const uint8_t *stream, size_t len);

/* Append n samples given as float codes (n, D) or as symbols (n, D): writes the chunk(s)
 * that Python's append_codes writes; out receives only the new bytes. */
int eae_writer_append(eae_writer *w, const float *codes, size_t n, uint8_t *out, size_t cap,
                      size_t *written);
int eae_writer_append_symbols(eae_writer *w, const uint8_t *symbols, size_t n, uint8_t *out,
                              size_t cap, size_t *written);

/* Check a stream's header, framing and every CRC without a codec (Python read_header). */
int eae_read_header(const uint8_t *data, size_t len, eae_info *info);

/* Decode a stream with whichever of codecs[0..n_codecs) its model id names.
 * symbols (max_samples, D) and/or codes (max_samples, D) may be NULL; *n_samples gets the
 * count, *used (if not NULL) the codec. EAE_ERR_BUFFER if the stream holds more samples. */
int eae_decompress(const eae_codec *const *codecs, size_t n_codecs, const uint8_t *data,
                   size_t len, uint8_t *symbols, float *codes, size_t max_samples,
                   size_t *n_samples, const eae_codec **used);

/* A short English description of a status code. */
const char *eae_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* EAE_CODEC_H */
