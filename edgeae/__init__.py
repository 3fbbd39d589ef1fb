"""edgeae: autoencoders from PyTorch training to edge deployment.

The training side (``edgeae.train``, ``edgeae.export``) needs the ``train`` extra
(torch, onnx); ``edgeae.runtime`` needs only numpy and onnxruntime. Heavy modules load
lazily, so ``import edgeae`` is cheap and works on a runtime-only install.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "train", "export", "load"]


def __getattr__(name: str) -> Any:
    if name in ("train", "export"):
        # Both are modules that can be called like their main function: edgeae.train(...).
        return import_module(f"edgeae.{name}")
    if name == "load":
        return import_module("edgeae.runtime").load
    raise AttributeError(f"module 'edgeae' has no attribute {name!r}")
