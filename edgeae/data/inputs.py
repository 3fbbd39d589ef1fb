"""What the runtime commands read: samples for a loaded bundle, and code files.

``edgeae reconstruct`` reads its input whole through :func:`load_inputs`; ``edgeae decode``
reads codes through :func:`read_codes`. Both check what they read with the loaded model's
input contract (docs/INPUT.md), so a bad file is refused before any graph runs. The
runtime's contract helpers are imported when called: importing this module stays numpy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.data.load import load_array_input, parse_resize
from edgeae.data.npyfile import read_npy
from edgeae.data.signals import spec_for_model
from edgeae.errors import InputError

__all__ = ["load_inputs", "read_codes", "is_npz_file"]


def load_inputs(model: Any, input_path: str, resize: str | None = None, window: int | None = None,
                hop: int | None = None) -> np.ndarray:
    """Samples of ``input_path`` for ``model`` (a loaded bundle): arranged into its sample
    shape, cast by its contract (uint8 pixels or float32) and checked finite, whole.

    ``resize`` is the command line's ``HxW`` text (or None); ``window`` / ``hop`` cut a
    signal recording into the model's windows (:func:`~edgeae.data.signals.spec_for_model`).
    """
    spec = spec_for_model(window, hop, model.sample_shape)
    x = load_array_input(input_path, model.sample_shape, resize=parse_resize(resize), signal=spec)
    x, _ = model.contract.samples(x, input_path)
    model.contract.check_values(x, input_path)
    return x


def is_npz_file(path: str | Path) -> bool:
    """Whether ``path`` starts like a zip archive (an ``.npz``), whatever its name says."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise InputError(f"cannot read codes file {path}: {exc.strerror}") from None


def read_codes(path: str, code_size: int) -> np.ndarray:
    """A .npy file of codes ``(N, code_size)`` (or one code) -> float32 ``(N, code_size)``, checked.

    An ``.npz`` archive is refused by its content, not its name: ``np.savez`` output is a
    common slip where ``edgeae encode``'s ``.npy`` is meant.
    """
    from edgeae.runtime.contract import as_codes, check_codes

    if is_npz_file(path):
        raise InputError(f"{path} holds an .npz archive; expected a .npy array of codes, shape (N, {code_size}) "
                         "as written by `edgeae encode`")
    codes, _ = as_codes(read_npy(path), code_size, path)
    check_codes(codes, path)
    return codes
