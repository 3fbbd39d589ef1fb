"""Export a trained autoencoder to a bundle: split ONNX encoder / decoder + manifest.

::

    run folder -> encoder.onnx (x -> code), decoder.onnx (code -> x_hat)
               -> [int8-dynamic | int8-static | fp16 variants] [.ort] [fixed batch]
               -> checked against PyTorch on held-out samples -> manifest.json

Example::

    from edgeae.export import export

    result = export("runs/mnist", "bundles/mnist", precisions=("fp32", "int8"))
    print(result.table())

The API lives in :mod:`edgeae.export.api`, what is exported in :mod:`edgeae.export.source`,
the steps in :mod:`edgeae.export.pipeline`. Needs the ``train`` extra (torch, onnx); the
bundle runs with ``edgeae.runtime`` alone.
"""

from __future__ import annotations

from edgeae.export.api import ExportResult, export, export_modules, format_table
from edgeae.export.graphs import DEFAULT_OPSET
from edgeae.export.source import Source

__all__ = ["DEFAULT_OPSET", "ExportResult", "Source", "export", "export_modules", "format_table"]
