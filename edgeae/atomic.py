"""Write files and folders whole or not at all: into a temporary sibling, then rename.

A crash, a full disk or Ctrl-C mid-write leaves the old file (or none), never half a file:
``os.replace`` is atomic on one file system. Standard library only, so the runtime uses it
too (manifests, streams) as well as training (checkpoints, configs), export (whole bundle
folders) and the CLI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "staging_dir", "commit_staging_dir"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield ``<path>.tmp`` to write; it replaces ``path`` only when the block finishes."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when the block failed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def claim_output_dir(out_dir: Path, overwrite: bool, marker: str, foreign: str, error: type[Exception],
                     what: str = "") -> Path:
    """Refuse an output folder that is not ours to replace; return the staging folder to build in.

    A non-empty ``out_dir`` is replaced only with ``overwrite`` and only when it holds
    ``marker`` (the file every folder of this kind has); ``foreign`` ends the message that
    refuses another folder. Errors are raised as ``error`` with the fix in the message.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"{out_dir} exists and is not a folder; choose another -o")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise error(f"{out_dir} is not empty; choose another -o or pass --overwrite to replace it")
        if not (out_dir / marker).is_file():
            raise error(f"{out_dir} {foreign}: choose another -o")
    try:
        return staging_dir(out_dir)
    except OSError as exc:
        raise error(f"cannot write {what}into {out_dir.resolve().parent} ({exc.strerror}); "
                    "choose a writable -o") from None


def staging_dir(out_dir: str | os.PathLike) -> Path:
    """A new, empty hidden sibling of ``out_dir`` (``.<name>.partial-<pid>``) to build a folder in.

    Hand it to :func:`commit_staging_dir` when every file is written; remove it
    (``shutil.rmtree``) when building fails. Raises ``OSError`` when the parent is not writable.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    tmp = parent / f".{out_dir.name}.partial-{os.getpid()}"
    parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def commit_staging_dir(tmp: Path, out_dir: str | os.PathLike) -> None:
    """Put the finished folder ``tmp`` in place of ``out_dir`` (an existing one is replaced)."""
    out_dir = Path(out_dir)
    old = None
    if out_dir.exists():
        old = tmp.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
