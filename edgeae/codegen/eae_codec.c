/* eae_codec.c - the `.eae` latent codec in dependency-free C99 (see eae_codec.h).
 *
 * The payload coder reproduces constriction 0.5's range coder bit for bit, as used by
 * edgeae/runtime/stream.py:
 *   RangeEncoder<Word = u32, State = u64>, Categorical(freqs / 2**precision, perfect=False)
 *   = a 24-bit fixed-point CDF  cdf[i] = ((C_i * (2**24 - L)) >> precision) + i,
 *   C_i = freqs[0] + ... + freqs[i-1], cdf[L] = 2**24 (every symbol leaks exactly 1/2**24).
 * The arithmetic is integer only; the quantizer is IEEE double as in numpy.
 */
#include "eae_codec.h"

#include <string.h>

#define PREC 24                       /* constriction's categorical precision */
#define ONE_PREC ((uint32_t)1 << PREC)
#define WORD_SHIFT 32                 /* State bits - Word bits */
#define RANGE_MIN ((uint64_t)1 << 32) /* invariant: range >= 2**32 */
#define TRIM_TRIES 7                  /* tail bytes the writer tries to drop (stream.py) */
#define MAX_VARINT 5

/* ------------------------------------------------------------------ CRC-32 (zlib's) */
/* Reflected polynomial 0xEDB88320, four bits at a time: a 64-byte table instead of 1 KiB. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

/* zlib.crc32(data, seed) */
static uint32_t crc32_update(uint32_t seed, const uint8_t *p, size_t n) {
    uint32_t c = ~seed;
    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ crc_nibble[c & 15u];
        c = (c >> 4) ^ crc_nibble[c & 15u];
    }
    return ~c;
}

/* ------------------------------------------------------------------------ varints */
static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Unsigned LEB128 at *pos: at most 5 bytes, minimal (stream.py _get_varint). */
static int get_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < MAX_VARINT; i++) {
        uint8_t b;
        if (*pos + i >= len) return EAE_ERR_TRUNCATED;
        b = d[*pos + i];
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0) return EAE_ERR_VARINT;
            *pos += i + 1;
            *out = v;
            return EAE_OK;
        }
    }
    return EAE_ERR_VARINT;
}

/* ------------------------------------------------------------------- the model */
static uint32_t levels(const eae_codec *c) { return (uint32_t)1 << c->bits; }

/* cdf[i] of dimension d (0 <= i <= L), see the top of this file. */
static uint32_t cdf_at(const eae_codec *c, uint32_t d, uint32_t i) {
    uint32_t L = levels(c);
    uint64_t cum;
    if (i >= L) return ONE_PREC;
    cum = c->cum16 ? c->cum16[(size_t)d * L + i] : c->cum32[(size_t)d * L + i];
    return (uint32_t)((cum * (uint64_t)(ONE_PREC - L)) >> c->precision) + i;
}

/* Largest s with cdf[s] <= quantile (quantile < 2**24, so cdf[L] is never reached). */
static uint32_t cdf_search(const eae_codec *c, uint32_t d, uint32_t quantile, uint32_t *left,
                           uint32_t *prob) {
    uint32_t lo = 0, hi = levels(c), l;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf_at(c, d, mid) <= quantile) lo = mid;
        else hi = mid;
    }
    l = cdf_at(c, d, lo);
    *left = l;
    *prob = cdf_at(c, d, lo + 1) - l;
    return lo;
}

/* ---------------------------------------------------------------- the quantizer */
/* A float32's bits as an integer in the floats' order (-0.0 just below +0.0; the
 * thresholds are never +0.0, since -0.0 and +0.0 always get the same symbol). */
