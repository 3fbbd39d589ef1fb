"""Weight layouts of the convolution kernels (``c/conv_f32.c``, ``c/convt_f32.c``, ``c/qconvt.c``).

A transposed convolution runs as a gather, by sub-pixel phase: output (oy, ox) receives input
(iy, ix) through tap (ky, kx) when ``iy * SH = oy + PT - ky * DH`` (and likewise in x), so the
taps that reach an output depend only on its phase ``(oy mod SH, ox mod SW)``: for phase
``ry`` the rows ``ky`` with ``(ry + PT - ky * DH) mod SH == 0``. Each phase is then an ordinary
stride-1 convolution over the input with that subset of taps, and every tap belongs to
exactly one phase. The kernels read each phase's weights as one contiguous matrix; this module
orders them so (the C computes the same tap lists with the same rule).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["COLUMN_PIXELS", "conv_column", "phase_taps", "convt_phase_matrices"]

COLUMN_PIXELS = 8  # output pixels per block: a column holds taps x 8 inputs (c/conv_tile_f32.c)


def phase_taps(k: int, s: int, pad: int, d: int, r: int) -> list[int]:
    """Kernel taps (0..k-1) of phase ``r`` along one axis: those with ``(r + pad - tap * d) mod s == 0``."""
    return [t for t in range(k) if (r + pad - t * d) % s == 0]


def convt_phase_matrices(w: np.ndarray, q: dict) -> Iterator[np.ndarray]:
    """The weight (C, M/G, KH, KW) of a transposed convolution as one (M/G, taps) matrix per group
    and phase, in the order the kernels walk them: groups, then phases ``ry`` (rows), ``rx``;
    taps ordered input channel, ky, kx within the phase's tap lists."""
    g, kh, kw = q["G"], q["KH"], q["KW"]
    cg = w.shape[0] // g
    for gi in range(g):
        wg = w[gi * cg:(gi + 1) * cg]  # (C/G, M/G, KH, KW)
        for ry in range(q["SH"]):
            kys = phase_taps(kh, q["SH"], q["PT"], q["DH"], ry)
            for rx in range(q["SW"]):
                kxs = phase_taps(kw, q["SW"], q["PL"], q["DW"], rx)
                sub = wg[:, :, kys][:, :, :, kxs]  # (C/G, M/G, |kys|, |kxs|)
                yield np.ascontiguousarray(sub.transpose(1, 0, 2, 3).reshape(sub.shape[1], -1))


def conv_column(q: dict, transposed: bool) -> int:
    """Elements of the int8 kernels' int16 column: 8 pixels x the taps of one pixel (a transposed
    convolution's: of its largest phase), rounded up to a multiple of 16 (c/qtile.c: the Helium
    tiles take 16 taps at a time; the other paths use the taps rounded up to 4)."""
    cg = q["C"] // q["G"]
    if transposed:
        taps = max(len(phase_taps(q["KH"], q["SH"], q["PT"], q["DH"], ry)) for ry in range(q["SH"])) * \
            max(len(phase_taps(q["KW"], q["SW"], q["PL"], q["DW"], rx)) for rx in range(q["SW"])) * cg
    else:
        taps = cg * q["KH"] * q["KW"]
    return COLUMN_PIXELS * ((taps + 15) // 16 * 16)
