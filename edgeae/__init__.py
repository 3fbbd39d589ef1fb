"""edgeae: autoencoders from PyTorch training to edge deployment.

The training side (``edgeae.train``, ``edgeae.export``) needs the ``train`` extra
(torch, onnx); ``edgeae.runtime`` needs only numpy and onnxruntime. Heavy modules load
lazily, so ``import edgeae`` is cheap and works on a runtime-only install.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
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


def callable_module(name: str, func: Callable[..., Any]) -> None:
    """Make the module ``name`` callable as ``func``: ``edgeae.train(...)`` and ``edgeae.export(...)``.

    ``edgeae.train`` is a module (``import edgeae.train`` binds it on the package), so the
    short call form needs the module itself to be callable.
    """

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

    sys.modules[name].__class__ = _CallableModule
