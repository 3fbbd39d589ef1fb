"""Files and folders are replaced whole or not at all: by several writers at once, and after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgeae import atomic
from edgeae.atomic import (
    atomic_append,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    claim_output_dir,
    clean_leftovers,
    commit_staging_dir,
    staging_dir,
)


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_staging_dir_replaces_a_folder_in_one_step(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "stale.onnx").write_bytes(b"x")
    tmp = staging_dir(out)
    assert tmp.parent == tmp_path and tmp.name.startswith(".bundle.partial-") and not any(tmp.iterdir())
    (tmp / "manifest.json").write_text("{}")
    commit_staging_dir(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


# ---- several writers, and writers that died ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _killed(code: str, cwd: Path) -> int:
    """Run ``code`` in a fresh interpreter that ends itself with SIGKILL; -> its PID."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if env.get("MUTANT_UNDER_TEST") == "stats":  # mutmut's coverage pass reads its settings from the
        del env["MUTANT_UNDER_TEST"]  # current folder, which the child's is not; a mutant still runs in it
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return int(proc.stdout.split()[0])


def test_writers_at_once_use_their_own_temporaries_and_the_last_wins(tmp_path):
    target = tmp_path / "same.eae"
    with atomic.atomic_path(target) as a, atomic.atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_bytes(b"first" * 1000)
        b.write_bytes(b"second")
    assert target.read_bytes() == b"first" * 1000  # a finished last: whole, not mixed with b
    assert [p.name for p in tmp_path.iterdir()] == ["same.eae"]


