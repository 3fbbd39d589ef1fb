"""ARM64 (aarch64) under emulation computes what x86_64 computes: the CLI, examples/cpp, generated C.

A bundle is exported here and run on qemu-aarch64-static CPU models that make ONNX Runtime
pick different kernels (benchmarks/arm64.py): Cortex-A53 (NEON, no dot product) and qemu's
`max` (dot product, I8MM, SVE2, SME) for the runtime's CLI in Debian's arm64 CPython with
PyPI's aarch64 wheels (compress / decompress with the built-in range coder: no constriction
wheel there), Neoverse-N1 (dot product) for the cross-compiled C++ app, and `max` for
the generated C. int8 results must be bit-identical to this machine's, fp32 within 1e-5,
.eae streams byte-identical. The full matrix (four CPU models, MNIST) is
``python -m benchmarks.arm64``. Slow; skips, saying why, without qemu-aarch64-static, the
aarch64 userland (``make arm64-tools``) or the aarch64 cross compilers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import arm64 as A

FP32_TOL = 1e-5


@pytest.fixture(scope="module")
def bundle(trained_run, tmp_path_factory):
    why = A.problem()
    if why:
        pytest.skip(why)
    from edgeae.export import export

    out = tmp_path_factory.mktemp("arm64") / "mlp"
    export(trained_run("mlp"), out, precisions="fp32,int8-dynamic,int8-static", latency_repeats=2)
    return out


def _checks():
    from benchmarks import arm64_checks

    return arm64_checks


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["cortex-a53", "max"])
def test_cli_matches_x86(bundle, tmp_path, cpu):
    """Every command there vs here; on `max` (SME) too, with KleidiAI's fp32 kernels left out."""
    r = _checks().cli_check(bundle, cpu, tmp_path, n=8)
    assert r["info_same"], r
    for p in ("int8-dynamic", "int8-static"):
        assert r["encode"][p]["identical"], (p, r["encode"][p])
        assert r["decode"][p]["identical"], (p, r["decode"][p])
    assert r["encode"]["fp32"]["max_abs"] <= FP32_TOL, r["encode"]["fp32"]
    assert r["decode"]["fp32"]["max_abs"] <= 1, r["decode"]["fp32"]  # raw uint8: an fp32 ulp may round over .5
    for cmd, status in r["commands"].items():
        assert status["x86_64"] == "ok" and status["arm64"] == "ok", (cmd, status)
    # compress / decompress: constriction here, the built-in coder there (no aarch64 wheel of it)
    assert r["streams"] and all(r["streams"].values()), r["streams"]
    assert r["decompress"]["identical"], r["decompress"]


@pytest.fixture(scope="module")
def cpp_apps(bundle, tmp_path_factory):
    why = A.cross_problem()
    if why:
        pytest.skip(why)
    cpp = _checks().CPP
    res = subprocess.run([str(cpp / "setup_ort.sh")], capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "PYTHON": sys.executable})
    if res.returncode != 0:
        pytest.skip(f"ONNX Runtime C++ headers unavailable: {res.stderr.strip()}")
    work = tmp_path_factory.mktemp("arm64-cpp")
    return work, _checks().build_cpp(bundle, work, cpp / "ort" / "include")


@pytest.mark.slow
def test_cpp_app_on_neoverse_n1_matches_python(bundle, cpp_apps):
    work, apps = cpp_apps
    r = _checks().cpp_check(bundle, "neoverse-n1", work / "n1", apps, n=8)
    for p, c in r["codes"].items():
        if p == "fp32":
            assert c["max_abs"] <= FP32_TOL, (p, c)
        else:
            assert c["identical"], (p, c)
        assert r["stream_same"][p], p
        assert r["decompress"][p]["identical"], (p, r["decompress"][p])


@pytest.mark.slow
def test_generated_c_on_max_matches_x86(bundle, tmp_path):
    why = A.cross_problem()
    if why:
        pytest.skip(why)
    r = _checks().codegen_check(bundle, "max", tmp_path, n=8)
    assert {u["precision"] for u in r["units"].values()} == {"fp32", "int8-static"}
    for name, u in r["units"].items():
        if u["precision"] == "fp32":
            assert u["share"] <= 1.0, (name, u)  # within the rounding bound, element by element
        else:
            assert u["identical"], (name, u)


@pytest.mark.slow
def test_cpuinfo_states_the_emulated_core(bundle):
    """The prefix's /proc/cpuinfo says what the emulated CPU reports (what ONNX Runtime reads)."""
    a53, a76 = A.features("cortex-a53"), A.features("cortex-a76")
    assert "part 0xd03" in a53 and "asimddp" not in a53.split()
    assert "part 0xd0b" in a76 and "asimddp" in a76.split()


def test_cpuinfo_text():
    text = A.cpuinfo_text(0x414FD0C1, 0b1 | 1 << 20, 1 << 13, 2)  # fp, asimddp; i8mm
    assert text.count("processor\t:") == 2
    assert "CPU part\t: 0xd0c" in text and "CPU implementer\t: 0x41" in text and "CPU variant\t: 0x4" in text
    assert "Features\t: fp asimddp i8mm" in text
    assert text.count("CPU revision\t: 1\n") == 2


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "x86_64"])
def test_arm64_sessions_leave_out_the_fma_fusion_and_kleidiai(monkeypatch, machine):
    """On ARM64 the runtime's sessions leave out MatMulIntegerToFloatFusion and KleidiAI's kernels
    (x86's bits; fp32 closest to x86's on SME CPUs); x86 keeps both."""
    import platform

    from edgeae.runtime.session import session_options

    monkeypatch.setattr(platform, "machine", lambda: machine)
    for key, arm, mine in (("optimization.disable_specified_optimizers", "MatMulIntegerToFloatFusion", ""),
                           ("mlas.disable_kleidiai", "1", "0")):
        opts = session_options(1)
        if machine == "x86_64":
            with pytest.raises(RuntimeError, match="does not have configuration"):
                opts.get_session_config_entry(key)
        else:
            assert opts.get_session_config_entry(key) == arm
            assert session_options(1, **{key: mine}).get_session_config_entry(key) == mine  # a caller's entry wins


def test_compress_without_constriction_writes_the_same_stream(monkeypatch, mlp_bundle, tmp_path):
    """Where constriction is not installed (no ARM64 wheel), the CLI's compress and decompress
    use the built-in range coder: the same stream, the same codes back."""
    from click.testing import CliRunner

    from edgeae.cli import cli

    pytest.importorskip("constriction", reason="the stream written with constriction is the reference")
    x = str(mlp_bundle / "samples.npy")
    for args in (["compress", str(mlp_bundle), x, "-o", str(tmp_path / "c.eae")],
                 ["decompress", str(mlp_bundle), str(tmp_path / "c.eae"), "-o", str(tmp_path / "c.npy")]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
    monkeypatch.setitem(sys.modules, "constriction", None)  # import constriction -> ModuleNotFoundError
    for args in (["compress", str(mlp_bundle), x, "-o", str(tmp_path / "b.eae")],
                 ["decompress", str(mlp_bundle), str(tmp_path / "c.eae"), "-o", str(tmp_path / "b.npy")]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
    assert (tmp_path / "b.eae").read_bytes() == (tmp_path / "c.eae").read_bytes()
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "c.npy"))
