/* Samples x (${xn} ${it} each, ${units}) -> the ${tag} encoder ->
 * a whole stream of n samples with the default codec. */
int ${prefix}_compress_${tag}(const ${it} *x, size_t n, uint8_t *out, size_t cap, size_t *len);
/* n more samples -> the chunks to append to the stream w was begun (or resumed) on. */
int ${prefix}_compress_append_${tag}(eae_writer *w, const ${it} *x, size_t n, uint8_t *out, size_t cap,
    size_t *len);
