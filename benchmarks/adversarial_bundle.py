"""Adversarial pass on a real bundle: damaged manifests and swapped graphs through the API and the CLI.

Each case copies the bundle, damages it, and runs ``edgeae info``, then for each precision
``rt.load`` / encode / decode / reconstruct / compress / decompress and the CLI commands
``encode``, ``reconstruct``, ``decode``, ``compress`` and ``decompress``. A result is
either success or a refusal: an ``EdgeAEError`` from the API, exit 1 with an ``Error:``
line and no traceback from the CLI. Anything else is counted as a finding.

Cases: every value class (huge and negative ints, over-long ints, floats incl. NaN/inf,
wrong types, lone surrogates, deep nesting) at each manifest field; graphs swapped for
other valid graphs (s8 weights, encoder for decoder), for damaged bytes, and graphs whose
weights live in external data files (listed, not listed, outside the folder, missing,
changed).

    python -m benchmarks.adversarial_bundle BUNDLE [--precisions fp32,int8-static] [--quick]

Writes benchmarks/results/adversarial_bundle.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
VALUES = ["1" * 5000, "1" * 400, "-1", "0", "-0", "1e308", "NaN", "Infinity", "true", "null", '"x"', "[]", "{}",
          "[1]", '"x\\ud800"', '{"\\ud800": 1}', "[" * 500 + "]" * 500, "9223372036854775808", "0.5"]
FIELDS = [["code_size"], ["kind"], ["variational"], ["input", "shape"], ["input", "shape", 0], ["input", "dtype"],
          ["input", "is_image"], ["normalization", "offset"], ["normalization", "offset", 0],
          ["normalization", "scale", 0], ["normalization", "mode"], ["graphs", 0, "opset"], ["graphs", 0, "size"],
          ["graphs", 1, "fixed_batch"], ["graphs", 1, "inputs"], ["graphs", 1, "inputs", 0, "shape", 1],
          ["graphs", 0, "outputs", 0, "dtype"], ["graphs", 2, "raw_io"], ["graphs", 0, "external_data"],
          ["samples", "count"], ["samples"], ["validation", "fp32"], ["validation", "fp32", "codec"],
          ["validation", "fp32", "codec", "6"], ["validation", "fp32", "psnr"], ["validation", "fp32", "latency_ms"],
          ["codec"], ["codec", 0], ["codec", 0, "bits"], ["codec", 0, "lo"], ["codec", 0, "lo", 0],
          ["codec", 0, "freqs", 0], ["codec", 0, "freqs", 0, 0], ["codec", 0, "precision"], ["tools"],
          ["tools", "edgeae"], ["created"], ["model"], ["format_version"]]


class Pass:
    """Runs the cases on copies of one bundle and collects findings."""

    def __init__(self, bundle: Path, precisions: list[str], work: Path):
        self.bundle, self.precisions, self.work = bundle, precisions, work
        self.base = json.loads((bundle / "manifest.json").read_text())
        self.x = np.load(bundle / "samples.npy")[:40]
        self.findings: list[dict] = []
        self.calls = 0

    def cli(self, case: str, args: list):
        from click.testing import CliRunner

        from edgeae.cli import cli

        self.calls += 1
        r = CliRunner().invoke(cli, [str(a) for a in args])
        ok = r.exit_code == 0 or (r.exit_code == 1 and isinstance(r.exception, SystemExit) and "Traceback" not in
                                  r.output and any(line.startswith("Error: ") for line in r.output.splitlines()))
        if not ok:
            self.findings.append({"case": case, "call": args[0], "exit": r.exit_code,
                                  "exception": repr(r.exception)[:300], "output": r.output[-300:]})
        return r

    def api(self, case: str, what: str, fn: Callable):
        from edgeae.errors import EdgeAEError

        self.calls += 1
        try:
            return fn()
        except EdgeAEError:
            return None
        except Exception as exc:  # a finding: any other exception
            self.findings.append({"case": case, "call": what, "exception": f"{type(exc).__name__}: {exc}"[:300],
                                  "where": traceback.format_exc()[-500:]})
            return None

    def run(self, case: str, setup: Callable[[Path], None]) -> None:
        import edgeae.runtime as rt
        from edgeae.errors import EdgeAEError
        from edgeae.runtime.compress import compress, decompress

        w, out = self.work / "b", self.work / "out"
        for d in (w, out):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.bundle, w)
        out.mkdir()
        setup(w)
        self.cli(case, ["info", w])
        try:
            rt.read_manifest(w)
        except EdgeAEError:  # refused up front: every command must say so
            self.cli(case, ["encode", w, w / "samples.npy", "-o", out / "c.npy"])
            self.api(case, "load", lambda: rt.load(w))
            return
        np.save(out / "codes.npy", np.zeros((3, int(self.base["code_size"])), np.float32))
        for p in self.precisions:
            m = self.api(case, f"load {p}", lambda p=p: rt.load(w, precision=p))
            if m is not None:
                codes = self.api(case, f"encode {p}", lambda m=m: m.encode(self.x))
                self.api(case, f"reconstruct {p}", lambda m=m: m.reconstruct(self.x))
                if codes is not None:
                    self.api(case, f"decode {p}", lambda m=m, c=codes: m.decode(c, raw=True))
                stream = self.api(case, f"compress {p}", lambda m=m: compress(m, self.x))
                if stream is not None:
                    self.api(case, f"decompress {p}", lambda m=m, s=stream: decompress(m, s))
            opt = ["--precision", p]
            self.cli(case, ["encode", w, w / "samples.npy", "-o", out / f"c{p}.npy", *opt])
            self.cli(case, ["reconstruct", w, w / "samples.npy", *opt])
            self.cli(case, ["decode", w, out / "codes.npy", "-o", out / f"x{p}.npy", *opt])
            if self.cli(case, ["compress", w, w / "samples.npy", "-o", out / f"s{p}.eae", *opt]).exit_code == 0:
                self.cli(case, ["decompress", w, out / f"s{p}.eae", "-o", out / f"d{p}.npy", *opt])

    def value(self, path: list, text: str) -> Callable[[Path], None]:
        """Put the JSON text ``text`` at ``path`` of the manifest (texts json.dumps cannot write)."""
        def setup(w: Path) -> None:
            data = copy.deepcopy(self.base)
            node = data
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = "@@V@@"
            (w / "manifest.json").write_text(json.dumps(data).replace('"@@V@@"', text), encoding="utf-8",
                                             errors="surrogatepass")
        return setup


def _swap(file: str, write: Callable[[Path, Path], None], external: bool = False,
          tamper: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    """Replace ``file`` by ``write(dst, bundle)``, update its size and hash (and external data) in the
    manifest, then ``tamper(bundle)``."""
    from edgeae.runtime.bundle import file_sha256, graph_entry

    def setup(w: Path) -> None:
        write(w / file, w)
        data = json.loads((w / "manifest.json").read_text())
        for g in data["graphs"]:
            if g["file"] == file:
                g["size"], g["sha256"] = (w / file).stat().st_size, file_sha256(w / file)
                if external:
                    g["external_data"] = graph_entry(w / file, g["role"], g["precision"], g["opset"], g["inputs"],
                                                     g["outputs"]).external_data
        (w / "manifest.json").write_text(json.dumps(data))
        if tamper is not None:
            tamper(w)
    return setup


def _missing(w: Path) -> None:
    (w / "w.bin").unlink()


def _scaled(w: Path) -> None:
    weights = w / "w.bin"
    weights.write_bytes((np.frombuffer(weights.read_bytes(), np.float32) * 1.5).astype(np.float32).tobytes())


def _external(location: str) -> Callable[[Path, Path], None]:
    """Write the graph with its weights in ``location`` (relative, absolute or ``../``)."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    def write(dst: Path, w: Path) -> None:
        model = onnx.load(str(dst))
        convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
        onnx.save(model, str(dst))
        target = location if location.startswith("/") else str(w / location)
        if Path(target).resolve() != (w / "w.bin").resolve():
            shutil.move(str(w / "w.bin"), target)
            for t in model.graph.initializer:
                for e in t.external_data:
                    if e.key == "location":
                        e.value = location
            onnx.save(model, str(dst))
    return write


