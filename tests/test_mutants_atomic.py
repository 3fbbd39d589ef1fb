"""Direct tests of edgeae.atomic and edgeae.outputs, written from the mutants that survived
test_atomic.py and test_outputs.py (docs/testing.md): liveness of a leftover's writer, the
order and wording of the recovery notes, file modes, name collisions, the two-rename
fallback of a folder swap, and the refusals word for word."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeae import atomic
from edgeae.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    claim_output_dir,
    clean_leftovers,
    commit_staging_dir,
    staging_dir,
)
from edgeae.errors import ConfigError
from edgeae.outputs import (
    check_file,
    check_samples_output,
    numbered_pngs,
    write_file,
    write_samples,
)

ROOT = Path(__file__).resolve().parents[1]
NO_PID = 4194304  # above Linux's largest PID (PID_MAX_LIMIT): no process ever has these


def _tmp_name(target: str, pid: int, tail: str = "0a1b2c3d") -> str:
    return f".{target}.{pid}-{atomic._host()}{tail}.tmp"


# ------------------------------------------------------------------ leftovers
def test_leftover_of_pid_0_is_removed_and_of_pid_1_is_kept(tmp_path, notes):
    """PID 0 is no process (``kill(0, 0)`` would ask about our own process group); PID 1 always runs."""
    for pid in (0, 1):
        (tmp_path / _tmp_name("out.eae", pid)).write_bytes(b"half")
    atomic_write_bytes(tmp_path / "out.eae", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([_tmp_name("out.eae", 1), "out.eae"])
    assert notes == [f"Note: removed {_tmp_name('out.eae', 0)}, an unfinished temporary file of out.eae "
                     "left by process 0, which died"]


def test_a_writer_we_may_not_signal_counts_as_running(tmp_path, monkeypatch):
    """EPERM from ``kill(pid, 0)``: the process runs as another user, so its temporary is left alone."""
    def kill(pid, sig):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    left = tmp_path / _tmp_name("out.eae", NO_PID + 1)
    left.write_bytes(b"half")
    monkeypatch.setattr(os, "kill", kill)
    assert clean_leftovers(tmp_path / "out.eae") == []
    assert left.exists()


def test_other_dotted_names_beside_the_target_are_left_alone(tmp_path):
    keep = [".out.eae.notes", ".out.eae.1-zzzzzz0a1b2c3d.tmp", f".out.eae.{NO_PID}-{atomic._host()}.tmp"]
    for name in keep:
        (tmp_path / name).write_text("keep")
    assert clean_leftovers(tmp_path / "out.eae") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_an_earlier_copy_is_restored_before_unfinished_folders_are_dropped(tmp_path):
    """Whatever order the folder lists them in (eight folders, eight pairs of names)."""
    for k in range(8):
        where = tmp_path / str(k)
        where.mkdir()
        pid = NO_PID + 1 + k
        host = atomic._host()
        names = [f".bundle.partial-{pid}-{host}{k:08x}", f".bundle.old-{pid}-{host}{k + 100:08x}"]
        for name in (names if k % 2 else names[::-1]):
            (where / name).mkdir()
            (where / name / "manifest.json").write_text(name)
        done = clean_leftovers(where / "bundle")
        assert done == [f"restored {where / 'bundle'} from {names[1]}: process {pid} died while replacing it",
                        f"removed {names[0]}, an unfinished folder of bundle left by process {pid}, which died"]
        assert (where / "bundle" / "manifest.json").read_text() == names[1]
        assert [p.name for p in where.iterdir()] == ["bundle"]


def test_an_earlier_copy_beside_a_finished_folder_is_removed_and_named(tmp_path, notes):
    pid, host = NO_PID + 3, atomic._host()
    (tmp_path / "bundle").mkdir()
    old = tmp_path / f".bundle.old-{pid}-{host}0000000a"
    old.mkdir()
    assert clean_leftovers(tmp_path / "bundle") == [
        f"removed {old.name}, an earlier copy of bundle left by process {pid}, which died"]
    assert notes == [f"Note: removed {old.name}, an earlier copy of bundle left by process {pid}, which died"]


def test_one_leftover_that_cannot_be_removed_does_not_stop_the_others(tmp_path, monkeypatch):
    pid, host = NO_PID + 4, atomic._host()
    (tmp_path / "bundle").mkdir()
    stuck = tmp_path / f".bundle.old-{pid}-{host}0000000b"  # sorted before the partial folder
    partial = tmp_path / f".bundle.partial-{pid}-{host}0000000c"
    stuck.mkdir()
    partial.mkdir()
    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path) == stuck:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    done = clean_leftovers(tmp_path / "bundle")
    assert done == [f"removed {partial.name}, an unfinished folder of bundle left by process {pid}, which died"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bundle", stuck.name])


# ------------------------------------------------------------------ files
def test_new_files_get_open_modes_and_replaced_files_keep_theirs(tmp_path):
    mask = os.umask(0)
    try:
        atomic_write_bytes(tmp_path / "new", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "new").stat().st_mode & 0o7777 == 0o666  # as open(): 0666 less the umask
    for mode in (0o640, 0o600, 0o755):
        (tmp_path / "kept").write_bytes(b"old")
        os.chmod(tmp_path / "kept", mode)
        atomic_write_bytes(tmp_path / "kept", b"new")
        assert (tmp_path / "kept").stat().st_mode & 0o7777 == mode


def test_names_already_taken_are_skipped(tmp_path, monkeypatch):
    tags = iter(["1-aaaaaa00000000", "1-aaaaaa00000000", "1-aaaaaa00000001"])
    monkeypatch.setattr(atomic, "_tag", lambda: next(tags))
    (tmp_path / ".out.eae.1-aaaaaa00000000.tmp").write_bytes(b"another writer's")
    atomic_write_bytes(tmp_path / "out.eae", b"whole")
    assert (tmp_path / "out.eae").read_bytes() == b"whole"
    assert (tmp_path / ".out.eae.1-aaaaaa00000000.tmp").read_bytes() == b"another writer's"
    tags = iter(["1-aaaaaa00000000", "1-aaaaaa00000001"])
    (tmp_path / ".bundle.partial-1-aaaaaa00000000").mkdir()
    assert staging_dir(tmp_path / "bundle").name == ".bundle.partial-1-aaaaaa00000001"


def test_text_is_written_as_utf8_whatever_the_locale(tmp_path):
    """Under the plain C locale (ASCII) as well: the child writes text that ASCII cannot hold."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0"}
    text = "\u00e9 \u2713 \u6570"  # spelled in ASCII: the command line itself is read as ASCII there
    code = f"from edgeae.atomic import atomic_write_text\natomic_write_text({str(tmp_path / 't.txt')!r}, {ascii(text)})\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t.txt").read_bytes() == text.encode("utf-8")
    atomic_write_text(tmp_path / "u.txt", "é")
    assert (tmp_path / "u.txt").read_bytes() == b"\xc3\xa9"