static uint32_t order_key(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* numpy's clip(rint((f64(v) - lo) / step), 0, L-1), round half to even, without libm.
 * That map is monotonic in v, so with the generated thresholds (the least float32 reaching
 * each symbol, found with the Python quantizer itself) it is a binary search of integer
 * comparisons: no double division (software on most MCUs), no FPU needed. */
static uint8_t quantize1(const eae_codec *c, uint32_t d, float v) {
    double step = c->step[d], x, r;
    uint32_t top = levels(c) - 1, f;
    if (c->thresh) {
        const uint32_t *t = c->thresh + (size_t)d * top, key = order_key(v);
        uint32_t lo = 0, hi = top; /* symbol = number of thresholds <= v */
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (key >= t[mid]) lo = mid + 1;
            else hi = mid;
        }
        return (uint8_t)lo;
    }
    if (!(step > 0.0)) return 0; /* constant dimension: a single symbol */
    x = ((double)v - c->lo[d]) / step;
    if (!(x > 0.0)) return 0;
    if (x >= (double)top) return (uint8_t)top;
    f = (uint32_t)x; /* floor: 0 < x < 255 */
    r = x - (double)f; /* exact */
    if (r > 0.5 || (r == 0.5 && (f & 1u))) f++;
    return (uint8_t)f;
}

static int all_finite(const float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        float z = v[i] - v[i]; /* 0 for finite values, NaN for inf and NaN */
        if (z != 0.0f) return 0;
    }
    return 1;
}

int eae_quantize(const eae_codec *codec, const float *codes, size_t n, uint8_t *symbols) {
    size_t i;
    uint32_t d, D;
    if (!codec || (n && (!codes || !symbols))) return EAE_ERR_ARG;
    D = codec->code_size;
    if (!all_finite(codes, n * D)) return EAE_ERR_INPUT;
    for (i = 0; i < n; i++)
        for (d = 0; d < D; d++) symbols[i * D + d] = quantize1(codec, d, codes[i * D + d]);
    return EAE_OK;
}

static float dequantize1(const eae_codec *c, uint32_t d, uint32_t q) {
    double prod = (double)q * c->step[d]; /* two roundings, as numpy: no fused multiply-add */
    return (float)(c->lo[d] + prod);
}

void eae_dequantize(const eae_codec *codec, const uint8_t *symbols, size_t n, float *codes) {
    size_t i;
    uint32_t d, D = codec->code_size;
    for (i = 0; i < n; i++)
        for (d = 0; d < D; d++) codes[i * D + d] = dequantize1(codec, d, symbols[i * D + d]);
}

/* Symbols of the samples being written: given, or quantized on the fly from float codes. */
typedef struct {
    const eae_codec *codec;
    const uint8_t *q;
    const float *codes;
} source;

static uint32_t sym_at(const source *s, size_t i, uint32_t d) {
    size_t k = i * s->codec->code_size + d;
    return s->q ? s->q[k] : quantize1(s->codec, d, s->codes[k]);
}

/* ------------------------------------------------------------ the range encoder */
typedef struct {
    uint64_t lower, range;
    size_t inv_num;      /* words held back in the "inverted" situation (0: normal) */
    uint32_t inv_first;
    uint8_t *out;        /* words go here, little-endian */
    size_t cap, words;   /* capacity in bytes, words emitted */
    int overflow;
} encoder;

static void emit(encoder *e, uint32_t w) {
    size_t at = e->words * 4;
    if (e->overflow || at + 4 > e->cap) {
        e->overflow = 1;
        return;
    }
    e->out[at] = (uint8_t)w;
    e->out[at + 1] = (uint8_t)(w >> 8);
    e->out[at + 2] = (uint8_t)(w >> 16);
    e->out[at + 3] = (uint8_t)(w >> 24);
    e->words++;
}

static void emit_inverted(encoder *e, uint32_t first, uint32_t rest) {
    size_t k;
    emit(e, first);
    for (k = 1; k < e->inv_num; k++) emit(e, rest);
    e->inv_num = 0;
}

