/* y[n] = clamp(yzp + requant(bias[n] + sum_k x[k] * (w[n][k] - wzp[n]))); the input zero point
   is folded into bias[n] at generation time (bias[n] -= xzp * sum_k (w[n][k] - wzp[n])). */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        ${yt} *PFX_RESTRICT y, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{
    ${sumx}
    ${rows}(x, w, bias, wzp, mult, shift, sx, y, 1u, K, N, yzp, lo, hi);
}