# ------------------------------------------------------------------ folders
def test_refusals_of_output_folders_word_for_word(tmp_path):
    (tmp_path / "f").write_text("a file")
    with pytest.raises(ConfigError) as e:
        check_output_dir(tmp_path / "f", True, "manifest.json", "is foreign", ConfigError)
    assert str(e.value) == f"{tmp_path / 'f'} exists and is not a folder; choose another -o"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(ConfigError) as e:
        claim_output_dir(tmp_path / "d", True, "manifest.json", "is not a bundle", ConfigError)
    assert str(e.value) == f"{tmp_path / 'd'} is not a bundle: choose another -o"
    out = tmp_path / "f" / "bundle"  # its parent is a file: no staging folder can be made there
    for what in ("", "the bundle "):
        args = (out, False, "manifest.json", "is foreign", ConfigError) + ((what,) if what else ())
        with pytest.raises(ConfigError) as e:
            claim_output_dir(*args)
        assert str(e.value) == (f"cannot write {what}into {tmp_path / 'f'} ({os.strerror(errno.EEXIST)}); "
                                "choose a writable -o")


def _staged(tmp_path: Path, text: str) -> Path:
    tmp = staging_dir(tmp_path / "out")
    (tmp / "manifest.json").write_text(text)
    return tmp


def _fill_old(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text("old")


def test_commit_with_relative_names(tmp_path, monkeypatch):
    _fill_old(tmp_path)
    tmp = _staged(tmp_path, "new")
    monkeypatch.chdir(tmp_path)
    commit_staging_dir(Path(tmp.name), "out")
    assert (tmp_path / "out" / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("exchange", ["unsupported", "not linux"])
def test_commit_without_an_exchange_renames_twice(tmp_path, monkeypatch, exchange):
    """A file system that cannot exchange (EINVAL), or a system without renameat2."""
    class NoExchange:
        def renameat2(self, *args):
            ctypes.set_errno(errno.EINVAL)
            return -1

    if exchange == "not linux":
        monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: NoExchange())
    _fill_old(tmp_path)
    tmp = _staged(tmp_path, "new")
    commit_staging_dir(tmp, tmp_path / "out")
    assert (tmp_path / "out" / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("exchange", [True, False])
def test_an_earlier_folder_that_cannot_be_deleted_does_not_fail_the_commit(tmp_path, monkeypatch, exchange):
    """The new folder is in place; the earlier one, which no reader sees any more, may stay behind."""
    real = shutil.rmtree

    def rmtree(path, ignore_errors=False, **kwargs):  # as rmtree does on a folder it cannot empty
        if not ignore_errors:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))

    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    _fill_old(tmp_path)
    tmp = _staged(tmp_path, "new")
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    commit_staging_dir(tmp, tmp_path / "out")
    monkeypatch.setattr(shutil, "rmtree", real)
    assert (tmp_path / "out" / "manifest.json").read_text() == "new"


