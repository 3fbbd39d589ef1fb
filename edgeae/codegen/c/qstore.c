/* y[n][at[j]] = clamp(yzp + requant(acc[r][j]${corrdoc} + bias[n], mult[n], shift[n])) for the
   R rows n = n0 + r of a block of 8 pixels (np of them real); plane = the elements of one channel. */
static void ${name}(const int32_t *PFX_RESTRICT acc, int R, int n0, const int32_t *PFX_RESTRICT bias,
        const int32_t *PFX_RESTRICT wzp, const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        const int32_t *PFX_RESTRICT sx, ${yt} *PFX_RESTRICT y, size_t plane, const int *PFX_RESTRICT at, int np,
        int32_t yzp, int32_t lo, int32_t hi)
{
    int r, j;
    (void)wzp;
    (void)sx;
    for (r = 0; r < R; ++r) {
        const int n = n0 + r;
        ${yt} *PFX_RESTRICT yn = y + (size_t)n * plane;
        for (j = 0; j < np; ++j) {
            const int32_t v = yzp + PFX_requant(acc[8 * r + j]${corr} + bias[n], mult[n], shift[n]);
            yn[at[j]] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
        }
    }
}
