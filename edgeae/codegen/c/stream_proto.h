/* Encode the ready window with ${unit} (${tag}) and write its chunk into out[0..cap). */
int ${prefix}_stream_chunk_${tag}(${prefix}_stream *s, uint8_t *out, size_t cap, size_t *len);
