"""The exception hierarchy. Standard library only, so the runtime can raise these too.

Every message names the bad value, what is allowed, and the fix. The CLI turns any
:class:`EdgeAEError` into ``Error: <message>`` and a non-zero exit.
"""

from __future__ import annotations

__all__ = [
    "EdgeAEError",
    "ConfigError",
    "DataError",
    "TrainingError",
    "CheckpointError",
    "ExportError",
    "ValidationError",
    "BundleError",
    "InputError",
    "ProviderError",
    "StreamError",
]


class EdgeAEError(Exception):
    """Base class of every error edgeae raises on purpose."""


class ConfigError(EdgeAEError, ValueError):
    """An option or configuration value is not allowed."""


class DataError(EdgeAEError, ValueError):
    """A dataset could not be read or is not usable (names the file and the fix)."""


class TrainingError(EdgeAEError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


class CheckpointError(EdgeAEError, ValueError):
    """A run folder is missing files or its weights do not fit its config."""


class ExportError(EdgeAEError, RuntimeError):
    """An export could not be written."""


class ValidationError(ExportError):
    """An exported graph disagrees with PyTorch beyond tolerance."""


class BundleError(EdgeAEError, ValueError):
    """A bundle is malformed, tampered with, or not runnable here."""


class InputError(EdgeAEError, ValueError):
    """An array given to the runtime has the wrong shape, dtype or values."""


class ProviderError(EdgeAEError, RuntimeError):
    """A requested ONNX Runtime execution provider is not available."""


class StreamError(EdgeAEError, ValueError):
    """A compressed stream is truncated, corrupted, or belongs to another model."""
