"""Bundle -> dependency-free C99: one header + source per graph and precision, checked at generation.

::

    result = edgeae.codegen.generate_c("bundles/digits", "c/digits", precisions="fp32,int8")
    print(result.table())

Reads bundles only (needs the ``onnx`` package, the ``codegen`` extra; never torch). See
docs/embedded.md for the C API, the int8 arithmetic and the Cortex-M figures.
"""

from __future__ import annotations

from edgeae.codegen.generate import SUPPORTED_PRECISIONS, CodegenResult, GraphReport, generate_c
from edgeae.codegen.graph import UnsupportedOpError

__all__ = ["generate_c", "CodegenResult", "GraphReport", "SUPPORTED_PRECISIONS", "UnsupportedOpError"]