def test_a_dead_writers_temporary_is_removed_by_the_next_write_which_says_so(tmp_path, notes):
    target = tmp_path / "out.eae"
    dead, alive = _dead_pid(), os.getppid()
    host = atomic._host()
    stale = tmp_path / f".out.eae.{dead}-{host}0a1b2c3d.tmp"
    busy = tmp_path / f".out.eae.{alive}-{host}0a1b2c3d.tmp"  # a writer still running: left alone
    elsewhere = tmp_path / f".out.eae.{dead}-{'0' if host[0] != '0' else '1'}{host[1:]}0a1b2c3d.tmp"  # another machine's
    for p in (stale, busy, elsewhere):
        p.write_bytes(b"half")
    atomic.atomic_write_bytes(target, b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([busy.name, elsewhere.name, "out.eae"])
    assert notes == [f"Note: removed {stale.name}, an unfinished temporary file of out.eae left by "
                               f"process {dead}, which died"]


def test_sigkill_while_staging_a_folder_is_cleaned_up_by_the_next_claim(tmp_path, notes):
    pid = _killed("import os, signal\nfrom edgeae.atomic import staging_dir\n"
                  "tmp = staging_dir('bundle'); (tmp / 'encoder.onnx').write_bytes(b'x'); print(os.getpid(), flush=True)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)", tmp_path)
    (left,) = tmp_path.glob(f".bundle.partial-{pid}-*")
    tmp = claim_output_dir(tmp_path / "bundle", False, "manifest.json", "is foreign", RuntimeError)
    assert not left.exists() and tmp.is_dir()
    assert notes == [f"Note: removed {left.name}, an unfinished folder of bundle left by process {pid}, "
                               "which died"]


def test_sigkill_between_the_two_renames_is_recovered(tmp_path, notes):
    """Where the folder swap takes two renames, dying between them loses nothing: the next run puts
    the earlier folder back (and removes the new, unannounced one)."""
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    pid = _killed("import os, signal\nfrom edgeae import atomic\natomic._exchange = lambda a, b: False\n"
                  "tmp = atomic.staging_dir('bundle'); (tmp / 'manifest.json').write_text('new')\n"
                  "real = os.replace\ndef replace(a, b):\n    real(a, b)\n    print(os.getpid(), flush=True)\n"
                  "    os.kill(os.getpid(), signal.SIGKILL)\nos.replace = replace\n"
                  "atomic.commit_staging_dir(tmp, 'bundle')", tmp_path)
    assert not out.exists()  # the state the kill left: the earlier bundle and the new one both hidden
    old, = tmp_path.glob(f".bundle.old-{pid}-*")
    with pytest.raises(RuntimeError, match="is not empty; choose another -o or pass --overwrite"):
        claim_output_dir(out, False, "manifest.json", "is foreign", RuntimeError)
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert notes[0] == (f"Note: restored {out} from {old.name}: process {pid} died while replacing it")
    assert notes[1].startswith(f"Note: removed .bundle.partial-{pid}-")


def test_the_folder_swap_is_one_exchange_on_linux(tmp_path, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is Linux only; elsewhere the swap is two recoverable renames")
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "a").write_text("old")
    tmp = staging_dir(out)
    (tmp / "a").write_text("new")
    monkeypatch.setattr(os, "replace", lambda *a: pytest.fail("renamed twice instead of exchanging"))
    commit_staging_dir(tmp, out)
    assert (out / "a").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_atomic_append_copies_then_replaces(tmp_path):
    target = tmp_path / "s.eae"
    target.write_bytes(b"head")
    with pytest.raises(RuntimeError), atomic_append(target) as (tmp, size):
        assert size == 4 and tmp.read_bytes() == b"head"
        with tmp.open("ab") as f:
            f.write(b"+half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"head"
    with atomic_append(target) as (tmp, size):
        with tmp.open("ab") as f:
            f.write(b"+tail")
    assert target.read_bytes() == b"head+tail"
    assert [p.name for p in tmp_path.iterdir()] == ["s.eae"]
    with pytest.raises(IsADirectoryError), atomic_append(tmp_path):
        pass
    assert clean_leftovers(target) == []


def test_after_a_ctrl_c_nothing_is_committed(tmp_path, monkeypatch):
    """A Ctrl-C that Python dropped on its way (raised inside a finalizer, say) still stops every
    commit: the earlier file and folder stay; a command that handles it (training) clears it."""
    import edgeae.atomic as A

    monkeypatch.setitem(A._interrupt, "seen", False)
    target = tmp_path / "out.bin"
    target.write_bytes(b"earlier")
    with pytest.raises(KeyboardInterrupt):
        A.on_interrupt(2, None)
    assert A.interrupted()
    with pytest.raises(KeyboardInterrupt):
        A.atomic_write_bytes(target, b"later")
    assert target.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "a").write_text("earlier")
    tmp = A.staging_dir(folder)
    (tmp / "a").write_text("later")
    with pytest.raises(KeyboardInterrupt):
        A.commit_staging_dir(tmp, folder)
    assert (folder / "a").read_text() == "earlier"
    A.interrupt_handled()
    assert not A.interrupted()
    A.commit_staging_dir(tmp, folder)
    assert (folder / "a").read_text() == "later"


def _exit(monkeypatch, *args: str):
    """(exit code, stderr) of `edgeae noop ARGS`, a command that does nothing."""
    import click
    from click.testing import CliRunner

    from edgeae.cli import cli

    monkeypatch.setitem(cli.commands, "noop", click.Command("noop", callback=lambda: None))
    res = CliRunner().invoke(cli, ["noop", *args])
    return res.exit_code, res.stderr


def test_the_cli_reports_a_dropped_ctrl_c(monkeypatch):
    """A command that finished although a Ctrl-C came (Python dropped the exception) exits 130."""
    import edgeae.atomic as A

    monkeypatch.setitem(A._interrupt, "seen", True)
    assert _exit(monkeypatch) == (130, "Interrupted.\n")
    monkeypatch.setitem(A._interrupt, "seen", False)
    assert _exit(monkeypatch, "--bad")[0] == 2 and _exit(monkeypatch)[0] == 0


def test_the_cli_installs_the_interrupt_handler(monkeypatch):
    import edgeae.cli as C

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(C, "cli", lambda prog_name: None)
    try:
        C.main()
        assert signal.getsignal(signal.SIGINT) is atomic.on_interrupt
    finally:
        signal.signal(signal.SIGINT, before)
