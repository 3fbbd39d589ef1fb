"""C99 kernels, read from the templates in ``edgeae/codegen/c/`` (see :mod:`edgeae.codegen.templates`).

Every kernel is ``static`` (one translation unit per graph, nothing leaks into the link),
loops only, no allocation, no recursion. Sizes are arguments so one kernel text serves all
layers (``PFX_KERNEL``, ``static`` unless the user defines it otherwise). ``PFX_RESTRICT``
pointers let the compiler vectorize the output loops without run-time alias checks.
The fp32 kernels are filled in as they are; the int8 ones (:mod:`edgeae.codegen.kernels_int8`)
take their C types from the layer.
"""

from __future__ import annotations

from edgeae.codegen.kernels_int8 import (
    DSP,
    INT8_REQUANT,
    conv_helpers,
    qconv,
    qconvt,
    qdense,
    qrows,
)
from edgeae.codegen.templates import read

__all__ = ["DSP", "FP32", "INT8_REQUANT", "conv_helpers", "qconv", "qconvt", "qdense", "qrows"]

# kernel -> its C text (a leading blank line separates kernels in the unit)
FP32 = {name: "\n" + read(f"{name}.c") for name in ("dense_f32", "conv_tile_f32", "conv_f32", "convt_f32")}
