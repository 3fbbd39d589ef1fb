"""The latency harness: statistics, interleaving, reports, recommendation, CLI (no timing asserted)."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgeae.bench.harness import encoder_matmuls, measure_ceiling, run_bench
from edgeae.bench.report import BenchResult, Row, percentiles, recommend
from edgeae.bench.timing import interleave
from edgeae.cli import cli
from edgeae.errors import ConfigError
from edgeae.runtime.metrics import psnr
from tests._bundles import digits_uint8, make_bundle

FAST = ["--iterations", "2", "--warmup", "1", "--batch", "1,4", "--threads", "1", "--no-ceiling"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "b"
    return make_bundle(folder, "image")


@pytest.fixture(scope="module")
def result(bundle):
    folder, _ = bundle
    return run_bench(folder, batches=(1, 4), threads=(1,), iterations=2, warmup=1, ceiling=False)


# ---- statistics and timing loop -------------------------------------------------------
def test_percentiles_linear_interpolation():
    ns = np.arange(1, 101) * 1_000_000  # 1 .. 100 ms
    assert percentiles(ns) == {"p50": 50.5, "p90": 90.1, "p99": 99.01}
    assert percentiles([2_000_000]) == {"p50": 2.0, "p90": 2.0, "p99": 2.0}
    with pytest.raises(ConfigError, match="no timed calls"):
        percentiles([])


def test_interleave_alternates_after_warmup():
    log: list[str] = []
    runners = [lambda: log.append("A"), lambda: log.append("B"), lambda: log.append("C")]
    times = interleave(runners, iterations=3, warmup=2)
    assert log == list("AABBCC") + list("ABC") * 3
    assert [len(t) for t in times] == [3, 3, 3]
    assert all(isinstance(v, int) and v >= 0 for t in times for v in t)


def test_interleave_by_duration_has_a_minimum_of_rounds():
    log: list[str] = []
    times = interleave([lambda: log.append("A"), lambda: log.append("B")], duration=1e-9, warmup=0)
    assert len(times[0]) == len(times[1]) >= 5
    assert log[:4] == ["A", "B", "A", "B"]


# ---- work count ------------------------------------------------------------------------
def test_encoder_matmuls_from_model_config():
    mlp = {"kind": "mlp", "input_shape": [1, 28, 28], "hidden": [128], "code_size": 32}
    assert encoder_matmuls(mlp, 256) == [(256, 784, 128), (256, 128, 32)]
    conv = {"kind": "conv", "input_shape": [1, 28, 28], "channels": [16, 32], "code_size": 32}
    assert encoder_matmuls(conv, 2) == [(2 * 14 * 14, 9, 16), (2 * 7 * 7, 16 * 9, 32), (2, 32 * 7 * 7, 32)]
    vae = {"kind": "vae", "input_shape": [64], "hidden": [64], "code_size": 8}
    assert encoder_matmuls(vae, 1) == [(1, 64, 64), (1, 64, 8), (1, 64, 8)]


def test_measure_ceiling_counts_the_work(bundle):
    got = measure_ceiling([(8, 16, 4), (8, 4, 2)], seconds=0.01)
    assert got["macs"] == 8 * 16 * 4 + 8 * 4 * 2
    assert got["macs_per_s"] > 0 and got["threads"] == 1 and got["calls"] >= 5
    assert "encoder_p50_ms" not in got
    x = (digits_uint8()[:8] / 255.0).astype(np.float32)
    got = measure_ceiling(encoder_matmuls({"input_shape": [1, 8, 8], "code_size": 16}, 8), 0.01, bundle[0], x)
    assert got["shapes"] == [[8, 64, 16]] and got["encoder_p50_ms"] > 0, got


# ---- recommendation and ratios -----------------------------------------------------------
def _row(variant, throughput, psnr_db, graph="end-to-end", batch=256, threads=1, p50=1.0):
    return Row(variant, graph, "CPUExecutionProvider", batch, threads, p50_ms=p50, throughput=throughput,
               psnr=psnr_db)


def test_recommend_fastest_within_budget():
    rows = [_row("fp32", 100, 20.0), _row("int8-dynamic", 250, 19.7), _row("fp16", 400, 19.0),
            _row("ort-bare", 900, None), _row("int8-static", 999, 20.0, graph="encoder")]
    rec = recommend(rows, 0.5)
    assert len(rec) == 1
    assert rec[0]["variant"] == "int8-dynamic" and rec[0]["graph"] == "end-to-end"
    assert rec[0]["speedup_vs_fp32"] == 2.5 and rec[0]["psnr_drop"] == 0.3
    assert recommend(rows, 1.0)[0]["variant"] == "fp16"
    assert recommend([_row("fp32", 100, 20.0), _row("fp16", 400, None)], 0.5)[0]["variant"] == "fp32"


def test_ratios_against_targets():
    r = BenchResult("b", "mlp", 0.5, settings={})
    r.rows = [_row("fp32", 100, 20.0, "encoder", 1, p50=0.011), _row("ort-bare", 110, None, "encoder", 1, p50=0.010),
              _row("torch-eager", 50, 20.0, "encoder", 1, p50=0.022),
              _row("fp32", 1000, 20.0, "encoder"), _row("int8-static", 2500, 19.8, "encoder"),
              _row("int8-dynamic", 3000, 18.0, "encoder")]
    r.ceiling = {"batch": 256, "macs": 256 * 1000, "macs_per_s": 2e6}
    r.finish()
    assert r.ratios["overhead_vs_bare"] == 1.1
    assert r.ratios["speedup_vs_torch"] == 2.0
    assert (r.ratios["int8_speedup"], r.ratios["int8_variant"]) == (2.5, "int8-static")  # dynamic: over budget
    assert r.ratios["ceiling_ratio"] == 0.5  # 1000 samples/s x 1000 MAC = 1e6 of 2e6
    targets = r.to_dict()["targets"]
    assert targets["overhead_vs_bare"]["met"] is True and targets["ceiling_ratio"]["met"] is False


# ---- a real run on a tiny bundle -----------------------------------------------------------
def test_rows_cover_variants_graphs_batches(result, bundle):
    folder, ref = bundle
    keys = {(r.variant, r.graph, r.batch) for r in result.rows}
    for b in (1, 4):
        for v in ("fp32", "int8-dynamic"):
            assert {(v, g, b) for g in ("encoder", "decoder", "end-to-end")} <= keys
        assert {("ort-bare", "encoder", b), ("ort-bare", "decoder", b)} <= keys
    assert len(result.rows) == 16 and all(r.status == "ok" and r.calls == 2 for r in result.rows)
    x = np.load(folder / "samples.npy") / 255.0
    expected = psnr(x, ref.decode(ref.encode(x)))
    fp32 = [r for r in result.rows if r.variant == "fp32"]
    assert all(r.psnr == pytest.approx(expected, abs=1e-2) for r in fp32)
    enc = next(r for r in fp32 if r.graph == "encoder")
    assert enc.size == (folder / "encoder.onnx").stat().st_size
    assert enc.p50_ms <= enc.p90_ms <= enc.p99_ms
    assert result.settings["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert result.settings["allow_spinning"] == "0" and result.settings["threads"] == [1]
    assert "overhead_vs_bare" in result.ratios
    assert [rec["batch"] for rec in result.recommendations] == [1, 4]


def test_outputs_json_csv_markdown_table(result):
    data = json.loads(result.render("json"))
    assert len(data["rows"]) == 16 and set(data["targets"]) == {"overhead_vs_bare", "speedup_vs_torch",
                                                                "int8_speedup", "ceiling_ratio"}
    rows = list(csv.DictReader(io.StringIO(result.render("csv"))))
    assert len(rows) == 16 and rows[0]["variant"] == "fp32" and float(rows[0]["p50_ms"]) > 0
    md = result.render("markdown").splitlines()
    assert md[0].startswith("| variant | graph | provider | batch |") and len([m for m in md if m.startswith("| ")]) == 17
    assert any(line.startswith("- recommendation batch 1:") for line in md)
    table = result.render("table")
    assert "overhead_vs_bare:" in table and "allow_spinning 0" in table
    with pytest.raises(ConfigError, match="unknown format 'xml'"):
        result.render("xml")


# ---- CLI -----------------------------------------------------------------------------------
def _bench(*args):
    return CliRunner().invoke(cli, ["bench", *map(str, args)])


def test_cli_json_to_file_and_plot(bundle, tmp_path):
    folder, _ = bundle
    out, png = tmp_path / "r.json", tmp_path / "p.png"
    r = _bench(folder, *FAST, "--graph", "encoder", "--format", "json", "-o", out, "--plot", png)
    assert r.exit_code == 0, r.output
    assert f"Wrote {out} (6 rows, json)" in r.output
    assert len(json.loads(out.read_text())["rows"]) == 6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--precision", "fp8"], "Error: unknown precision 'fp8'; choose from: fp32, fp16, int8-dynamic, int8-static\n"),
    (["--precision", "fp16"], "Error: precision 'fp16' is not in bundle {b}; it has: fp32, int8-dynamic "
                              "(re-export with --precision to add it)\n"),
    (["--graph", "enc"], "Error: unknown graph 'enc'; choose from: encoder, decoder, end-to-end\n"),
    (["--batch", "0"], "Error: --batch must be positive integers, got '0'\n"),
    (["--threads", "one"], "Error: --threads must be comma-separated positive integers, got 'one'\n"),
    (["--duration", "0"], "Error: --duration must be > 0 s and --iterations a positive integer, got 0.0, None\n"),
    (["--max-psnr-drop", "-1"], "Error: --max-psnr-drop must be >= 0 dB, got -1.0\n"),
])
def test_cli_bad_options(bundle, args, message):
    folder, _ = bundle
    r = _bench(folder, *args)
    assert r.exit_code == 1
    assert r.output == message.format(b=folder)


def test_cli_unknown_provider(bundle):
    r = _bench(bundle[0], "--provider", "tpu")
    assert r.exit_code == 1
    assert r.output.startswith("Error: execution provider 'tpu' is not available in this onnxruntime; available:")


def test_cli_plot_and_torch_need_their_packages(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = _bench(bundle[0], *FAST, "--plot", "x.png")
    assert r.exit_code == 1
    assert r.output == ("Error: --plot needs matplotlib, which is not installed: pip install matplotlib "
                        "(or leave out --plot)\n")
    monkeypatch.setitem(sys.modules, "torch", None)
    r = _bench(bundle[0], *FAST, "--torch", "runs/x")
    assert r.exit_code == 1
    assert r.output == ("Error: --torch needs PyTorch, which is not installed: pip install 'edgeae[train]' "
                        "(or leave out --torch)\n")


def test_cli_needs_data_without_samples(bundle, tmp_path):
    folder = tmp_path / "nosamples"
    make_bundle(folder, "image")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["samples"] = None
    (folder / "manifest.json").write_text(json.dumps(manifest))
    r = _bench(folder, *FAST)
    assert r.exit_code == 1
    assert r.output == (f"Error: bundle {folder} has no samples.npy: pass --data with held-out samples "
                        "(.npy/.npz, IDX, images, CSV) to benchmark on real inputs\n")
    np.save(tmp_path / "held.npy", digits_uint8()[:32])
    r = _bench(folder, *FAST, "--graph", "end-to-end", "--format", "csv", "--data", tmp_path / "held.npy")
    assert r.exit_code == 0, r.output
    assert r.output.count("\nfp32,end-to-end,") == 2


def test_bench_runs_without_torch_or_onnx(bundle, tmp_path):
    """`edgeae bench` is part of the base install: a subprocess with torch and onnx blocked."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    args = ["edgeae", "bench", str(bundle[0]), *FAST, "--graph", "encoder", "--format", "json"]
    code = ("import sys; [sys.modules.__setitem__(m, None) for m in ('torch', 'onnx', 'onnxscript')]; "
            f"from edgeae.cli import main; sys.argv = {args!r}; main()")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {row["variant"] for row in json.loads(r.stdout)["rows"]} == {"fp32", "int8-dynamic", "ort-bare"}


