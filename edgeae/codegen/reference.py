"""The declared reference of the int8 C code: the integer semantics of a QDQ graph, in numpy.

For every quantized compute node (see :mod:`edgeae.codegen.lower_int8`)::

    acc = bias_q[c] + sum (xq - zx) * (wq - zw[c])          exact, in int64
    yq  = clamp(zy + round_half_even(acc * mult[c] / 2^shift[c]), lo, hi)

where ``mult[c] / 2^shift[c]`` is ``sx * sw[c] / sy`` rounded to 31 significant bits, and
elementwise chains are the 256-entry tables ONNX Runtime computes for them. The
generated C must equal this bit for bit (0 LSB). The code here is written independently
of the C kernels: matrix products, im2col for Conv, scatter-add for ConvTranspose, the
input zero point subtracted rather than folded into the bias.
"""

from __future__ import annotations

import numpy as np

from edgeae.codegen.program import Program

__all__ = ["run_reference", "requantize"]


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """round_half_even(acc * mult / 2^shift), exactly, in int64 (``mult``/``shift`` broadcast)."""
    p = acc.astype(np.int64) * mult.astype(np.int64)
    u = np.abs(p)
    sh = shift.astype(np.int64)
    q = u >> sh
    rem = u - (q << sh)
    half = np.left_shift(np.int64(1), sh - 1)
    q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    q = np.minimum(q, 65535)
    return np.where(p < 0, -q, q)


def _finish(acc, q, out_dtype):
    v = q["yzp"] + requantize(acc, q["mult_v"], q["shift_v"])
    return np.clip(v, q["lo"], q["hi"]).astype(out_dtype)


def _dense(x, q, out_dtype):
    w = q["w_v"].astype(np.int64) - q["wzp_v"].astype(np.int64)[:, None]  # (N, K)
    acc = (x.reshape(len(x), -1).astype(np.int64) - q["xzp"]) @ w.T + q["bias_q_v"]
    return _finish(acc, q, out_dtype)


def _conv(x, q, out_dtype):
    n = len(x)
    C, H, W, M, OH, OW = (q[k] for k in ("C", "H", "W", "M", "OH", "OW"))
    KH, KW, SH, SW, PT, PL, DH, DW, G = (q[k] for k in ("KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "G"))
    xs = x.reshape(n, C, H, W).astype(np.int64) - q["xzp"]
    pad = np.zeros((n, C, H + 2 * PT + OH * SH + KH * DH, W + 2 * PL + OW * SW + KW * DW), np.int64)
    pad[:, :, PT:PT + H, PL:PL + W] = xs
    w = q["w_v"].astype(np.int64) - q["wzp_v"].astype(np.int64)[:, None, None, None]  # (M, C/G, KH, KW)
    cg, mg = C // G, M // G
    out = np.zeros((n, M, OH, OW), np.int64)
    for g in range(G):
        for ky in range(KH):
            for kx in range(KW):
                patch = pad[:, g * cg:(g + 1) * cg, ky * DH: ky * DH + OH * SH: SH, kx * DW: kx * DW + OW * SW: SW]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch[:, :, :OH, :OW],
                                                         w[g * mg:(g + 1) * mg, :, ky, kx])
    acc = out + q["bias_q_v"].reshape(1, M, 1, 1)
    mult = q["mult_v"].reshape(1, M, 1, 1)
    shift = q["shift_v"].reshape(1, M, 1, 1)
    v = q["yzp"] + requantize(acc, mult, shift)
    return np.clip(v, q["lo"], q["hi"]).astype(out_dtype).reshape(n, -1)


def _convt(x, q, out_dtype):
    n = len(x)
    C, H, W, M, OH, OW = (q[k] for k in ("C", "H", "W", "M", "OH", "OW"))
    KH, KW, SH, SW, PT, PL, DH, DW, G = (q[k] for k in ("KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "G"))
    xs = x.reshape(n, C, H, W).astype(np.int64) - q["xzp"]
    cg, mg = C // G, M // G
    wzp = q["wzp_v"].astype(np.int64).reshape(G, 1, mg, 1, 1)  # output channel g * mg + m: wzp[g * mg + m]
    w = (q["w_v"].astype(np.int64).reshape(G, cg, mg, KH, KW) - wzp).reshape(C, mg, KH, KW)  # (C, M/G, KH, KW)
    big = np.zeros((n, M, (H - 1) * SH + (KH - 1) * DH + 1 + OH, (W - 1) * SW + (KW - 1) * DW + 1 + OW), np.int64)
    for g in range(G):
        for ky in range(KH):
            for kx in range(KW):
                contrib = np.einsum("nchw,cm->nmhw", xs[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, ky, kx])
                big[:, g * mg:(g + 1) * mg, ky * DH: ky * DH + (H - 1) * SH + 1: SH,
                    kx * DW: kx * DW + (W - 1) * SW + 1: SW] += contrib  # scatter-add
    acc = big[:, :, PT:PT + OH, PL:PL + OW] + q["bias_q_v"].reshape(1, M, 1, 1)
    v = q["yzp"] + requantize(acc, q["mult_v"].reshape(1, M, 1, 1), q["shift_v"].reshape(1, M, 1, 1))
    return np.clip(v, q["lo"], q["hi"]).astype(out_dtype).reshape(n, -1)


def run_reference(p: Program, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the int8 program on a batch (one array per graph input); returns (N, n) per output."""
    vals = {t: np.asarray(v).reshape(len(v), -1) for t, v in zip(p.inputs, inputs, strict=True)}
    for s in p.steps:
        src = vals[s.reads[0]]
        out_dtype = np.dtype(p.buffers[s.writes[0]].dtype)
        q = s.params
        if s.kind == "quantize":
            t = src.astype(np.float32) / np.float32(q["scale"])
            t = np.where(np.isnan(t), np.float32(-32768), t)
            t = np.clip(t, -32768, 32768)
            v = np.rint(t).astype(np.int64) + q["zp"]
            y = np.clip(v, q["lo"], q["hi"]).astype(out_dtype)
        elif s.kind == "dequantize":
            y = (src.astype(np.int32) - q["zp"]).astype(np.float32) * np.float32(q["scale"])
        elif s.kind == "lut":
            idx = src.astype(np.int64) + (128 if src.dtype == np.int8 else 0)
            tv = q["table_v"]
            if tv.ndim == 2:  # a table per position, repeating with period len(tv) along the sample
                pos = np.arange(src.shape[1]) % len(tv)
                y = tv[pos[None, :], idx].astype(out_dtype)
            else:
                y = tv.reshape(-1)[idx].astype(out_dtype)
        elif s.kind == "qdense":
            y = _dense(src, q, out_dtype)
        elif s.kind == "qconv":
            y = _conv(src, q, out_dtype)
        elif s.kind == "qconvt":
            y = _convt(src, q, out_dtype)
        elif s.kind == "copy":
            y = src.astype(out_dtype)
        else:
            raise ValueError(f"the int8 reference has no step {s.kind!r}")
        vals[s.writes[0]] = y
    return [vals[t] for t in p.outputs]
