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
from edgeae.bench.report import BenchResult, Row, paired_ratio, percentiles, recommend, self_check
from edgeae.bench.timing import block_order, block_sizes, blocks, interleave, median_ci
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


def test_blocks_visit_every_variant_once_per_round_first_one_rotating():
    assert block_order(3, 4) == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    log: list[str] = []
    runners = [lambda: log.append("A"), lambda: log.append("B")]
    timed = blocks(runners, rounds=3, iterations=6, warmup=1, settle=1)
    assert timed.per_block == [2, 2]
    # warm-up A, B; then per round a block of each: 1 settling call + 2 timed calls
    assert "".join(log) == "AB" + "AAA" + "BBB" + "BBB" + "AAA" + "AAA" + "BBB"
    assert [len(c) for c in timed.calls] == [6, 6] and [len(r) for r in timed.rounds] == [3, 3]


def test_block_sizes_share_the_duration_in_time():
    # 1 s over 10 rounds and 2 runners = 50 ms per block: 5,000 calls of 10 us, 10 of 5 ms
    assert block_sizes([10_000, 5_000_000], rounds=10, duration=1.0) == [5000, 10]
    assert block_sizes([1e12], rounds=10, duration=1.0) == [1]  # at least one call
    assert block_sizes([10_000, 5_000_000], rounds=4, duration=1.0, iterations=10) == [3, 3]


def test_median_ci_is_the_sign_test_interval():
    med, lo, hi = median_ci(list(range(1, 13)))  # 12 values: 3rd and 10th
    assert (med, lo, hi) == (6.5, 3, 10)
    assert median_ci([5, 1, 3, 2, 4, 6]) == (3.5, 1, 6)  # 6 values: min and max (1 - 2/64 >= 95%)
    assert median_ci([1, 2, 3, 4, 5]) == (3, None, None)  # 5 values cannot give 95%


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
def _row(variant, ms, psnr_db, graph="end-to-end", batch=256, threads=1, spread=0.01):
    """A row whose 12 rounds scatter by +-``spread`` around ``ms`` (the same pattern for every variant)."""
    rounds = [ms * (1 + spread * ((i % 5) - 2) / 2) for i in range(12)]
    return Row(variant, graph, "CPUExecutionProvider", batch, threads, p50_ms=ms, block_ms=ms, rounds_ms=rounds,
               throughput=batch / ms * 1e3, psnr=psnr_db)


def test_paired_ratio_resolves_only_what_the_rounds_separate():
    fp32 = _row("fp32", 1.0, 20.0)
    got = paired_ratio(fp32, _row("int8-static", 0.5, 20.0))
    assert got["ratio"] == 2.0 and got["resolved"] and got["faster"] and got["rounds"] == 12
    # rounds that disagree: fp32 faster in half of them
    noisy = _row("int8-static", 1.0, 20.0)
    noisy.rounds_ms = [0.9, 1.1] * 6
    got = paired_ratio(fp32, noisy)
    assert got["lo"] < 1.0 < got["hi"] and not got["resolved"] and not got["faster"]
    few = _row("fp16", 0.5, 20.0)
    few.rounds_ms = few.rounds_ms[:5]
    assert paired_ratio(fp32, few) is None  # rounds differ in number: not paired


def test_recommend_needs_a_resolved_difference_within_budget():
    rows = [_row("fp32", 1.0, 20.0), _row("int8-dynamic", 0.4, 19.7), _row("fp16", 0.25, 19.0),
            _row("ort-bare", 0.1, None), _row("int8-static", 0.1, 20.0, graph="encoder")]
    rec = recommend(rows, 0.5)
    assert len(rec) == 1
    assert rec[0]["variant"] == "int8-dynamic" and rec[0]["graph"] == "end-to-end"
    assert rec[0]["speedup_vs_fp32"] == 2.5 and rec[0]["psnr_drop"] == 0.3 and rec[0]["interval"][0] > 1
    assert recommend(rows, 1.0)[0]["variant"] == "fp16"
    assert recommend([_row("fp32", 1.0, 20.0), _row("fp16", 0.25, None)], 0.5)[0]["variant"] == "fp32"
    # 3% faster on the median, but the rounds do not separate it from fp32: fp32 stays
    close = _row("int8-static", 0.97, 20.0)
    close.rounds_ms = [0.97 * (1.1 if i % 2 else 0.9) for i in range(12)]
    rec = recommend([_row("fp32", 1.0, 20.0), close], 0.5)[0]
    assert rec["variant"] == "fp32" and rec["unresolved"] == ["int8-static"] and rec["speedup_vs_fp32"] == 1.0
    # resolved, but 2% is inside the method's 5% tolerance: fp32 stays
    slight = _row("int8-static", 0.98, 20.0)
    rec = recommend([_row("fp32", 1.0, 20.0), slight], 0.5)[0]
    assert rec["variant"] == "fp32" and rec["unresolved"] == ["int8-static"]
    assert recommend([_row("fp32", 1.0, 20.0), slight], 0.5, min_gain=0.0)[0]["variant"] == "int8-static"
    # clearly faster, but fp32's row failed its self-check: the blocks are not trusted
    base, fast = _row("fp32", 1.0, 20.0), _row("int8-static", 0.5, 20.0)
    base.check = 1.2
    assert recommend([base, fast], 0.5)[0]["variant"] == "fp32"
    # separate thread counts are separate runs of blocks: one recommendation each
    rec = recommend([_row("fp32", 1.0, 20.0), _row("fp32", 0.6, 20.0, threads=2),
                     _row("int8-static", 0.5, 20.0, threads=2)], 0.5)
    assert [(r["threads"], r["variant"]) for r in rec] == [(1, "fp32"), (2, "int8-static")]