def test_saved_json_reads_back_and_replots(result, tmp_path):
    from edgeae.bench.report import plot

    text = result.to_json()
    again = BenchResult.from_dict(json.loads(text))
    assert again.to_json() == text  # every row, ratio and recommendation survives the round trip
    png = plot(again, tmp_path / "again.png", title="digits")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_labels_of_nearby_points_stack():
    from edgeae.bench.report import _label_lifts

    points = [("fp32", 820.0, 19.551), ("fp16", 410.0, 19.551), ("int8-static", 229.0, 19.533),
              ("torch-eager", 818.0, 19.551)]
    assert _label_lifts(points) == [0, 0, 0, 1]  # torch-eager sits on fp32: its label goes one line up


def test_cli_torch_baseline_no_bare_and_cpu_provider(mlp_bundle, mlp_run):
    """--torch adds PyTorch eager on the same weights, --no-bare drops the bare session, --provider cpu."""
    r = _bench(mlp_bundle, *FAST, "--torch", mlp_run, "--no-bare", "--provider", "cpu", "--format", "json",
               "--precision", "fp32,int8-dynamic")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    assert {row["variant"] for row in rows} == {"fp32", "int8-dynamic", "torch-eager"}  # no ort-bare
    assert {row["provider"] for row in rows} == {"CPUExecutionProvider"}
    torch_rows = [row for row in rows if row["variant"] == "torch-eager"]
    assert {(row["graph"], row["batch"]) for row in torch_rows} == {
        (g, b) for g in ("encoder", "decoder", "end-to-end") for b in (1, 4)}
    import edgeae.runtime as rt

    samples = np.load(mlp_bundle / "samples.npy")
    expected = psnr(samples / 255.0, rt.load(mlp_bundle).reconstruct(samples))
    # the same weights in PyTorch and in the fp32 graphs reconstruct equally well
    assert {round(row["psnr"], 3) for row in rows if row["variant"] == "fp32"} == {round(expected, 3)}
    assert all(row["psnr"] == pytest.approx(expected, abs=1e-3) for row in torch_rows)
    assert all(row["status"] == "ok" and row["p50_ms"] > 0 for row in torch_rows)
    r = _bench(mlp_bundle, *FAST, "--format", "json", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    assert {row["variant"] for row in json.loads(r.output)["rows"]} == {"fp32", "ort-bare"}  # bare by default
