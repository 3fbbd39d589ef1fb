"""edgeae: autoencoders from PyTorch training to edge deployment.

The training side (``edgeae.train``, ``edgeae.export``) needs the ``train`` extra
(torch, onnx); ``edgeae.runtime`` needs only numpy and onnxruntime. Heavy modules load
lazily, so ``import edgeae`` is cheap and works on a runtime-only install::

    from edgeae.train import train      # run folder
    from edgeae.export import export    # bundle
    model = edgeae.load("bundles/mnist")  # torch-free runtime
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from edgeae.runtime import load

        return load
    raise AttributeError(f"module 'edgeae' has no attribute {name!r}")