static void encode_symbol(encoder *e, uint32_t left, uint32_t prob) {
    uint64_t scale = e->range >> PREC;
    uint64_t new_lower = e->lower + scale * left; /* wraps mod 2**64 */
    e->range = scale * prob;
    if (e->inv_num && new_lower + e->range > new_lower) { /* inverted -> normal */
        if (new_lower < e->lower) emit_inverted(e, e->inv_first + 1u, 0u);
        else emit_inverted(e, e->inv_first, 0xFFFFFFFFu);
    }
    e->lower = new_lower;
    if (e->range < RANGE_MIN) {
        uint32_t w = (uint32_t)(e->lower >> WORD_SHIFT);
        e->range <<= 32;
        e->lower <<= 32;
        if (e->inv_num) e->inv_num++;
        else if (e->lower + e->range > e->lower) emit(e, w);
        else {
            e->inv_num = 1;
            e->inv_first = w;
        }
    }
}

/* constriction's seal: held-back words, the point word and maybe one zero word. */
static void encode_seal(encoder *e) {
    uint64_t point;
    uint32_t point_word;
    if (e->range == UINT64_MAX) return; /* nothing encoded */
    point = e->lower + (RANGE_MIN - 1);
    if (e->inv_num) {
        if (point >= e->lower) emit_inverted(e, e->inv_first, 0xFFFFFFFFu);
        else emit_inverted(e, e->inv_first + 1u, 0u);
    }
    point_word = (uint32_t)(point >> WORD_SHIFT);
    emit(e, point_word);
    if ((uint32_t)((e->lower + e->range) >> WORD_SHIFT) == point_word) emit(e, 0u);
}

/* ------------------------------------------------------------ the range decoder */
typedef struct {
    uint64_t lower, range, point;
    size_t pos;            /* next word to read */
    const uint8_t *buf;    /* payload bytes; zeros past len */
    size_t len;
    int bump;              /* the last byte reads as buf[len-1] + 1 (trim candidates) */
} decoder;

static uint32_t read_word(decoder *dc) {
    uint32_t w = 0;
    size_t k, at = dc->pos * 4;
    if (at + 4 < dc->len || (at + 4 == dc->len && !dc->bump)) { /* inside: the common case */
        dc->pos++;
        return (uint32_t)dc->buf[at] | (uint32_t)dc->buf[at + 1] << 8 |
               (uint32_t)dc->buf[at + 2] << 16 | (uint32_t)dc->buf[at + 3] << 24;
    }
    for (k = 0; k < 4; k++) {
        uint32_t b = 0;
        if (at + k < dc->len) b = dc->buf[at + k] + (uint32_t)(dc->bump && at + k + 1 == dc->len);
        w |= b << (8 * k);
    }
    dc->pos++;
    return w;
}

static void decoder_start(decoder *dc, const uint8_t *buf, size_t len, int bump) {
    uint64_t hi, lo;
    dc->buf = buf;
    dc->len = len;
    dc->bump = bump;
    dc->pos = 0;
    dc->lower = 0;
    dc->range = UINT64_MAX;
    hi = read_word(dc);
    lo = read_word(dc);
    dc->point = (hi << 32) | lo;
}

/* One symbol of dimension d; -1 where constriction reports InvalidData. */
static int32_t decode_symbol(decoder *dc, const eae_codec *c, uint32_t d) {
    uint64_t scale = dc->range >> PREC;
    uint64_t quantile = (dc->point - dc->lower) / scale;
    uint32_t left, prob, s;
    if (quantile >= ONE_PREC) return -1;
    s = cdf_search(c, d, (uint32_t)quantile, &left, &prob);
    dc->lower += scale * left;
    dc->range = scale * prob;
    if (dc->range < RANGE_MIN) {
        dc->lower <<= 32;
        dc->range <<= 32;
        dc->point = (dc->point << 32) | read_word(dc);
    }
    return (int32_t)s;
}

