"""Faults while writing: a read-only folder, a full disk, Ctrl-C in the middle of an export.

Each case runs the real command in a subprocess and checks three things: a clear
``Error: ...`` (or ``Interrupted.``), the earlier file or folder byte for byte intact, and
no partial or temporary file left behind.

- read-only: the folder is mode 0555; as root (which ignores modes) the command runs
  under ``setpriv`` without the DAC-override capabilities.
- full disk: ``RLIMIT_FSIZE`` (writes past the limit fail with EFBIG) for single files;
  a 200 KiB tmpfs in a private mount namespace (``unshare -rm``) for a PNG folder.
- Ctrl-C: SIGINT once the export has started writing its temporary bundle.
- several writers: four ``compress --overwrite`` to one file at once; ``kill -9`` in the
  middle of ``compress --append`` (all or nothing, and the next write cleans up).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests._bundles import digits_uint8, make_bundle, with_codec

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
       "PYTHONDONTWRITEBYTECODE": "1"}
EDGEAE = [sys.executable, "-m", "edgeae"]


def _edgeae(*args, fsize: int | None = None, no_dac: bool = False, timeout: float = 300):
    cmd = [*EDGEAE, *(str(a) for a in args)]
    if no_dac:
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--", *cmd]

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if fsize else None)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) -> SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The PCA image bundle with 6-bit codec tables (so compress works)."""
    return with_codec(make_bundle(tmp_path_factory.mktemp("faults") / "b", "image")[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faults-data")
    np.save(d / "few.npy", digits_uint8()[:5])
    np.save(d / "all.npy", digits_uint8())  # 1,797 samples
    return d


def _read_only_runner():
    if os.geteuid() != 0:
        return False
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be enforced here")
    return True


def test_read_only_output_folder(bundle, data, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    assert _edgeae("encode", bundle, data / "few.npy", "-o", out / "codes.npy").returncode == 0
    assert _edgeae("decode", bundle, out / "codes.npy", "-o", out / "pngs").returncode == 0
    before = _snapshot(out)
    out.chmod(0o555)
    (out / "pngs").chmod(0o555)
    try:
        no_dac = _read_only_runner()
        r = _edgeae("encode", bundle, data / "all.npy", "-o", out / "codes.npy", "--overwrite", no_dac=no_dac)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.strip() == (f"Error: cannot write {out / 'codes.npy'}: Permission denied "
                                    "(the earlier file is unchanged)")
        r = _edgeae("decode", bundle, out / "codes.npy", "-o", out / "pngs", "--overwrite", no_dac=no_dac)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.strip() == (f"Error: cannot write PNG images to {out / 'pngs'}: Permission denied; "
                                    "nothing was replaced")
        r = _edgeae("compress", bundle, data / "few.npy", "-o", out / "s.eae", no_dac=no_dac)
        assert r.returncode == 1 and r.stderr.startswith(f"Error: cannot write {out / 's.eae'}: Permission denied")
    finally:
        (out / "pngs").chmod(0o755)
        out.chmod(0o755)
    assert _snapshot(out) == before


def test_full_disk_single_files(bundle, data, tmp_path):
    """encode -o and compress over earlier files, then compress --append, each past a 20 kB file limit."""
    assert _edgeae("encode", bundle, data / "few.npy", "-o", tmp_path / "codes.npy").returncode == 0
    assert _edgeae("compress", bundle, data / "few.npy", "-o", tmp_path / "s.eae").returncode == 0
    before = _snapshot(tmp_path)
    r = _edgeae("encode", bundle, data / "all.npy", "-o", tmp_path / "codes.npy", "--overwrite", fsize=20_000)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"Error: cannot write {tmp_path / 'codes.npy'}: File too large (the earlier file is unchanged)"
    big = tmp_path / "big.npy"
    np.save(big, np.concatenate([digits_uint8()] * 3))  # a stream of ~5,400 samples is past the limit
    r = _edgeae("compress", bundle, big, "-o", tmp_path / "s.eae", "--overwrite", fsize=20_000)
    assert r.returncode == 1 and r.stderr.startswith(f"Error: cannot write {tmp_path / 's.eae'}: File too large")
    r = _edgeae("compress", bundle, big, "-o", tmp_path / "s.eae", "--append", fsize=20_000)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"Error: cannot append to {tmp_path / 's.eae'}: File too large; the stream is unchanged"
    big.unlink()
    assert _snapshot(tmp_path) == before  # same files, same bytes, nothing left over
    r = _edgeae("decompress", bundle, tmp_path / "s.eae", "-o", tmp_path / "back.npy")
    assert r.returncode == 0 and "Decompressed 5 samples" in r.stdout


def test_full_disk_png_folder(bundle, data, tmp_path):
    """decode --overwrite into a PNG folder on a 200 KiB tmpfs that fills up half way."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: no private tmpfs for a full-disk test")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here ({probe.stderr.strip()})")
    assert _edgeae("encode", bundle, data / "few.npy", "-o", tmp_path / "few-codes.npy").returncode == 0
    assert _edgeae("encode", bundle, data / "all.npy", "-o", tmp_path / "all-codes.npy").returncode == 0
    disk, report = tmp_path / "disk", tmp_path / "report"
    disk.mkdir()
    report.mkdir()
    py = " ".join(EDGEAE)
    script = f"""
set -u
mount -t tmpfs -o size=200k tmpfs {disk}
{py} decode {bundle} {tmp_path / 'few-codes.npy'} -o {disk}/pngs > /dev/null || exit 3
(cd {disk} && find . -type f | sort | xargs sha256sum) > {report}/before
{py} decode {bundle} {tmp_path / 'all-codes.npy'} -o {disk}/pngs --overwrite 2> {report}/stderr
echo $? > {report}/rc
(cd {disk} && find . | sort) > {report}/tree
(cd {disk} && find . -type f | sort | xargs sha256sum) > {report}/after
"""
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (report / "rc").read_text().strip() == "1"
    assert (report / "stderr").read_text().strip() == (
        f"Error: cannot write PNG images to {disk / 'pngs'}: No space left on device; nothing was replaced")
    assert (report / "after").read_text() == (report / "before").read_text()  # the 5 earlier PNGs, unchanged
    assert (report / "tree").read_text().split() == [".", "./pngs"] + [f"./pngs/0000{i}.png" for i in range(5)]


def _wait_for_partial(proc, folder: Path) -> None:
    """Wait until ``proc`` writes a graph into its staging folder (``.bundle.partial-PID-*``)."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and \
            not any(folder.glob(f".bundle.partial-{proc.pid}-*/encoder.onnx")):
        time.sleep(0.02)


@pytest.mark.slow
def test_sigint_during_export(mlp_run, tmp_path):
    """Ctrl-C while export writes: exit 130, 'Interrupted.', the earlier bundle untouched, no partial folder."""
    from edgeae.export import export

    out = tmp_path / "bundle"
    export(mlp_run, out, precisions="fp32", latency_repeats=1)
    before = _snapshot(out)
    proc = subprocess.Popen([*EDGEAE, "export", str(mlp_run), "-o", str(out), "--overwrite",
                             "--precision", "fp32,int8-static,fp16"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_partial(proc, tmp_path)
    assert proc.poll() is None, "export finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, (stdout, stderr)
    assert stderr.strip() == "Interrupted." and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no .partial / .old folder left
    assert _snapshot(out) == before



def _stream_of(bundle: Path, x: np.ndarray) -> bytes:
    """The stream one `compress` of ``x`` writes (the bulk writer is byte-equal to the API)."""
    import edgeae.runtime as rt
    from edgeae.runtime.compress import compress

    return compress(rt.load(bundle), x)


def test_concurrent_overwrites_leave_one_whole_stream(bundle, tmp_path):
    """Four `compress --overwrite` to one file at once: the file is one writer's stream, byte for byte."""
    inputs = []
    for i in range(4):
        inputs.append(tmp_path / f"in{i}.npy")
        np.save(inputs[-1], np.roll(digits_uint8(), 97 * i, axis=0)[: 1200 + 150 * i])
    out = tmp_path / "same.eae"
    procs = [subprocess.Popen([*EDGEAE, "compress", str(bundle), str(p), "-o", str(out), "--overwrite"], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in inputs]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, results
    final = out.read_bytes()
    assert final in [_stream_of(bundle, np.load(p)) for p in inputs]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in inputs), "same.eae"])


def test_sigkill_during_append_keeps_the_stream_whole(bundle, data, tmp_path):
    """kill -9 while `compress --append` writes: the stream holds its earlier samples, no part of the
    new ones; `info` says how many; the next write removes the dead writer's temporary and says so."""
    out = tmp_path / "s.eae"
    assert _edgeae("compress", bundle, data / "few.npy", "-o", out).returncode == 0
    before = out.read_bytes()
    big = tmp_path / "big.npy"
    np.save(big, np.tile(digits_uint8(), (120, 1, 1, 1)))  # 215,640 samples: 14 chunks
    proc = subprocess.Popen([*EDGEAE, "compress", str(bundle), str(big), "-o", str(out), "--append"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, tmp = time.time() + 240, []
    while time.time() < deadline and proc.poll() is None:
        tmp = list(tmp_path.glob(f".s.eae.{proc.pid}-*.tmp"))
        if tmp and tmp[0].stat().st_size > len(before) + 1000:  # past the copy: new chunks are being written
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the append finished before it could be killed"
    proc.kill()
    proc.communicate(timeout=60)
    assert out.read_bytes() == before and tmp[0].exists()
    r = _edgeae("info", out)
    assert r.returncode == 0 and "samples: 5 in 1 chunk," in r.stdout, r.stdout
    r = _edgeae("compress", bundle, data / "few.npy", "-o", out, "--append")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Appended 5 samples to {out}: it holds 10 samples")
    assert r.stderr.strip() == (f"Note: removed {tmp[0].name}, an unfinished temporary file of s.eae left by "
                                f"process {proc.pid}, which died")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy", "s.eae"]
    r = _edgeae("decompress", bundle, out, "-o", tmp_path / "back.npy")
    assert r.returncode == 0 and "Decompressed 10 samples (the whole stream: 2 chunks)" in r.stdout


def test_api_append_to_a_folder_is_a_typed_error(bundle, tmp_path):
    import edgeae.runtime as rt
    from edgeae.errors import ConfigError
    from edgeae.runtime import compress as C

    with pytest.raises(ConfigError, match=f"^{tmp_path} is a folder; give the stream file to append to"):
        C.append(rt.load(bundle), tmp_path, digits_uint8()[:3])
    r = _edgeae("compress", bundle, Path(__file__), "-o", tmp_path, "--append")
    assert r.returncode == 1 and "Traceback" not in r.stderr
