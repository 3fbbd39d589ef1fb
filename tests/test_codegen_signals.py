"""`edgeae codegen` on 1-D conv bundles (signal windows (C, T)): Conv1d / ConvTranspose1d as the 2-D
kernels with height 1, and the streaming C API (time steps in, one `.eae` chunk per window),
against ONNX Runtime, the integer reference and the Python runtime's bytes; on Cortex-M4F (slow)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402

from edgeae.cli import cli  # noqa: E402
from edgeae.codegen import UnsupportedOpError, generate_c  # noqa: E402
from edgeae.codegen.graph import Node  # noqa: E402
from edgeae.codegen.lower_fp32 import conv_params  # noqa: E402
from edgeae.codegen.stream_c import stream_layout  # noqa: E402
from edgeae.errors import ValidationError  # noqa: E402
from tests._codegen_bundles import needs_compilers  # noqa: E402
from tests._signal_bundles import SIG_STEPS, signal_bundle, synthetic_signals  # noqa: E402

pytestmark = needs_compilers
BASIC = Path(__file__).resolve().parents[1] / "build" / "timeseries" / "BasicMotions"
_NO_DATA = "BasicMotions .ts files not found (make timeseries-data)"


@pytest.fixture(scope="module")
def signals(tmp_path_factory) -> Path:
    x = synthetic_signals(160)
    return signal_bundle(tmp_path_factory.mktemp("sig") / "b", x[:128], x[128:])


@pytest.fixture(scope="module")
def generated(signals, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("c") / "c"
    res = CliRunner().invoke(cli, ["codegen", str(signals), "-o", str(out), "--prefix", "sig"])
    assert res.exit_code == 0, res.output
    assert "stream: 6 x 16 windows" in res.output
    return out


def test_conv1d_params_are_2d_with_height_1():
    node = Node("Conv", "c", ["x", "w"], ["y"], {"kernel_shape": [5], "strides": [2], "pads": [2, 2],
                                                 "dilations": [3]})
    p = conv_params(node, (1, 6, 100), (1, 4, 50), np.zeros((4, 6, 5), np.float32))
    assert (p["C"], p["H"], p["W"], p["M"], p["OH"], p["OW"]) == (6, 1, 100, 4, 1, 50)
    assert (p["KH"], p["KW"], p["SH"], p["SW"], p["PT"], p["PL"], p["DH"], p["DW"]) == (1, 5, 1, 2, 0, 2, 1, 3)
    with pytest.raises(UnsupportedOpError, match="only 1-D .* and 2-D .* convolutions"):
        conv_params(node, (1, 2, 4, 4, 4), (1, 2, 4, 4, 4), np.zeros((2, 2, 3, 3, 3), np.float32))


def test_conv1d_bundle_fp32_and_int8(generated):
    report = json.loads((generated / "codegen.json").read_text())
    by = {g["name"]: g for g in report["graphs"]}
    assert set(by) == {f"sig_{r}_{p}" for r in ("encoder", "decoder") for p in ("fp32", "int8")}
    for g in by.values():
        assert g["samples"] == 32
        if g["precision"] == "fp32":
            assert all(c["max_abs"] <= c["tolerance"] for c in g["checks"]["onnxruntime"]["outputs"].values())
        else:  # bit-identical to the integer reference; and here to ONNX Runtime too
            assert all(c["differ"] == 0 for c in g["checks"]["reference"]["outputs"].values())
            assert all(c["differ"] == 0 for c in g["checks"]["onnxruntime"]["outputs"].values())
    src = (generated / "sig_decoder_int8.c").read_text()
    assert "qconvt_" in src and "qconv_" in (generated / "sig_encoder_int8.c").read_text()
    assert by["sig_encoder_fp32"]["inputs"][0][2] == 6 * SIG_STEPS
    stream = report["compress"]["stream"]
    assert stream["written"] and {r["hop"] for r in stream["runs"]} == {8, 16, 19}
    assert all(r["windows"] > 0 for r in stream["runs"])
    head = (generated / "sig_stream.h").read_text()
    assert "#define SIG_STREAM_RING_FLOATS 96" in head and "sig_stream_chunk_int8(" in head
    assert "sig_stream_chunk_fp32(" in head and "malloc" not in (generated / "sig_stream.c").read_text()


def test_stream_layout_only_for_signal_windows(signals):
    from edgeae.runtime import read_manifest

    m = read_manifest(signals)
    lay = stream_layout(m, raw=False)
    assert lay.channels == 6 and lay.steps == SIG_STEPS
    nz = np.asarray(m.normalization["offset"], np.float32).reshape(6, SIG_STEPS)
    np.testing.assert_array_equal(lay.offset, nz[:, 0])
    raw = stream_layout(m, raw=True)  # raw-I/O encoders fold the normalization in: the stream passes samples on
    assert not raw.offset.any() and (raw.inv_scale == 1).all()
    m.normalization = dict(m.normalization, offset=np.arange(6 * SIG_STEPS, dtype=np.float32).tolist())
    assert "differs along time" in stream_layout(m, raw=False)
    m.input = dict(m.input, shape=[1, 4, 4])
    assert "not a signal window" in stream_layout(m, raw=False)


def test_wrong_stream_is_refused_and_nothing_written(signals, tmp_path, monkeypatch):
    """The generation check compares the C stream with Python's bytes: a wrong normalization fails it."""
    import edgeae.codegen.stream_c as sc

    real = sc.stream_sources

    def skewed(prefix, encoders, code_size, layout):
        layout.offset = layout.offset + np.float32(0.25)
        return real(prefix, encoders, code_size, layout)

    monkeypatch.setattr(sc, "stream_sources", skewed)
    with pytest.raises(ValidationError, match="stream_chunk_.*differs from Python"):
        generate_c(signals, tmp_path / "c", max_samples=8)
    assert not (tmp_path / "c").exists()