def test_a_failed_exchange_is_raised_with_its_errno_and_changes_nothing(tmp_path):
    ctypes.set_errno(0)  # ctypes' own copy of errno: what an earlier call left there must not answer for this one
    _fill_old(tmp_path)
    with pytest.raises(OSError) as e:
        commit_staging_dir(tmp_path / ".out.partial-gone", tmp_path / "out")
    assert (e.value.errno, e.value.strerror, e.value.filename) == (
        errno.ENOENT, os.strerror(errno.ENOENT), str(tmp_path / "out"))
    assert (tmp_path / "out" / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ------------------------------------------------------------------ outputs.py
def test_check_file_refusals_word_for_word(tmp_path):
    check_file(tmp_path / "new.npy", False)  # nothing there: nothing to refuse
    with pytest.raises(ConfigError) as e:
        check_file(tmp_path, True)
    assert str(e.value) == f"-o {tmp_path} is a folder; give a file name"


def test_write_file_says_whether_the_earlier_file_is_kept(tmp_path):
    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(ConfigError) as e:
        write_file(tmp_path / "a.npy", full)
    assert str(e.value) == f"cannot write {tmp_path / 'a.npy'}: {os.strerror(errno.ENOSPC)}"
    (tmp_path / "a.npy").write_bytes(b"earlier")
    with pytest.raises(ConfigError) as e:
        write_file(tmp_path / "a.npy", full)
    assert str(e.value) == (f"cannot write {tmp_path / 'a.npy'}: {os.strerror(errno.ENOSPC)} "
                            "(the earlier file is unchanged)")
    assert (tmp_path / "a.npy").read_bytes() == b"earlier"


def test_numbered_pngs_only(tmp_path):
    (tmp_path / "00000.png").write_bytes(b"")
    assert numbered_pngs(tmp_path)
    (tmp_path / "cover.png").write_bytes(b"")
    assert not numbered_pngs(tmp_path)
    (tmp_path / "cover.png").unlink()
    (tmp_path / "00001.png").mkdir()
    assert not numbered_pngs(tmp_path)


def test_check_samples_output_npy_and_folder_rules(tmp_path):
    npy = str(tmp_path / "c.npy")
    check_samples_output(npy, False, npy_only=True)
    with pytest.raises(ConfigError) as e:
        check_samples_output(str(tmp_path / "imgs"), False, npy_only=True)
    assert str(e.value) == f"-o {str(tmp_path / 'imgs')!r} must be a .npy file, e.g. -o codes.npy"
    Path(npy).write_bytes(b"earlier")
    with pytest.raises(ConfigError) as e:
        check_samples_output(npy, False)
    assert str(e.value) == f"{npy} already exists; pass --overwrite to replace it, or choose another -o"
    check_samples_output(npy, True)
    check_samples_output(npy, True, npy_only=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as e:
        check_samples_output(str(tmp_path / "file"), True)
    assert str(e.value) == f"-o {tmp_path / 'file'} is a file; give a folder for PNG images or a .npy file name"


def test_write_samples_npy_and_its_refusals(tmp_path, monkeypatch):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    npy = str(tmp_path / "c.npy")
    assert write_samples(x, npy, False) == f"{npy} (2, 3) float32"
    np.testing.assert_array_equal(np.load(npy), x)
    assert write_samples(x[:1] + 1, npy, False, overwrite=True) == f"{npy} (1, 3) float32"
    np.testing.assert_array_equal(np.load(npy), x[:1] + 1)
    with pytest.raises(ConfigError) as e:
        write_samples(x, str(tmp_path / "imgs"), False)
    assert str(e.value) == (f"decoded samples are vectors, not images, so {str(tmp_path / 'imgs')!r} cannot be "
                            "a PNG folder: use -o OUT.npy")
    import edgeae.data.imageio as imageio

    def full(x, folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(imageio, "save_images", full)
    with pytest.raises(ConfigError) as e:
        write_samples(np.zeros((1, 1, 2, 2), np.uint8), str(tmp_path / "imgs"), True)
    assert str(e.value) == (f"cannot write PNG images to {tmp_path / 'imgs'}: {os.strerror(errno.ENOSPC)}; "
                            "nothing was replaced")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy"]
