/* y[n] = b[n] + sum_k x[k] * w[k][n]; w is stored (K, N) so the inner loops run over outputs.
   Inputs are summed in blocks of 32 into t[] (N floats of the arena) and each block is added
   to y[]: the rounding error grows with 32 + K/32 terms instead of K, which keeps long sums
   (K = 1568 in an MNIST conv head) within 1e-5 of ONNX Runtime. Four inputs per pass keep
   t[n] in a register; the additions stay in the order k = 0, 1, 2, ... */
PFX_KERNEL void PFX_dense_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT t,
                              int K, int N)
{
    int k, n, k0;
    for (n = 0; n < N; ++n) y[n] = b[n];
    for (k0 = 0; k0 < K; k0 += 32) {
        const int ke = k0 + 32 < K ? k0 + 32 : K;
        const int k4 = k0 + (ke - k0) / 4 * 4;
        for (n = 0; n < N; ++n) t[n] = 0.0f;
        for (k = k0; k < k4; k += 4) {
            const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
            const float *PFX_RESTRICT w0 = w + (size_t)k * (size_t)N;
            const float *PFX_RESTRICT w1 = w0 + N;
            const float *PFX_RESTRICT w2 = w1 + N;
            const float *PFX_RESTRICT w3 = w2 + N;
            for (n = 0; n < N; ++n) {
                float acc = t[n];
                acc += x0 * w0[n];
                acc += x1 * w1[n];
                acc += x2 * w2[n];
                acc += x3 * w3[n];
                t[n] = acc;
            }
        }
        for (k = k4; k < ke; ++k) {
            const float xk = x[k];
            const float *PFX_RESTRICT wk = w + (size_t)k * (size_t)N;
            for (n = 0; n < N; ++n) t[n] += xk * wk[n];
        }
        for (n = 0; n < N; ++n) y[n] += t[n];
    }
}