def _graph_cases(bundle: Path, work: Path) -> dict[str, Callable[[Path], None]]:
    def copy_of(src: Path):
        return lambda dst, w: shutil.copyfile(src, dst)

    def data(blob: bytes):
        return lambda dst, w: dst.write_bytes(blob)

    good = (bundle / "encoder.onnx").read_bytes()
    cases = {
        "encoder swapped for the decoder": _swap("encoder.onnx", copy_of(bundle / "decoder.onnx")),
        "decoder swapped for the encoder": _swap("decoder.int8-static.onnx", copy_of(bundle / "encoder.onnx")),
        "random bytes": _swap("encoder.fp16.onnx", data(np.random.default_rng(0).bytes(5000))),
        "truncated graph": _swap("encoder.onnx", data(good[:len(good) // 2])),
        "empty graph": _swap("decoder.onnx", data(b"")),
        "text instead of a graph": _swap("encoder.onnx", data(b"hello world\n" * 100)),
        "external data, listed": _swap("encoder.onnx", _external("w.bin"), external=True),
        "external data, not listed": _swap("encoder.onnx", _external("w.bin")),
        "external data, absolute path": _swap("encoder.onnx", _external(str(work / "abs.bin"))),
        "external data, ../": _swap("encoder.onnx", _external("../up.bin")),
        "external data, missing": _swap("encoder.onnx", _external("w.bin"), external=True, tamper=_missing),
        "external data, scaled by 1.5": _swap("encoder.onnx", _external("w.bin"), external=True, tamper=_scaled),
    }
    for role, p in (("encoder", "int8-static"), ("decoder", "int8-dynamic")):
        cases[f"{role} {p} with s8 weights"] = _swap(f"{role}.{p}.onnx", _s8(role, p))
    return cases


def _s8(role: str, precision: str) -> Callable[[Path, Path], None]:
    """Quantize the bundle's fp32 graph again with s8 (QInt8) weights (dynamic, or static QDQ)."""
    def write(dst: Path, w: Path) -> None:
        import logging

        import onnx
        from onnxruntime import quantization as q

        from edgeae.export.graphs import gemm_to_matmul
        from edgeae.runtime.bundle import read_manifest
        from edgeae.runtime.preprocess import Normalizer

        logging.getLogger().setLevel(logging.ERROR)
        prep = w / "prep.onnx"
        onnx.save_model(gemm_to_matmul(onnx.load(str(w / f"{role}.onnx"))), str(prep))
        if precision == "int8-dynamic":
            q.quantize_dynamic(str(prep), str(dst), weight_type=q.QuantType.QInt8)
        else:
            m = read_manifest(w)
            x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(w / "samples.npy"))[:64]
            reader = type("R", (q.CalibrationDataReader,), {"get_next": lambda s: next(s.it, None)})()
            reader.it = iter([{"x": x[i:i + 32]} for i in range(0, 64, 32)])
            q.quantize_static(str(prep), str(dst), reader, quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
        prep.unlink()
    return write


def main() -> None:
    from edgeae.bench.timing import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--precisions", default="fp32,fp16,int8-dynamic,int8-static",
                    help="precisions run for the swapped-graph cases (value cases: the first and last)")
    ap.add_argument("--quick", action="store_true", help="three value classes per field")
    args = ap.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    with tempfile.TemporaryDirectory() as tmp:
        run = Pass(args.bundle, sorted({precisions[0], precisions[-1]}), Path(tmp))
        values = VALUES[:3] if args.quick else VALUES
        for path in FIELDS:
            for text in values:
                run.run(f"{path} = {text[:24]}", run.value(path, text))
        value_cases = len(FIELDS) * len(values)
        run.precisions = precisions
        graph_cases = _graph_cases(args.bundle, Path(tmp))
        for name, setup in graph_cases.items():
            run.run(name, setup)
    import onnxruntime

    from edgeae.runtime.bundle import read_manifest

    m = read_manifest(args.bundle)
    tables = m.codec if isinstance(m.codec, list) else [m.codec] if m.codec else []
    report = {"machine": machine(), "onnxruntime": onnxruntime.__version__,
              "bundle": {"kind": m.kind, "input": list(m.sample_shape), "code_size": m.code_size,
                         "precisions": m.precisions(), "codec_bits": [c.get("bits") for c in tables]},
              "precisions_run": precisions, "value_cases": value_cases,
              "graph_cases": len(graph_cases), "calls": run.calls, "findings": run.findings}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "adversarial_bundle.json").write_text(json.dumps(report, indent=1))
    print(f"{value_cases} manifest value cases, {len(graph_cases)} graph cases, {run.calls} API and CLI calls: "
          f"{len(run.findings)} findings")
    for f in run.findings:
        print(" ", f)


if __name__ == "__main__":
    main()
