"""The torch-free runtime: load a bundle and run it with numpy + onnxruntime only.

Example::

    import edgeae.runtime as rt
    model = rt.load("bundle/", precision="int8-dynamic")
    codes = model.encode(x_uint8)          # (N, code_size) float32
    x_hat = model.decode(codes, raw=True)  # (N, *sample_shape) uint8

This package imports only the standard library, numpy and (lazily, on first load)
onnxruntime, so it works on a device without torch or onnx.
"""

from __future__ import annotations

from edgeae.runtime.bundle import (
    FORMAT_VERSION,
    GraphEntry,
    Manifest,
    TensorSpec,
    file_sha256,
    graph_entry,
    read_manifest,
    verify_bundle,
    write_manifest,
)
from edgeae.runtime.metrics import psnr, reconstruction_summary
from edgeae.runtime.model import EdgeModel, load
from edgeae.runtime.session import available_providers
from edgeae.runtime.summary import describe_bundle

__all__ = [
    "load",
    "EdgeModel",
    "read_manifest",
    "write_manifest",
    "Manifest",
    "GraphEntry",
    "TensorSpec",
    "file_sha256",
    "graph_entry",
    "verify_bundle",
    "FORMAT_VERSION",
    "available_providers",
    "psnr",
    "reconstruction_summary",
    "describe_bundle",
]
