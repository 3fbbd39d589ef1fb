
int ${prefix}_stream_chunk_${tag}(${prefix}_stream *s, uint8_t *out, size_t cap, size_t *len)
{
    float code[${code_size}];
${extra}    uint8_t sym[${code_size}];
    int rc;
    if (s == NULL || out == NULL || len == NULL || !s->open || !s->ready) return EAE_ERR_ARG;
    ${prefix}_stream_unroll(s);
    if (${unit}(s->ring, ${args}) != 0) return EAE_ERR_ARG;
    rc = eae_quantize(s->w.codec, code, 1, sym);
    if (rc != EAE_OK) return rc;
    rc = eae_writer_append_symbols(&s->w, sym, 1, out, cap, len);
    if (rc != EAE_OK) return rc;
    s->ready = 0u;
    ++s->windows;
    return EAE_OK;
}
