"""The int8 graph's 8-bit weights against the float weights they were quantized from.

Rounding to nearest puts each 8-bit weight within half a quantization step of its float
weight (one step at either end of the 8-bit range: the zero point is rounded too). A row
moved, swapped or scaled by a quantizer bug is many steps off: this check refuses it
directly, where the end-to-end comparison with PyTorch sees it only through the sums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.export.validate import CRITERIA

__all__ = ["WEIGHT_SLACK", "weight_steps", "weight_check"]

WEIGHT_SLACK = 2.0 ** -10  # steps: float32 rounding of w / s before the quantizer rounds it


def weight_steps(path: Path, source: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """How far each 8-bit weight of the int8 graph ``path`` lies from the float weight of
    ``source`` (the fp32 graph) it was quantized from, in quantization steps, per element;
    plus notes for 8-bit weights with no float weight to match.

    A weight ``X`` is quantized to ``X_quantized`` with ``X_scale`` and ``X_zero_point``
    (``X_kn``: transposed for MatMul); rounding to nearest puts every weight within half a
    step of ``(q - z) s``, and within one step at either end of the 8-bit range (the zero
    point is rounded too, so the extreme weight may be clipped)."""
    import onnx
    from onnx import numpy_helper

    graph, float_graph = onnx.load(str(path)).graph, onnx.load(str(source)).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    floats = {t.name: numpy_helper.to_array(t) for t in float_graph.initializer}
    out, notes = {}, []
    for name, q in consts.items():
        if q.dtype not in (np.uint8, np.int8) or q.ndim < 2 or not name.endswith("_quantized"):
            continue
        base = name[: -len("_quantized")]
        w = floats.get(base)
        if w is None and base.endswith("_kn") and base[:-3] in floats and floats[base[:-3]].ndim == 2:
            w = floats[base[:-3]].T
        scale, zp = consts.get(f"{base}_scale"), consts.get(f"{base}_zero_point")
        if w is None or scale is None or w.shape != q.shape:
            notes.append(f"{path.name}: 8-bit weight {name} has no float weight to compare with")
            continue
        axis = _channel_axis(graph, name, q.ndim)
        s = _along(scale, q.ndim, axis)
        z = _along(np.zeros(1) if zp is None else zp, q.ndim, axis)
        out[name] = np.abs((q.astype(np.float64) - z) * s - w.astype(np.float64)) / np.abs(s)
    return out, notes


def weight_check(path: Path, source: Path) -> tuple[dict[str, Any] | None, list[str], list[str],
                                                  dict[str, np.ndarray]]:
    """The criterion of :func:`weight_steps`: (its record with the largest share of the
    allowance used, problems, notes, the steps themselves). A weight row moved, swapped or
    scaled is many steps from its float weight."""
    steps, notes = weight_steps(path, source)
    if not steps:
        return None, [], notes, steps
    problems, worst = [], (0.0, "", 0.0)
    for name, st in steps.items():
        q = _eight_bit(path, name)
        lo, hi = (0, 255) if q.dtype == np.uint8 else (-128, 127)
        allowed = np.where((q == lo) | (q == hi), 1.0, 0.5) + WEIGHT_SLACK
        share = float(np.max(st / allowed, initial=0.0))
        over = int(np.count_nonzero(st > allowed))
        if share > worst[0]:
            worst = (share, name, float(st.max(initial=0.0)))
        if over:
            problems.append(f"{path.name}: {over} element(s) of the 8-bit weight {name} lie up to {st.max():.3g} "
                            f"steps from the float weight they were quantized from ({share:.3g} x the half step "
                            "rounding allows)")
    share, name, largest = worst
    record = {"criterion": "weights", "what": CRITERIA["weights"], "graph": path.name, "weight": name,
              "share": round(share, 4), "margin": round(1 / share, 4) if share > 0 else None,
              "largest_steps": round(largest, 4)}
    return record, problems, notes, steps


def _eight_bit(path: Path, name: str) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    return next(numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer if t.name == name)


def _channel_axis(graph: Any, name: str, ndim: int) -> int:
    """The axis a weight's per-channel scale runs along: its DequantizeLinear's ``axis``
    (default 1), ConvInteger's output channels (0), MatMulInteger's columns (last)."""
    for n in graph.node:
        if name in n.input[:1]:
            if n.op_type == "DequantizeLinear":
                return next((a.i for a in n.attribute if a.name == "axis"), 1) % ndim
        if name in n.input[1:2]:
            return 0 if n.op_type == "ConvInteger" else ndim - 1
    return 0


def _along(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    v = np.asarray(v, np.float64)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)
