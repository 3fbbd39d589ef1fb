"""Every file and folder edgeae writes appears whole or not at all, whoever else writes it too.

The one module for outputs (streams, codes, manifests, checkpoints, bundles, C folders):

- a file is written into a temporary sibling with a name of its own
  (``.<name>.<pid>-<machine><random>.tmp``, created exclusively) and renamed over the target when
  complete. ``os.replace`` is atomic on one file system, so readers see the old file or
  the new one, never half of one, and of several writers at once (``--overwrite``) the
  last one to finish wins, whole;
- an append (:func:`atomic_append`) copies the file into such a temporary, adds to the
  copy and renames it back: a crash or ``kill -9`` leaves the stream as it was, never
  part of the new samples. Appenders to one folder take turns (an exclusive ``flock`` on
  the folder), so none of them loses another's samples;
- a folder is built in ``.<name>.partial-<pid>-<machine><random>`` and swapped in by one
  ``renameat2(RENAME_EXCHANGE)`` where the system has it; elsewhere by two renames
  through ``.<name>.old-<pid>-<random>``, which the next write recovers if the process
  died between them.

Leftovers of a process that died (its PID no longer runs on this machine; the name
records which machine) are cleaned up by the next write to the same target, which says
so on stderr (logger ``edgeae``): a temporary
file or an unfinished folder is removed; an earlier folder whose replacement was
interrupted is put back. Standard library only, so the runtime uses it too.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_append", "atomic_write_bytes", "atomic_write_text", "check_output_dir",
           "claim_output_dir", "output_dir", "staging_dir", "commit_staging_dir", "clean_leftovers",
           "on_interrupt", "interrupted", "interrupt_handled"]

try:
    import fcntl
except ImportError:  # Windows: appenders are not serialized there
    fcntl = None

_log = logging.getLogger("edgeae")
# .<name>.<pid>-<host><hex>.tmp (files), .<name>.partial-<pid>-<host><hex> / .<name>.old-... (folders);
# <host>: 6 hex digits of this machine's (or container's) name, since a PID means something only there
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{6})[0-9a-f]{8}\.tmp|"
                       r"(?P<kind>partial|old)-(?P<dpid>\d+)-(?P<dhost>[0-9a-f]{6})[0-9a-f]{8})$")


_interrupt = {"seen": False}  # set by on_interrupt: no commit happens after a Ctrl-C


def on_interrupt(signum: int, frame: object) -> None:
    """SIGINT handler (the CLI installs it): remember the interrupt, then raise
    KeyboardInterrupt as Python's own handler does. Python drops an exception raised where it
    cannot propagate (a finalizer, a callback from native code, after printing it); the flag
    outlives it, and every commit below refuses once it is set, so an interrupted command
    never puts its output in place of what was there."""
    _interrupt["seen"] = True
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a Ctrl-C reached :func:`on_interrupt` in this process and nothing handled it."""
    return _interrupt["seen"]


def interrupt_handled() -> None:
    """For code that stops on a Ctrl-C by design and then writes its result (training keeps its
    best weights): the commits that follow are wanted."""
    _interrupt["seen"] = False


def _not_interrupted() -> None:
    if _interrupt["seen"]:
        raise KeyboardInterrupt


@functools.cache
def _host() -> str:
    """6 hex digits naming this machine (or container), computed once per process."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _tag() -> str:
    return f"{os.getpid()}-{_host()}{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (ours included); unknown counts as alive."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        # signal 0 only asks whether the process exists; any other number would send a real
        # signal (the tests' live PID is their runner's parent), so this line is not mutated
        os.kill(pid, 0)  # pragma: no mutate
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def clean_leftovers(target: str | os.PathLike) -> list[str]:
    """Remove (or restore) what writers of ``target`` that died left beside it; -> what was done.

    Temporaries of processes still running are left alone: they may be writing now.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(f".{target.name}.")]
    except OSError:
        return []
    done, host = [], _host()
    for p in sorted(entries, key=lambda p: "partial" in p.name):  # restore an old folder before dropping partials
        m = _LEFTOVER.match(p.name)
        if m is None or m["name"] != target.name or (m["host"] or m["dhost"]) != host \
                or _alive(int(m["pid"] or m["dpid"])):
            continue  # not ours to judge: another machine's writer, or one still running
        owner = int(m["pid"] or m["dpid"])
        try:
            if m["kind"] == "old" and not os.path.lexists(target):
                os.replace(p, target)
                done.append(f"restored {target} from {p.name}: process {owner} died while replacing it")
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        what = {"old": "earlier copy", "partial": "unfinished folder"}.get(m["kind"] or "", "unfinished temporary file")
        done.append(f"removed {p.name}, an {what} of {target.name} left by process {owner}, which died")
    for line in done:
        _log.warning("Note: %s", line)
    return done


