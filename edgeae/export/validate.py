"""Checks that an exported graph computes what PyTorch computes, on real held-out samples.

Every check is recorded (graph, output, batch, max abs error, tolerance); nothing stops at
the first mismatch, so one :class:`edgeae.errors.ValidationError` lists them all. A second,
independent implementation (``onnx.reference.ReferenceEvaluator``) runs every graph too,
so an ONNX Runtime kernel bug cannot hide behind a matching exporter bug.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.runtime.session import session_options

__all__ = [
    "BATCHES",
    "REFERENCE_ATOL",
    "output_steps",
    "Check",
    "Checks",
    "session",
    "run",
    "take_batch",
    "reference_check",
    "measure_latency",
]

BATCHES = (1, 7, 64)  # batch sizes every graph is run at (odd 7 catches batch-axis bugs)
REFERENCE_ATOL = 1e-4  # ReferenceEvaluator vs ONNX Runtime / PyTorch


@dataclass
class Check:
    """One compared output."""

    graph: str  # file name, e.g. "encoder.onnx"
    output: str  # output name, e.g. "code"; "end_to_end" for decode(encode(x))
    batch: int | None  # batch size it ran at
    max_abs_error: float  # max |got - want|
    tolerance: float | None  # None: recorded, not enforced
    against: str = "pytorch"  # pytorch | onnxruntime (what "want" came from)

    @property
    def passed(self) -> bool:
        return self.tolerance is None or self.max_abs_error <= self.tolerance

    def line(self) -> str:
        return (f"{self.graph} {self.output} (batch {self.batch}, vs {self.against}): max abs error "
                f"{self.max_abs_error:.3g} > tolerance {self.tolerance:g}")


@dataclass
class Checks:
    """All checks of one export, plus notes for checks that could not run."""

    items: list[Check] = field(default_factory=list)  # every comparison made
    notes: list[str] = field(default_factory=list)  # skipped checks and why

    def add(self, graph: str, output: str, batch: int | None, got: np.ndarray, want: np.ndarray,
            tolerance: float | None, against: str = "pytorch") -> Check:
        got = np.asarray(got, np.float64)
        want = np.asarray(want, np.float64)
        if got.shape != want.shape:
            err = math.inf
        else:
            diff = np.abs(got - want)
            err = float(diff.max()) if diff.size else 0.0
            if not np.isfinite(diff).all():
                err = math.inf
        check = Check(graph, output, batch, err, tolerance, against)
        self.items.append(check)
        return check

    def failures(self) -> list[Check]:
        return [c for c in self.items if not c.passed]

    def max_errors(self, graphs: set[str], against: str = "pytorch") -> dict[str, float]:
        """Largest error per output over batches, for the manifest's validation record."""
        out: dict[str, float] = {}
        for c in self.items:
            if c.graph in graphs and c.against == against:
                out[c.output] = max(out.get(c.output, 0.0), c.max_abs_error)
        return out


def session(path: Path, optimize: bool = True, threads: int = 1) -> Any:
    """A CPU InferenceSession pinned to ``threads`` (optimizations off runs the graph as written)."""
    import onnxruntime as ort

    opts = session_options(threads, optimization="all" if optimize else "disabled")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of a one-input graph by name."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x}), strict=True))


