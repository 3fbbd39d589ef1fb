"""The one rule for what edgeae writes, and the writers of its common outputs (docs/outputs.md).

::

    check_file / check_samples_output   refuse before any work (never replace without --overwrite)
    write_file -> save_npy, save_figure  one file: temporary beside it + rename (edgeae.atomic)
    output_dir -> write_samples (PNGs)   one folder: built beside it, swapped in one step

A file is replaced only with ``overwrite``; a non-empty folder only with ``overwrite`` and
only when edgeae wrote it (its marker: manifest.json for a bundle, config.json for a run,
site.json for a site, numbered PNGs only for an image folder). Whatever fails part way
(an error, a full disk, Ctrl-C, ``kill -9``) leaves the earlier output byte for byte;
a refused ``--overwrite`` writes nothing. numpy is imported lazily, so the runtime's
commands may use this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeae.atomic import atomic_path, check_output_dir, output_dir
from edgeae.errors import ConfigError

__all__ = ["check_file", "write_file", "save_npy", "save_figure", "numbered_pngs", "check_samples_output",
           "write_samples"]


def check_file(path: str | os.PathLike, overwrite: bool, error: type[Exception] = ConfigError) -> None:
    """Refuse a file output that is a folder, or that exists when ``overwrite`` is not given."""
    path = Path(path)
    if path.is_dir():
        raise error(f"-o {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise error(f"{path} already exists; pass --overwrite to replace it, or choose another -o")


def write_file(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """``write(tmp_path)`` then rename onto ``path``: never half a file, the earlier one kept on failure.

    Any failure (full disk, read-only folder, Ctrl-C) removes the temporary file; a write
    error becomes ``ConfigError("cannot write PATH: ...")``.
    """
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        kept = " (the earlier file is unchanged)" if Path(path).exists() else ""
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}{kept}") from None


def save_npy(path: str | os.PathLike, array) -> None:
    """Write a .npy file through :func:`write_file`."""
    import numpy as np

    class _Sink:  # not a "real" file to numpy: it writes blocks through f.write, whose errors keep errno
        def __init__(self, f):
            self.write = f.write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(_Sink(f), array)
            f.flush()

    write_file(path, write)


def save_figure(fig, path: str | os.PathLike, **savefig: Any) -> Path:
    """A matplotlib figure to ``path`` through :func:`write_file`; the format follows the suffix
    (none: ``.png`` is added, as matplotlib does). Returns the path written."""
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    write_file(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower(), **savefig))
    return path


def numbered_pngs(folder: Path) -> bool:
    """Whether ``folder`` holds only numbered PNG files (``00000.png`` ...: what :func:`write_samples` writes)."""
    return all(p.suffix == ".png" and p.stem.isdigit() and p.is_file() for p in folder.iterdir())


_NOT_IMAGES = "holds other files than numbered PNG images; --overwrite only replaces an image folder"


def check_samples_output(output: str, overwrite: bool, npy_only: bool = False) -> None:
    """Refuse, before any work, an output of samples that is not ours to write: a .npy file or a PNG folder."""
    is_npy = output.lower().endswith(".npy")
    if npy_only and not is_npy:
        raise ConfigError(f"-o {output!r} must be a .npy file, e.g. -o codes.npy")
    if is_npy:
        if Path(output).is_dir():
            raise ConfigError(f"-o {output} is a folder; give a .npy file name")
        check_file(output, overwrite)
    elif Path(output).exists() and not Path(output).is_dir():
        raise ConfigError(f"-o {output} is a file; give a folder for PNG images or a .npy file name")
    else:
        check_output_dir(output, overwrite, numbered_pngs, _NOT_IMAGES, ConfigError)


def write_samples(x_raw, output: str, is_image: bool, overwrite: bool = True) -> str:
    """``.npy`` -> one array of raw units; anything else -> a folder of PNG files (images only).

    PNGs are written into a staging folder beside ``output`` and swapped in only when all of
    them were written, so a full disk or Ctrl-C leaves the earlier folder as it was.
    Returns what was written, for the command's report.
    """
    if output.lower().endswith(".npy"):
        check_file(output, overwrite)
        save_npy(output, x_raw)
        return f"{output} {tuple(x_raw.shape)} {x_raw.dtype}"
    if not is_image:
        raise ConfigError(f"decoded samples are vectors, not images, so {output!r} cannot be a PNG folder: "
                          "use -o OUT.npy")
    from edgeae.data.imageio import save_images, to_uint8

    try:
        with output_dir(output, overwrite, numbered_pngs, _NOT_IMAGES, ConfigError) as tmp:
            n = len(save_images(to_uint8(x_raw), tmp))
    except OSError as exc:
        raise ConfigError(f"cannot write PNG images to {output}: {exc.strerror or exc}; nothing was replaced") from None
    return f"{output}/ ({n} PNG files)"