def _new_tmp(path: Path) -> Path:
    """Create (exclusively) an empty temporary file beside ``path`` with a name no other writer uses."""
    while True:
        tmp = path.with_name(f".{path.name}.{_tag()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # less the umask, as open()
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary file to write; it replaces ``path`` only when the block finishes."""
    path = Path(path)
    clean_leftovers(path)
    tmp = _new_tmp(path)
    try:
        yield tmp
        _keep_mode(path, tmp)
        _not_interrupted()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when the block failed


def _keep_mode(path: Path, tmp: Path) -> None:
    """A replaced file keeps its permission bits (a new one has open()'s: 0666 less the umask)."""
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777)
    except OSError:
        pass


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` while the block runs (appenders take turns)."""
    try:
        if fcntl is None:
            raise OSError(errno.ENOSYS, "no flock here")
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield  # no lock where the folder cannot be opened: the append still is all-or-nothing
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network mounts): go on unserialized
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def atomic_append(path: str | os.PathLike) -> Iterator[tuple[Path, int]]:
    """Yield ``(copy, size)``: a private copy of ``path`` (``size`` bytes; empty when there is
    no file) to add to; it replaces ``path`` only when the block finishes.

    Other appenders to files of the same folder wait meanwhile, so the copy is the file as
    it is until the rename; a writer that replaces the file instead (``--overwrite``) is
    not held up, and the last one to finish wins.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    parent = path.parent if str(path.parent) else Path(".")
    with _folder_lock(parent), atomic_path(path) as tmp:
        size = 0
        if path.exists():
            shutil.copyfile(path, tmp)
            size = tmp.stat().st_size
        yield tmp, size


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_output_dir(out_dir: str | os.PathLike, overwrite: bool, marker: str | Callable[[Path], bool],
                     foreign: str, error: type[Exception]) -> None:
    """Refuse an output folder that is not ours to replace (the one ``--overwrite`` rule for folders).

    A file is refused; a non-empty folder is replaced only with ``overwrite`` and only when it
    is one edgeae wrote: it holds the file ``marker`` (the one every folder of this kind has),
    or ``marker(folder)`` is true. ``foreign`` ends the message that refuses another folder.
    Errors are raised as ``error`` with the fix in the message. Nothing is written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"{out_dir} exists and is not a folder; choose another -o")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise error(f"{out_dir} is not empty; choose another -o or pass --overwrite to replace it")
        ours = marker(out_dir) if callable(marker) else (out_dir / marker).is_file()
        if not ours:
            raise error(f"{out_dir} {foreign}: choose another -o")


def claim_output_dir(out_dir: Path, overwrite: bool, marker: str | Callable[[Path], bool], foreign: str,
                     error: type[Exception], what: str = "") -> Path:
    """Refuse an output folder that is not ours to replace; return the staging folder to build in.

    Leftovers of an interrupted earlier run are recovered first (:func:`clean_leftovers`),
    then :func:`check_output_dir` decides. A failure to create the staging folder is raised
    as ``error`` too.
    """
    clean_leftovers(out_dir)
    check_output_dir(out_dir, overwrite, marker, foreign, error)
    try:
        return staging_dir(out_dir)
    except OSError as exc:
        raise error(f"cannot write {what}into {Path(out_dir).resolve().parent} ({exc.strerror}); "
                    "choose a writable -o") from None


@contextmanager
def output_dir(out_dir: str | os.PathLike, overwrite: bool, marker: str | Callable[[Path], bool], foreign: str,
               error: type[Exception]) -> Iterator[Path]:
    """Yield a staging folder to build ``out_dir`` in; it replaces ``out_dir`` in one step when the block ends.

    Refusals as :func:`claim_output_dir` (raised as ``error``); a folder that cannot be
    written raises ``OSError``, for the caller to word. Any failure in the block (an
    exception, Ctrl-C) removes the staging folder and leaves an earlier ``out_dir`` as it
    was; ``kill -9`` leaves a leftover that the next write to ``out_dir`` removes.
    """
    clean_leftovers(out_dir)
    check_output_dir(out_dir, overwrite, marker, foreign, error)
    tmp = staging_dir(out_dir)
    try:
        yield tmp
        commit_staging_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def staging_dir(out_dir: str | os.PathLike) -> Path:
    """A new, empty hidden sibling of ``out_dir`` (``.<name>.partial-<pid>-<random>``) to build a folder in.

    Hand it to :func:`commit_staging_dir` when every file is written; remove it
    (``shutil.rmtree``) when building fails. Raises ``OSError`` when the parent is not writable.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(parent / out_dir.name)
    while True:
        tmp = parent / f".{out_dir.name}.partial-{_tag()}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def commit_staging_dir(tmp: Path, out_dir: str | os.PathLike) -> None:
    """Put the finished folder ``tmp`` in place of ``out_dir`` (an existing one is replaced).

    One atomic exchange where the system offers it; else two renames, recoverable by the
    next write (:func:`clean_leftovers` puts the earlier folder back if the second is missing).
    """
    out_dir = Path(out_dir)
    _not_interrupted()
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    if _exchange(tmp, out_dir):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the earlier folder
        return
    old = tmp.with_name(f".{out_dir.name}.old-{_tag()}")
    os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # this file system cannot exchange: rename twice
    raise OSError(err, os.strerror(err), str(b))