def test_self_check_flags_rows_off_timeit():
    rows = [_row("fp32", 1.0, 20.0), _row("int8-static", 0.5, 20.0)]
    assert self_check(rows) is None
    rows[0].check, rows[1].check = 1.01, 0.97
    got = self_check(rows)
    assert got["ok"] and got["outside"] == 0 and got["worst"]["variant"] == "int8-static"
    rows[1].check = 1.08
    got = self_check(rows)
    assert not got["ok"] and got["outside"] == 1 and got["worst"]["check"] == 1.08


def test_ratios_against_targets():
    r = BenchResult("b", "mlp", 0.5, settings={})
    r.rows = [_row("fp32", 0.011, 20.0, "encoder", 1), _row("ort-bare", 0.010, None, "encoder", 1),
              _row("torch-eager", 0.022, 20.0, "encoder", 1),
              _row("fp32", 1.0, 20.0, "encoder"), _row("int8-static", 0.4, 19.8, "encoder"),
              _row("int8-dynamic", 0.3, 18.0, "encoder")]
    r.ceiling = {"batch": 256, "macs": 256 * 1000, "macs_per_s": 512e6}
    r.finish()
    assert r.ratios["overhead_vs_bare"] == 1.1
    assert r.ratios["speedup_vs_torch"] == 2.0
    assert (r.ratios["int8_speedup"], r.ratios["int8_variant"]) == (2.5, "int8-static")  # dynamic: over budget
    lo, hi = r.ratios["intervals"]["int8_speedup"]
    assert lo <= 2.5 <= hi
    assert r.ratios["ceiling_ratio"] == 0.5  # 256 samples/ms x 1000 MAC = 256e6 of 512e6
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
    assert all(len(r.rounds_ms) == 2 and r.timeit_ms > 0 and r.check > 0 for r in result.rows)  # self-check ran
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
    assert any(line.startswith("- recommendation batch 1 (CPU, 1 thread(s)):") for line in md)
    table = result.render("table")
    assert "overhead_vs_bare:" in table and "allow_spinning 0" in table and "\nself-check: " in table
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
    (["--precision", "fp8"], "Error: unknown precision 'fp8'; choose from: fp32, fp16, int8-dynamic, int8-static "
                             "(int8 = int8-static)\n"),
    (["--precision", "fp16"], "Error: precision 'fp16' is not in bundle {b}; it has: fp32, int8-dynamic "
                              "(re-export with --precision fp16 to add it)\n"),
    (["--precision", "int8"], "Error: precision 'int8' (int8-static) is not in bundle {b}; it has: fp32, "
                              "int8-dynamic (re-export with --precision int8-static to add it)\n"),
    (["--graph", "enc"], "Error: unknown graph 'enc'; choose from: encoder, decoder, end-to-end\n"),
    (["--batch", "0"], "Error: --batch must be positive integers, got '0'\n"),
    (["--threads", "one"], "Error: --threads must be comma-separated positive integers, got 'one'\n"),
    (["--duration", "0"], "Error: --duration must be > 0 s and --iterations a positive integer, got 0.0, None\n"),
    (["--max-psnr-drop", "-1"], "Error: --max-psnr-drop must be >= 0 dB, got -1.0\n"),
    (["--rounds", "0"], "Error: --rounds must be a positive integer, got 0\n"),
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
    from edgeae.bench.plots import plot

    text = result.to_json()
    again = BenchResult.from_dict(json.loads(text))
    assert again.to_json() == text  # every row, ratio and recommendation survives the round trip
    png = plot(again, tmp_path / "again.png", title="digits")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_labels_of_nearby_points_stack():
    from edgeae.bench.plots import _label_lifts

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


def test_call_by_call_method_still_runs_and_a_bad_method_is_refused(bundle):
    folder, _ = bundle
    r = run_bench(folder, graphs=("encoder",), batches=(1,), threads=(1,), iterations=4, warmup=1, ceiling=False,
                  method="calls", rounds=2)
    assert {row.variant for row in r.rows} == {"fp32", "int8-dynamic", "ort-bare"}
    assert all(row.calls == 4 and len(row.rounds_ms) == 2 for row in r.rows)
    assert r.settings["timing"].startswith("variants alternated call by call")
    with pytest.raises(ConfigError, match="unknown method 'abab'; choose from: blocks, calls"):
        run_bench(folder, method="abab")