_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include "sig_stream.h"

/* A sensor loop: one time step at a time from stdin (STEPS x 6 float32), a window every HOP steps,
   a restart every CASE steps; the stream on stdout. */
static float ring[SIG_STREAM_RING_FLOATS];

int main(int argc, char **argv)
{
    size_t steps = (size_t)atoi(argv[1]), hop = (size_t)atoi(argv[2]), per_case = (size_t)atoi(argv[3]), t, len;
    float step[SIG_STREAM_CHANNELS];
    uint8_t buf[256];
    sig_stream s;
    if (argc != 5 || sig_stream_init(&s, ring, SIG_STREAM_RING_FLOATS, hop, NULL) != EAE_OK) return 2;
    if (sig_stream_header(&s, buf, sizeof buf, &len) != EAE_OK) return 3;
    fwrite(buf, 1, len, stdout);
    for (t = 0; t < steps; ++t) {
        if (fread(step, sizeof step, 1, stdin) != 1) return 4;
        if (sig_stream_push(&s, step, 1) != 1) return 5;
        if (sig_stream_ready(&s)) {
            int rc = argv[4][0] == 'f' ? sig_stream_chunk_fp32(&s, buf, sizeof buf, &len)
                                       : sig_stream_chunk_int8(&s, buf, sizeof buf, &len);
            if (rc != EAE_OK) return 6;
            fwrite(buf, 1, len, stdout);
        }
        if (per_case && (t + 1) % per_case == 0) sig_stream_restart(&s);
    }
    return 0;
}
"""


def _loop(generated: Path, tmp_path: Path) -> Path:
    (tmp_path / "loop.c").write_text(_LOOP)
    exe = tmp_path / "loop"
    files = [str(generated / n) for n in ("eae_codec.c", "sig_latent_codec.c", "sig_stream.c", "sig_encoder_fp32.c",
                                          "sig_encoder_int8.c")]
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(generated), str(tmp_path / "loop.c"),
                    *files, "-o", str(exe), "-lm"], check=True)
    return exe


def _python_stream(bundle: Path, precision: str, windows: np.ndarray, path: Path) -> bytes:
    """`edgeae compress` of the first window, then `--append` of each next one (the Python runtime)."""
    from edgeae.runtime import load
    from edgeae.runtime.compress import append, compress

    model = load(bundle, precision=precision)
    path.write_bytes(compress(model, windows[:1]))
    for i in range(1, len(windows)):
        append(model, path, windows[i:i + 1])
    return path.read_bytes()


@pytest.mark.skipif(not BASIC.is_dir(), reason=_NO_DATA)
def test_stream_on_basicmotions_equals_python(generated, signals, tmp_path):
    """Real IMU recordings (BasicMotions TEST: 6 channels x 100 steps per case), pushed step by step
    into the C stream with overlapping windows: the bytes of the Python runtime, both precisions."""
    from edgeae.data.tsfile import read_ts, window_series
    from edgeae.runtime import load
    from edgeae.runtime.compress import codecs_of, compress
    from edgeae.runtime.stream import decompress_symbols

    bm = tmp_path / "bm"  # the tiny model with its normalization fitted on BasicMotions TRAIN windows
    train = window_series(read_ts(BASIC / "BasicMotions_TRAIN.ts").x, SIG_STEPS, SIG_STEPS)
    cases = read_ts(BASIC / "BasicMotions_TEST.ts").x[:12]  # (12, 6, 100)
    signal_bundle(bm, train, window_series(cases, SIG_STEPS, SIG_STEPS)[:16])
    out = tmp_path / "c"
    generate_c(bm, out, prefix="sig")
    exe = _loop(out, tmp_path)
    feed = np.ascontiguousarray(cases.transpose(0, 2, 1)).astype(np.float32).tobytes()  # time-major steps
    for precision, tag, hop, per_case in (("int8-static", "i", 6, 100), ("fp32", "f", 16, 100), ("int8-static", "i", 10, 0)):
        got = subprocess.run([str(exe), str(12 * 100), str(hop), str(per_case), tag], input=feed,
                             capture_output=True, check=True).stdout
        windows = window_series(cases if per_case else cases.transpose(0, 2, 1).reshape(-1, 6), SIG_STEPS, hop)
        want = _python_stream(bm, precision, windows, tmp_path / f"py_{tag}{hop}.eae")
        assert got == want, (precision, hop)
        # the symbols of one `edgeae compress` call on all windows (one chunk): only the framing differs
        model = load(bm, precision=precision)
        codec, mid = codecs_of(model.manifest)[0]
        np.testing.assert_array_equal(decompress_symbols(codec, mid, got),
                                      decompress_symbols(codec, mid, compress(model, windows)))


def test_cli_compress_of_one_window_is_header_plus_first_chunk(generated, signals, tmp_path):
    """`edgeae compress` (the CLI) on one window writes the bytes the C stream writes for it."""
    from edgeae.runtime import read_manifest

    x = np.load(signals / read_manifest(signals).samples["file"])[:3]  # (3, 6, 16)
    exe = _loop(generated, tmp_path)
    got = subprocess.run([str(exe), str(SIG_STEPS), "0", "0", "i"], input=np.ascontiguousarray(
        x[0].T).astype(np.float32).tobytes(), capture_output=True, check=True).stdout
    np.save(tmp_path / "w.npy", x[:1])
    res = CliRunner().invoke(cli, ["compress", str(signals), str(tmp_path / "w.npy"), "-o", str(tmp_path / "w.eae"),
                                   "--precision", "int8-static"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "w.eae").read_bytes() == got


@pytest.mark.slow
def test_conv1d_units_and_stream_on_cortex_m4f(signals, generated, tmp_path):
    from edgeae.codegen.cortexm import run_generated
    from edgeae.codegen.cortexm_stream import run_stream_target
    from edgeae.codegen.toolchain import toolchain_problem

    problem = toolchain_problem()
    if problem:
        pytest.skip(problem)
    results = run_generated(signals, generated, targets=["cortex-m4f"], samples=4)
    assert len(results) == 4
    for r in results:
        assert r.max_abs_vs_host <= (0.0 if r.unit.endswith("int8") else 1e-5), r
    rec = synthetic_signals(4, seed=3).transpose(0, 2, 1).reshape(-1, 6)  # 64 steps
    for tag in ("int8", "fp32"):
        r = run_stream_target(signals, generated, rec, hop=5, tag=tag)
        assert r["windows"] == 10 and r["equal_host"] and r["equal_edgeae"], r
        assert r["instructions_per_window"] > 0 and r["stack_bytes"] > 0