/* ------------------------------------------------------------------- payloads */
/* Trimming. A range decoder gives back every symbol exactly when the number P that the
 * payload spells (words most significant first, zeros past the end) lies in the message's
 * final interval [L, L + R): the intervals are nested, and each symbol's test
 * cdf[s] <= floor((P - lower) / scale) < cdf[s+1] is that inclusion at one step (reading
 * the truncated window of P changes no comparison with these word-aligned bounds).
 * So instead of decoding every trim candidate as stream.py does, compare P with L and U.
 * All three share the `nb` words emitted before the seal; from there, L is the held-back
 * words (first, 0xFFFFFFFF...) and `lower`; U = L + range carries into the held words
 * exactly when the encoder is in the inverted situation. */
typedef struct {
    size_t nb;             /* words emitted before sealing */
    uint64_t lower, range; /* coder state at the seal */
    size_t inv_num;
    uint32_t inv_first;
} interval;

static uint32_t tail_word(const interval *iv, size_t j, int upper) {
    uint64_t low = upper ? iv->lower + iv->range : iv->lower;
    if (j < iv->inv_num) {
        if (!upper) return j ? 0xFFFFFFFFu : iv->inv_first;
        return j ? 0u : iv->inv_first + 1u;
    }
    return j == iv->inv_num ? (uint32_t)(low >> 32) : (uint32_t)low;
}

