"""The runtime and its CLI work without torch / onnx (a subprocess proves it).

With ``EDGEAE_RUNTIME_PYTHON`` set (``make test`` points it at a venv holding only the base
install: numpy, onnxruntime, click, pillow) the same commands run under that interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests._bundles import digits_uint8, make_bundle

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "onnx", "onnxscript")
_BLOCK = f"import sys; [sys.modules.__setitem__(m, None) for m in {BLOCKED!r}]; "
# Everything outside the runtime's allowance (stdlib, numpy, onnxruntime, lazily constriction).
NOT_RUNTIME = BLOCKED + ("PIL", "matplotlib", "sklearn", "safetensors")
RUNTIME_MODULES = sorted(f"edgeae.runtime.{p.stem}" for p in (ROOT / "edgeae" / "runtime").glob("*.py")
                         if p.stem != "__init__")
BENCH_MODULES = sorted(f"edgeae.bench.{p.stem}" for p in (ROOT / "edgeae" / "bench").glob("*.py")
                       if p.stem != "__init__")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iso")
    _, ref = make_bundle(folder / "b", "image")
    x = digits_uint8()[:40]
    np.save(folder / "x.npy", x)
    # the PSNR of the numpy reference on these samples, for the subprocesses to match
    x01 = x.astype(np.float64) / 255
    expected = 10 * np.log10(1 / np.mean((ref.decode(ref.encode(x01.astype(np.float32))) - x01) ** 2))
    (folder / "psnr.txt").write_text(f"{expected:.6f}")
    return folder


def _python(code: str, cwd: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _cli(args: list[str], cwd: Path, python: str = sys.executable, block: bool = True) -> subprocess.CompletedProcess:
    code = (_BLOCK if block else "import sys; ") + f"from edgeae.cli import main; sys.argv = {['edgeae', *args]!r}; main()"
    return _python(code, cwd, python)


def test_import_runtime_without_torch_or_onnx(tmp_path):
    code = _BLOCK + (
        "import edgeae.runtime as rt, json; "
        f"print(json.dumps({{m: sys.modules.get(m, 'absent') is None for m in {BLOCKED!r}}})); "
        "print('onnxruntime' in sys.modules)"
    )
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    still_blocked, ort_loaded = r.stdout.splitlines()
    assert json.loads(still_blocked) == {m: True for m in BLOCKED}  # nobody replaced the block
    assert ort_loaded == "False"  # onnxruntime loads lazily, on the first load()


@pytest.mark.parametrize("module", RUNTIME_MODULES + BENCH_MODULES)
def test_module_imports_with_only_the_runtime_dependencies(module, tmp_path):
    """Each runtime module (and the torch-free bench tooling) imports with every heavier package
    blocked; the runtime loads neither onnxruntime nor constriction until it is used."""
    code = (f"import sys, json; [sys.modules.__setitem__(m, None) for m in {NOT_RUNTIME!r}]; "
            f"import importlib; importlib.import_module({module!r}); "
            f"print(json.dumps({{m: sys.modules.get(m) is None for m in {NOT_RUNTIME!r}}})); "
            "print(json.dumps(sorted(m for m in ('onnxruntime', 'constriction') if sys.modules.get(m))))")
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    still_blocked, lazy = r.stdout.splitlines()
    assert json.loads(still_blocked) == {m: True for m in NOT_RUNTIME}
    if module.startswith("edgeae.runtime."):
        assert json.loads(lazy) == []


def test_every_runtime_module_is_covered():
    assert {"edgeae.runtime.bundle", "edgeae.runtime.model", "edgeae.runtime.metrics", "edgeae.runtime.stream",
            "edgeae.runtime.varint"} <= set(RUNTIME_MODULES)
    assert "edgeae.bench.harness" in BENCH_MODULES


def _check_commands(folder: Path, python: str, block: bool) -> None:
    r = _cli(["encode", "b", "x.npy", "-o", "c.npy", "--overwrite"], folder, python, block)
    assert r.returncode == 0, r.stderr
    assert np.load(folder / "c.npy").shape == (40, 16)
    r = _cli(["decode", "b", "c.npy", "-o", "r.npy", "--overwrite"], folder, python, block)
    assert r.returncode == 0, r.stderr
    assert np.load(folder / "r.npy").dtype == np.uint8
    r = _cli(["reconstruct", "b", "x.npy"], folder, python, block)
    assert r.returncode == 0, r.stderr
    assert f"PSNR {float((folder / 'psnr.txt').read_text()):.2f} dB" in r.stdout
    r = _cli(["info", "b"], folder, python, block)
    assert r.returncode == 0, r.stderr
    assert "all files OK" in r.stdout
    r = _cli(["encode", "b", "x.npy", "-o", "c2.npy", "--precision", "fp16"], folder, python, block)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: precision 'fp16' (onnx) is not in bundle b;")


def test_cli_without_torch_or_onnx(bundle):
    _check_commands(bundle, sys.executable, block=True)


RUNTIME_PYTHON = os.environ.get("EDGEAE_RUNTIME_PYTHON")


@pytest.mark.skipif(not RUNTIME_PYTHON, reason="EDGEAE_RUNTIME_PYTHON not set (make test sets it to a base-install venv)")
def test_base_install_interpreter(bundle):
    r = _python("import importlib.util as u; print([m for m in ('torch', 'onnx') if u.find_spec(m)])", bundle,
                RUNTIME_PYTHON)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    _check_commands(bundle, RUNTIME_PYTHON, block=False)
    code = ("import numpy as np, edgeae.runtime as rt; m = rt.load('b'); x = np.load('x.npy'); "
            "print(round(rt.psnr(x / 255.0, m.reconstruct(x)), 3))")
    r = _python(code, bundle, RUNTIME_PYTHON)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == pytest.approx(float((bundle / "psnr.txt").read_text()), abs=2e-3)