def take_batch(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` real samples, repeating them when fewer are held out."""
    if len(x) < n:
        x = np.concatenate([x] * math.ceil(n / len(x)))
    return np.ascontiguousarray(x[:n])


def reference_check(path: Path, x: np.ndarray, want: dict[str, np.ndarray] | None, checks: Checks,
                    batch: int, fp16: bool = False, against: str = "pytorch") -> None:
    """Run ``path`` in onnx.reference and compare with ``want``, labelled ``against``.

    ``want`` is PyTorch's output (fp32 graphs) or, for quantized graphs, what ONNX Runtime
    computes for the same graph: int8 graphs are compared with the session the runtime uses
    (default optimizations, so fused integer kernels chosen for *this* CPU), which must equal
    the graph's exact integer semantics. When ``want`` is None, ONNX Runtime runs the graph
    unoptimized. Unsupported ops are noted, not failed.

    Tolerances: 1e-4, plus for an output that leaves the graph through DequantizeLinear
    (static int8) one step of its scale: ONNX Runtime's fused kernels sum the integer
    products exactly and requantize once, onnx.reference sums dequantized floats, so a value
    within float rounding of a half step may land one step apart (a saturating kernel is off
    by many steps). fp16 graphs get a few float16 steps (2e-3 relative): onnx.reference
    accumulates in float16 where ONNX Runtime accumulates in float32."""
    import onnx

    name = path.name
    model = onnx.load(str(path))
    try:
        with np.errstate(over="ignore"):  # numpy's Sigmoid overflows harmlessly for large |x|
            ref, outs = _reference_run(model, x)
        got = dict(zip(ref.output_names, outs, strict=True))
    except Exception as exc:  # NotImplementedError or kernel errors for contrib / quantized ops
        checks.notes.append(f"{name}: ReferenceEvaluator cannot run it ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120]}); checked with ONNX Runtime only")
        return
    if want is None:
        want, against = run(session(path, optimize=False), x), "onnxruntime-unoptimized"
    steps = output_steps(model)
    for key, value in got.items():
        if key in want:
            tol = REFERENCE_ATOL + steps.get(key, 0.0)
            if fp16:
                tol += 2e-3 * float(np.abs(np.asarray(want[key], np.float64)).max(initial=0.0))
            checks.add(name, key, batch, value, want[key], tol, against=f"reference-evaluator/{against}")


_SHAPE_ONLY = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Transpose"}


def output_steps(model: Any) -> dict[str, float]:
    """Graph output -> the scale of the DequantizeLinear it comes from (through shape-only ops).

    Only per-tensor (scalar) scales count; outputs computed in float have no entry."""
    from onnx import numpy_helper

    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    steps = {}
    for out in model.graph.output:
        node = producer.get(out.name)
        while node is not None and node.op_type in _SHAPE_ONLY:
            node = producer.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]])
        if scale.size == 1:
            steps[out.name] = float(scale.reshape(()))
    return steps


def _reference_run(model: Any, x: np.ndarray) -> tuple[Any, list[np.ndarray]]:
    from onnx.reference import ReferenceEvaluator

    try:
        ref = ReferenceEvaluator(model)
        return ref, ref.run(None, {ref.input_names[0]: x})
    except Exception:
        # onnx.reference implements QuantizeLinear / DequantizeLinear from opset 19 only;
        # the same graph converted to opset 19 computes the same values.
        from onnx import version_converter

        ref = ReferenceEvaluator(version_converter.convert_version(model, 19))
        return ref, ref.run(None, {ref.input_names[0]: x})


def measure_latency(pairs: dict[str, tuple[Any, Any]], x: np.ndarray, batches: tuple[int, ...] = (1, 64),
                    repeats: int = 30) -> dict[str, dict[str, float]]:
    """Median end-to-end (encode + decode) milliseconds per variant, variants interleaved.

    Sessions are warmed up first; each round runs every variant once (A B C A B C ...) so
    machine drift hits all of them alike. Inputs are real samples.
    """
    from edgeae.bench.timing import interleave

    result: dict[str, dict[str, float]] = {name: {} for name in pairs}
    for b in batches:
        xb = take_batch(x, b)
        times = interleave([_end_to_end(enc, dec, xb) for enc, dec in pairs.values()], iterations=repeats, warmup=1)
        for name, ns in zip(pairs, times, strict=True):
            result[name][f"batch{b}"] = round(float(np.median(ns)) / 1e6, 4)
    return result


def _end_to_end(enc: Any, dec: Any, xb: np.ndarray) -> Any:
    """A call running ``dec(enc(xb))`` on two sessions, input names resolved once."""
    enc_in, dec_in = enc.get_inputs()[0].name, dec.get_inputs()[0].name

    def call() -> None:
        dec.run(None, {dec_in: enc.run(["code"], {enc_in: xb})[0]})

    return call