static uint32_t word_le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 if the candidate (decoder view dc over the full payload's bytes) spells a number in
 * [L, U). Words before `from` are the same in the candidate, L and U; from `from` to nb they
 * are bulk words, the same in L and U (no carry reaches them). */
static int in_interval(const interval *iv, decoder *dc, size_t from) {
    size_t w, end = iv->nb + iv->inv_num + 2;
    int lo_ok = 0, hi_ok = iv->inv_num && iv->inv_first == 0xFFFFFFFFu; /* U past 1.0 */
    dc->pos = from;
    for (w = from; w < end; w++) {
        uint32_t p = read_word(dc), l, u;
        if (w < iv->nb) l = u = word_le(dc->buf + 4 * w);
        else {
            l = tail_word(iv, w - iv->nb, 0);
            u = tail_word(iv, w - iv->nb, 1);
        }
        if (!lo_ok) {
            if (p < l) return 0;
            if (p > l) lo_ok = 1;
        }
        if (!hi_ok) {
            if (p > u) return 0;
            if (p < u) hi_ok = 1;
        }
    }
    return hi_ok; /* P == L is inside, P == U is not */
}

/* Range-code n samples dim-major into out and trim the tail as stream.py _encode does:
 * the first of (k = 7..1: [head with last byte + 1], head = full[:-k]) that decodes to
 * exactly the symbols wins, else the full payload. Returns the status; *size the length. */
static int encode_payload(const source *src, size_t n, uint8_t *out, size_t cap, size_t *size) {
    const eae_codec *c = src->codec;
    encoder e;
    decoder dc;
    interval iv;
    size_t full, from, i, k;
    uint32_t d;

    memset(&e, 0, sizeof e);
    e.range = UINT64_MAX;
    e.out = out;
    e.cap = cap;
    for (d = 0; d < c->code_size && !e.overflow; d++)
        for (i = 0; i < n; i++) {
            uint32_t s = sym_at(src, i, d), left = cdf_at(c, d, s);
            encode_symbol(&e, left, cdf_at(c, d, s + 1) - left);
        }
    iv.nb = e.words;
    iv.lower = e.lower;
    iv.range = e.range;
    iv.inv_num = e.inv_num;
    iv.inv_first = e.inv_first;
    encode_seal(&e);
    if (e.overflow) return EAE_ERR_BUFFER;
    full = e.words * 4;
    from = full >= 8 ? (full - 8) / 4 : 0; /* the first word a candidate can change */
    if (from > iv.nb) from = iv.nb;

    for (k = full < TRIM_TRIES ? full : TRIM_TRIES; k > 0; k--) {
        size_t m = full - k;
        int bump;
        for (bump = 1; bump >= 0; bump--) {
            if (bump && (m == 0 || out[m - 1] == 0xFF)) continue;
            dc.buf = out;
            dc.len = m;
            dc.bump = bump;
            if (in_interval(&iv, &dc, from)) {
                if (bump) out[m - 1]++;
                *size = m;
                return EAE_OK;
            }
        }
    }
    *size = full;
    return EAE_OK;
}

/* ------------------------------------------------------------------- writing */
static size_t header_size(const eae_codec *c) { return 3 + EAE_MODEL_ID_SIZE + varint_size(c->code_size); }

static size_t chunk_samples(const eae_codec *c) {
    size_t per = EAE_MAX_CHUNK_SYMBOLS / c->code_size;
    return per ? per : 1;
}

size_t eae_bound(const eae_codec *codec, size_t n) {
    size_t per = chunk_samples(codec), chunks = (n + per - 1) / per;
    /* a symbol costs at most 24 bits + rounding (< 25); seal and held-back words: 3 more;
     * per chunk: 2 varints, CRC, and 5 bytes of room for the payload length. */
    size_t words = (25 * n * codec->code_size + 31) / 32 + 3 * (chunks ? chunks : 1);
    return header_size(codec) + chunks * (MAX_VARINT * 3 + 4) + 4 * words;
}

static int write_chunks(const eae_writer *w, const source *src, size_t n, uint8_t *out,
                        size_t cap, size_t *written) {
    const eae_codec *c = w->codec;
    size_t per = chunk_samples(c), pos = 0, s;
    for (s = 0; s < n; s += per) {
        size_t part = n - s < per ? n - s : per, vn, vl, plen, stage;
        source sub = *src;
        int rc;
        uint32_t crc;
        if (sub.q) sub.q += s * c->code_size;
        else sub.codes += s * c->code_size;
        vn = varint_size(part);
        stage = pos + vn + MAX_VARINT; /* payload is coded here, then moved after its length */
        if (stage > cap) return EAE_ERR_BUFFER;
        rc = encode_payload(&sub, part, out + stage, cap - stage, &plen);
        if (rc) return rc;
        vl = varint_size(plen);
        if (pos + vn + vl + plen + 4 > cap) return EAE_ERR_BUFFER;
        put_varint(out + pos, part);
        put_varint(out + pos + vn, plen);
        memmove(out + pos + vn + vl, out + stage, plen);
        crc = crc32_update(w->seed, out + pos, vn + vl + plen);
        pos += vn + vl + plen;
        out[pos++] = (uint8_t)crc;
        out[pos++] = (uint8_t)(crc >> 8);
        out[pos++] = (uint8_t)(crc >> 16);
        out[pos++] = (uint8_t)(crc >> 24);
    }
    *written = pos;
    return EAE_OK;
}

int eae_writer_begin(eae_writer *w, const eae_codec *codec, uint8_t *out, size_t cap,
                     size_t *written) {
    size_t hs;
    if (!w || !codec || !out || !written || codec->code_size == 0) return EAE_ERR_ARG;
    hs = header_size(codec);
    if (hs > cap) return EAE_ERR_BUFFER;
    out[0] = 'E';
    out[1] = 'A';
    out[2] = EAE_VERSION;
    memcpy(out + 3, codec->model_id, EAE_MODEL_ID_SIZE);
    put_varint(out + 3 + EAE_MODEL_ID_SIZE, codec->code_size);
    w->codec = codec;
    w->seed = crc32_update(0, out, hs);
    *written = hs;
    return EAE_OK;
}

static int parse_header(const uint8_t *data, size_t len, eae_info *info, size_t *pos);

int eae_writer_resume(eae_writer *w, const eae_codec *codec, const uint8_t *stream, size_t len) {
    eae_info info;
    size_t pos;
    int rc;
    if (!w || !codec || !stream) return EAE_ERR_ARG;
    rc = parse_header(stream, len, &info, &pos);
    if (rc) return rc;
    if (memcmp(info.model_id, codec->model_id, EAE_MODEL_ID_SIZE) != 0) return EAE_ERR_MODEL;
    if (info.code_size != codec->code_size) return EAE_ERR_CODE_SIZE;
    w->codec = codec;
    w->seed = crc32_update(0, stream, pos);
    return EAE_OK;
}

int eae_writer_append(eae_writer *w, const float *codes, size_t n, uint8_t *out, size_t cap,
                      size_t *written) {
    source src;
    if (!w || !w->codec || !written || (n && (!codes || !out))) return EAE_ERR_ARG;
    if (!all_finite(codes, n * w->codec->code_size)) return EAE_ERR_INPUT;
    src.codec = w->codec;
    src.q = NULL;
    src.codes = codes;
    return write_chunks(w, &src, n, out, cap, written);
}

int eae_writer_append_symbols(eae_writer *w, const uint8_t *symbols, size_t n, uint8_t *out,
                              size_t cap, size_t *written) {
    source src;
    size_t k, total;
    if (!w || !w->codec || !written || (n && (!symbols || !out))) return EAE_ERR_ARG;
    total = n * w->codec->code_size;
    for (k = 0; k < total; k++)
        if (symbols[k] >= levels(w->codec)) return EAE_ERR_INPUT;
    src.codec = w->codec;
    src.q = symbols;
    src.codes = NULL;
    return write_chunks(w, &src, n, out, cap, written);
}

int eae_compress(const eae_codec *codec, const float *codes, size_t n, uint8_t *out,
                 size_t cap, size_t *written) {
    eae_writer w;
    size_t hs, body;
    int rc;
    if (!codec || !out || !written || (n && !codes)) return EAE_ERR_ARG;
    if (!all_finite(codes, n * codec->code_size)) return EAE_ERR_INPUT;
    rc = eae_writer_begin(&w, codec, out, cap, &hs);
    if (rc) return rc;
    rc = eae_writer_append(&w, codes, n, out + hs, cap - hs, &body);
    if (rc) return rc;
    *written = hs + body;
    return EAE_OK;
}

/* -------------------------------------------------------------------- reading */
/* stream.py _parse_header, check for check. */
static int parse_header(const uint8_t *data, size_t len, eae_info *info, size_t *pos) {
    uint64_t code_size;
    int rc;
    if (len == 0) return EAE_ERR_EMPTY;
    if (data[0] != 'E' || (len > 1 && data[1] != 'A')) return EAE_ERR_MAGIC;
    if (len < 3) return EAE_ERR_TRUNCATED;
    if (data[2] != EAE_VERSION) return EAE_ERR_VERSION;
    if (len < 3 + EAE_MODEL_ID_SIZE) return EAE_ERR_TRUNCATED;
    *pos = 3 + EAE_MODEL_ID_SIZE;
    rc = get_varint(data, len, pos, &code_size);
    if (rc) return rc;
    if (code_size == 0) return EAE_ERR_CODE_SIZE;
    memset(info, 0, sizeof *info);
    info->version = data[2];
    memcpy(info->model_id, data + 3, EAE_MODEL_ID_SIZE);
    info->code_size = code_size;
    info->header_size = *pos;
    return EAE_OK;
}

/* One chunk's framing, bounds and CRC (stream.py _chunks): payload at *payload. */
static int next_chunk(const uint8_t *data, size_t len, size_t *pos, uint32_t seed,
                      uint64_t code_size, uint64_t *n, const uint8_t **payload, size_t *plen) {
    size_t start = *pos, end;
    uint64_t length, limit = (uint64_t)EAE_MAX_CHUNK_SYMBOLS / code_size;
    uint32_t crc, want;
    int rc = get_varint(data, len, pos, n);
    if (rc) return rc;
    rc = get_varint(data, len, pos, &length);
    if (rc) return rc;
    if (*n == 0 || *n > (limit ? limit : 1)) return EAE_ERR_COUNT;
    if (len < *pos + 4 || length > len - *pos - 4) return EAE_ERR_TRUNCATED;
    end = *pos + (size_t)length;
    crc = crc32_update(seed, data + start, end - start);
    want = (uint32_t)data[end] | (uint32_t)data[end + 1] << 8 | (uint32_t)data[end + 2] << 16 |
           (uint32_t)data[end + 3] << 24;
    if (crc != want) return EAE_ERR_CRC;
    *payload = data + *pos;
    *plen = (size_t)length;
    *pos = end + 4;
    return EAE_OK;
}

int eae_read_header(const uint8_t *data, size_t len, eae_info *info) {
    size_t pos;
    uint32_t seed;
    int rc;
    if (!data || !info) return EAE_ERR_ARG;
    rc = parse_header(data, len, info, &pos);
    if (rc) return rc;
    seed = crc32_update(0, data, pos);
    while (pos < len) {
        uint64_t n;
        const uint8_t *payload;
        size_t plen;
        rc = next_chunk(data, len, &pos, seed, info->code_size, &n, &payload, &plen);
        if (rc) return rc;
        info->samples += n;
        info->chunks++;
        info->payload_bytes += plen;
    }
    return EAE_OK;
}

int eae_decompress(const eae_codec *const *codecs, size_t n_codecs, const uint8_t *data,
                   size_t len, uint8_t *symbols, float *codes, size_t max_samples,
                   size_t *n_samples, const eae_codec **used) {
    const eae_codec *c = NULL;
    eae_info info;
    size_t pos, k, done = 0;
    uint32_t seed, D;
    int rc;
    if (!codecs || !data || !n_samples) return EAE_ERR_ARG;
    *n_samples = 0;
    rc = parse_header(data, len, &info, &pos);
    if (rc) return rc;
    for (k = 0; k < n_codecs && !c; k++)
        if (codecs[k] && memcmp(codecs[k]->model_id, info.model_id, EAE_MODEL_ID_SIZE) == 0)
            c = codecs[k];
    if (!c) return EAE_ERR_MODEL;
    if (used) *used = c;
    D = c->code_size;
    if (info.code_size != D) return EAE_ERR_CODE_SIZE;
    seed = crc32_update(0, data, pos);
    while (pos < len) {
        uint64_t n;
        const uint8_t *payload;
        size_t plen, i;
        uint32_t d;
        decoder dc;
        rc = next_chunk(data, len, &pos, seed, D, &n, &payload, &plen);
        if (rc) return rc;
        /* a sample costs at least 2 * min_bits bits: refuse impossible counts (2x margin) */
        if ((double)n * c->min_bits > (double)(8 * (uint64_t)plen + 128)) return EAE_ERR_COUNT;
        if (n > max_samples - done) return EAE_ERR_BUFFER;
        decoder_start(&dc, payload, plen, 0);
        for (d = 0; d < D; d++)
            for (i = 0; i < n; i++) {
                int32_t s = decode_symbol(&dc, c, d);
                size_t at = (done + i) * D + d;
                if (s < 0) return EAE_ERR_PAYLOAD;
                if (symbols) symbols[at] = (uint8_t)s;
                if (codes) codes[at] = dequantize1(c, d, (uint32_t)s);
            }
        done += (size_t)n;
        *n_samples = done;
    }
    return EAE_OK;
}

const char *eae_strerror(int status) {
    switch (status) {
    case EAE_OK: return "ok";
    case EAE_ERR_ARG: return "invalid argument";
    case EAE_ERR_BUFFER: return "output buffer too small";
    case EAE_ERR_INPUT: return "codes not finite or symbols out of range";
    case EAE_ERR_EMPTY: return "stream is empty";
    case EAE_ERR_MAGIC: return "not an .eae stream (bad magic)";
    case EAE_ERR_VERSION: return "unsupported stream version";
    case EAE_ERR_TRUNCATED: return "stream truncated";
    case EAE_ERR_VARINT: return "malformed varint";
    case EAE_ERR_MODEL: return "stream written for another model";
    case EAE_ERR_CODE_SIZE: return "code size does not match";
    case EAE_ERR_COUNT: return "impossible chunk sample count";
    case EAE_ERR_CRC: return "CRC-32 mismatch";
    case EAE_ERR_PAYLOAD: return "payload rejected by the range decoder";
    default: return "unknown status";
    }
}
