"""Graphs with s8 (QInt8) weights on CPUs without VNNI: saturated, and exact with the runtime's option.

ONNX Runtime's x86 u8 x s8 kernels without VNNI sum pairs of products in int16, which
saturates. ``edgeae.runtime.load`` therefore opens graphs with s8 weights with
``session.x64quantprecision=1`` (:data:`edgeae.runtime.session.EXACT_INT8`). This measures
what that changes: a bundle's fp32 graphs are quantized with s8 weights (dynamic: encoder and
decoder; static QDQ, per channel, calibrated on the bundle's samples: encoder), run here and
under qemu user-mode emulation of CPUs without VNNI, with and without the option, and each
result is compared with this machine's result with the option (exact on every CPU).

    python -m benchmarks.int8_s8 BUNDLE [--cpus haswell,epyc]

Writes benchmarks/results/int8_s8.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeae.bench.timing import machine
from edgeae.export.cpucheck import EMULATED_CPUS, qemu

RESULTS = Path(__file__).resolve().parent / "results"
_RUN = """
import json, sys, numpy as np, onnxruntime as ort
from edgeae.runtime.session import EXACT_INT8, session_options
folder, out = sys.argv[1], sys.argv[2]
x, codes = np.load(folder + "/x.npy"), np.load(folder + "/codes.npy")
for name in json.loads(sys.argv[3]):
    for exact in (0, 1):
        opts = session_options(**({EXACT_INT8[0]: EXACT_INT8[1]} if exact else {}))
        s = ort.InferenceSession(folder + "/" + name, opts, providers=["CPUExecutionProvider"])
        feed = codes if name.startswith("decoder") else x
        y = np.concatenate([s.run(None, {s.get_inputs()[0].name: feed[i:i + 64]})[0] for i in range(0, len(feed), 64)])
        np.save(f"{out}/{name}.{exact}.npy", y)
"""


def _quantize(bundle: Path, work: Path) -> list[str]:
    """s8-weight copies of the bundle's fp32 graphs in ``work``, plus the inputs they are run on."""
    import onnx
    import onnxruntime as ort
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice on every call
    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))[:256]
    enc = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
    np.save(work / "x.npy", x)
    np.save(work / "codes.npy", enc.run(["code"], {"x": x})[0])
    names = []
    for role in ("encoder", "decoder"):
        prep = work / f"{role}.prep.onnx"
        onnx.save_model(gemm_to_matmul(onnx.load(str(bundle / f"{role}.onnx"))), str(prep))
        q.quantize_dynamic(str(prep), str(work / f"{role}.dynamic-s8.onnx"), weight_type=q.QuantType.QInt8,
                           extra_options={"MatMulConstBOnly": True})
        names.append(f"{role}.dynamic-s8.onnx")

    class _Reader(q.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": x[i:i + 32]} for i in range(0, len(x), 32)])

        def get_next(self):
            return next(self.batches, None)

    q.quantize_static(str(work / "encoder.prep.onnx"), str(work / "encoder.static-s8.onnx"), _Reader(),
                      quant_format=q.QuantFormat.QDQ, per_channel=True, activation_type=q.QuantType.QUInt8,
                      weight_type=q.QuantType.QInt8)
    return [*names, "encoder.static-s8.onnx"]


def _run(work: Path, names: list[str], cpu: str | None) -> Path:
    out = work / (cpu or "native")
    out.mkdir()
    prefix = [qemu(), "-cpu", EMULATED_CPUS[cpu]] if cpu else []
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run([*prefix, sys.executable, "-c", _RUN, str(work), str(out), json.dumps(names)], check=True,
                   capture_output=True, env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, timeout=3600)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--cpus", default="haswell,epyc")
    args = ap.parse_args()
    cpus = [c for c in args.cpus.split(",") if c]
    if cpus and qemu() is None:
        sys.exit("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = _quantize(args.bundle, work)
        native = _run(work, names, None)
        rows = []
        for cpu in [None, *cpus]:
            where = native if cpu is None else _run(work, names, cpu)
            for name in names:
                ref = np.load(native / f"{name}.1.npy")
                for exact in (0, 1):
                    y = np.load(where / f"{name}.{exact}.npy")
                    rows.append({"cpu": cpu or "native", "graph": name, "exact_option": bool(exact),
                                 "max_abs_diff": float(np.abs(y - ref).max()), "output_max": float(np.abs(ref).max())})
    from edgeae.runtime.bundle import read_manifest

    m = read_manifest(args.bundle)
    report = {"machine": machine(), "bundle": f"{m.kind}, input {list(m.sample_shape)}, code size {m.code_size}",
              "emulated": {c: EMULATED_CPUS[c] for c in cpus}, "rows": rows,
              "onnxruntime": __import__("onnxruntime").__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_s8.json").write_text(json.dumps(report, indent=1))
    lines = ["# s8 weights with and without session.x64quantprecision=1", "",
             f"Machine: {report['machine']}, onnxruntime {report['onnxruntime']}; emulated (qemu user mode): "
             f"{report['emulated']}; bundle: {report['bundle']}.",
             "Max abs difference from this machine's result with the option.", "",
             "| CPU | graph | option | max abs diff | max abs output |", "|---|---|---|---|---|"]
    lines += [f"| {r['cpu']} | {r['graph']} | {'on' if r['exact_option'] else 'off'} | {r['max_abs_diff']:.4g} | "
              f"{r['output_max']:.3g} |" for r in rows]
    (RESULTS / "int8_s8.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
