
int ${prefix}_compress_append_${tag}(eae_writer *w, const ${it} *x, size_t n, uint8_t *out, size_t cap,
    size_t *len)
{
    float code[${code_size}];
${extra}    uint8_t *sym;
    size_t i;
    int rc;
    if (w == NULL || w->codec == NULL || len == NULL || (n != 0u && (x == NULL || out == NULL))) return EAE_ERR_ARG;
    if (w->codec->code_size != ${code_size}u) return EAE_ERR_CODE_SIZE;
    if (n > cap / ${code_size}u) return EAE_ERR_BUFFER;
    sym = out + (cap - n * ${code_size}u); /* symbols wait at the end of the caller's buffer */
    for (i = 0; i < n; ++i) {
        if (${unit}(x + i * ${xn}u, ${args}) != 0) return EAE_ERR_ARG;
        rc = eae_quantize(w->codec, code, 1, sym + i * ${code_size}u);
        if (rc != EAE_OK) return rc;
    }
    return eae_writer_append_symbols(w, sym, n, out, cap - n * ${code_size}u, len);
}

int ${prefix}_compress_${tag}(const ${it} *x, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    eae_writer w;
    size_t hs = 0, body = 0;
    int rc;
    if (out == NULL || len == NULL || (n != 0u && x == NULL)) return EAE_ERR_ARG;
    rc = ${prefix}_compress_begin(&w, NULL, out, cap, &hs);
    if (rc != EAE_OK) return rc;
    rc = ${prefix}_compress_append_${tag}(&w, x, n, out + hs, cap - hs, &body);
    if (rc != EAE_OK) return rc;
    *len = hs + body;
    return EAE_OK;
}
