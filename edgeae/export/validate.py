"""Checks that an exported graph computes what PyTorch computes, on real held-out samples.

Every check is recorded (graph, output, batch, max abs error, the share of its bound used,
the criterion); nothing stops at the first mismatch, so one
:class:`edgeae.errors.ValidationError` lists them all. A second, independent implementation
(``onnx.reference.ReferenceEvaluator``) runs every graph too, so an ONNX Runtime kernel bug
cannot hide behind a matching exporter bug.

The bound of every output element follows from the graph's numerics
(:func:`edgeae.numerics.deviation_bounds`, derived in docs/export.md): the rounding of each
sum over its length and magnitude, a quantizer's tie worth one step, what later ops make
of it. There is no absolute tolerance to guess; ``atol`` only adds an allowance.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.errors import ExportError
from edgeae.numerics import U16, U32, Deviation, compare_bounded, deviation_bounds, graph_values
from edgeae.runtime.session import session_options

__all__ = [
    "BATCHES",
    "CRITERIA",
    "Check",
    "Checks",
    "session",
    "run",
    "take_batch",
    "reference_check",
    "structure_problems",

    "tightest",
    "criteria_by_graph",
    "check_copy",
    "measure_latency",
]

_VALUES_KEPT = 4  # graph runs (every tensor of one batch) a Checks keeps for bounds in other modes
BATCHES = (1, 7, 64)  # batch sizes every graph is run at (odd 7 catches batch-axis bugs)
# criterion key -> what it compares, as printed by `edgeae export`
CRITERIA = {
    "float": "float rounding bound",  # fp32 graph vs PyTorch, or two evaluations of one graph
    "fp16": "float16 rounding bound",  # fp16 graph vs the float32 model
    "quantized": "quantization bound",  # int8 graph vs the float32 model (its own rounding, measured)
    "semantics": "integer semantics, one step per tie",  # int8 graph: ORT kernels vs onnx.reference
    "copy": "same graph, rounding bound",  # .ort / fixed-batch copies vs their source
    "weights": "8-bit weights vs the float weights, half a step",  # int8 graph's weights vs the fp32 graph's
    "psnr": "held-out PSNR drop vs --max-psnr-drop",
}


@dataclass
class Check:
    """One compared output."""

    graph: str  # file name, e.g. "encoder.onnx"
    output: str  # output name, e.g. "code"; "end_to_end" for decode(encode(x))
    batch: int | None  # batch size it ran at
    max_abs_error: float  # max |got - want|
    tolerance: float  # largest element bound (plus atol)
    against: str = "pytorch"  # pytorch | onnxruntime (what "want" came from)
    share: float = 0.0  # largest |got - want| / bound over the elements (<= 1 passes)
    over: int = 0  # elements outside their bound
    criterion: str = "float"  # a key of CRITERIA

    @property
    def passed(self) -> bool:
        return self.share <= 1.0

    def line(self) -> str:
        return (f"{self.graph} {self.output} (batch {self.batch}, vs {self.against}, {CRITERIA[self.criterion]}): "
                f"{self.over} element(s) outside their bound, max abs error {self.max_abs_error:.3g}, "
                f"{self.share:.3g} x the bound (largest bound {self.tolerance:.3g})")


@dataclass
class Checks:
    """All checks of one export, plus notes for checks that could not run."""

    items: list[Check] = field(default_factory=list)  # every comparison made
    notes: list[str] = field(default_factory=list)  # skipped checks and why
    _memo: dict[tuple, Any] = field(default_factory=dict, repr=False)  # bounds and graph values, once each
    weight_steps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # int8 graph file -> its weights'
    # measured distance from their float weights, in steps (edgeae.export.weightcheck), for "quantized" bounds

    def bounds(self, model: Path, x: np.ndarray, mode: str = "float", u_b: float = U32,
               d_in: np.ndarray | None = None) -> Deviation:
        """:func:`edgeae.numerics.deviation_bounds` of the graph file ``model`` on ``x``, computed
        once per graph, input and mode: the comparisons with PyTorch, onnx.reference and the
        packaged copies share them, and the graph runs once per input for all modes."""
        import onnx

        graph = (str(model), *_stamp(model))
        key = ("bounds", graph, _digest(x), mode, u_b, None if d_in is None else _digest(d_in))
        if key not in self._memo:
            proto = self._memo.get(("model", graph)) or self._memo.setdefault(("model", graph), onnx.load(str(model)))
            vkey = ("values", graph, _digest(x))
            values = self._memo.pop(vkey, None)
            values = graph_values(proto, x) if values is None else values
            self._memo[vkey] = values  # every tensor of a batch: kept for the last few inputs only
            stale = [k for k in self._memo if k[0] == "values"][:-_VALUES_KEPT]
            for k in stale:
                del self._memo[k]
            steps = self.weight_steps.get(Path(model).name) if mode == "quantized" else None
            self._memo[key] = deviation_bounds(proto, x, mode, d_in=d_in, u_b=u_b, values=values, weight_steps=steps)
        return self._memo[key]

    def add_bounded(self, graph: str, output: str, batch: int | None, got: Any, want: Any, bound: Any,
                    criterion: str, against: str = "pytorch", atol: float = 0.0) -> Check:
        """A comparison element by element against ``bound + atol`` (NaN or inf always fails)."""
        b = np.asarray(bound, np.float64) + atol
        err, share, over = compare_bounded(np.asarray(got), np.asarray(want), b)
        check = Check(graph, output, batch, err, float(np.max(b, initial=0.0)), against, share, over, criterion)
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


def _digest(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a)
    return a.shape, a.dtype.str, hashlib.blake2b(a.tobytes(), digest_size=16).digest()


def _stamp(path: Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


def tightest(checks: Checks, graphs: set[str]) -> dict[str, Any] | None:
    """The enforced check of ``graphs`` that used the largest share of its bound: which
    criterion, how much of it was used and the margin (bound / error; inf when exact)."""
    best = None
    for c in checks.items:
        if c.graph in graphs:
            if best is None or c.share > best.share:
                best = c
    if best is None:
        return None
    return {"criterion": best.criterion, "what": CRITERIA[best.criterion], "graph": best.graph,
            "output": best.output, "batch": best.batch, "against": best.against, "share": _num(best.share),
            "margin": _num(1 / best.share) if best.share > 0 else None, "max_abs_error": _num(best.max_abs_error),
            "largest_bound": _num(best.tolerance)}


def criteria_by_graph(checks: Checks, files: list[str]) -> dict[str, Any]:
    """Graph file -> its tightest criterion and margin (:func:`tightest`), for the manifest."""
    out = {}
    for f in files:
        t = tightest(checks, {f})
        if t is not None:
            out[f] = t
    return out


def check_copy(candidate: Path, source: Path, x: np.ndarray, batch: int, checks: Checks, atol: float) -> None:
    """A packaged copy (.ort, fixed batch) vs its source graph in ONNX Runtime: two evaluations
    of one graph, held to the same per-element bounds (a tie may round one step apart)."""
    xb = take_batch(x, batch)
    try:
        got = run(session(candidate), xb)
    except Exception as exc:
        raise ExportError(f"{candidate.name} does not run in onnxruntime: {exc}") from exc
    want = run(session(source), xb)
    bounds = checks.bounds(source, xb).bounds
    for name, value in want.items():
        checks.add_bounded(candidate.name, name, batch, got.get(name, np.empty(0)), value, bounds[name], "copy",
                           against=f"onnxruntime/{source.name}", atol=atol)


def _num(v: float) -> float | None:
    """A finite float rounded for the manifest; inf / NaN become None (JSON has no inf)."""
    return float(f"{v:.4g}") if math.isfinite(v) else None


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
                    batch: int, fp16: bool = False, against: str = "pytorch", atol: float = 0.0) -> None:
    """Run ``path`` in onnx.reference and compare with ``want``, labelled ``against``.

    ``want`` is PyTorch's output (fp32 graphs) or, for quantized graphs, what ONNX Runtime
    computes for the same graph: int8 graphs are compared with the session the runtime uses
    (default optimizations, so fused integer kernels chosen for *this* CPU), which must equal
    the graph's exact integer semantics. When ``want`` is None, ONNX Runtime runs the graph
    unoptimized. Unsupported ops are noted, not failed.

    Bounds: two evaluations of one graph (:func:`edgeae.numerics.deviation_bounds`, mode
    "float"): float sums within their rounding bound, a quantizer within one step where its
    input lies within that bound of a rounding tie, and what the later ops make of that step.
    A saturating integer kernel is off by many steps where no tie is near. fp16 graphs: the
    reference accumulates in float16 (``u_b`` = float16's unit roundoff)."""
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
    dev = checks.bounds(path, x, u_b=U16 if fp16 else U32)
    crit = "semantics" if _is_int8(model) else "float"
    for key, value in got.items():
        if key in want:
            checks.add_bounded(name, key, batch, value, want[key], dev.bounds[key], crit,
                               against=f"reference-evaluator/{against}", atol=atol)


_INTEGER_OPS = {"MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DequantizeLinear"}
_WEIGHTED = {"MatMul", "Gemm", "Conv", "ConvTranspose"}


def _is_int8(model: Any) -> bool:
    return any(n.op_type in _INTEGER_OPS for n in model.graph.node)


def structure_problems(path: Path, precision: str) -> list[str]:
    """What keeps an int8 graph from being int8: a weighted node left in float.

    int8-dynamic: every MatMul / Gemm / Conv must be MatMulInteger / ConvInteger (ONNX
    Runtime has no dynamic ConvTranspose, the one float layer such a graph may keep, noted in
    the manifest); int8-static: every weighted node reads its weight and its activation
    through DequantizeLinear of 8-bit values."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    problems = []
    for n in graph.node:
        if n.op_type not in _WEIGHTED:
            continue
        if precision == "int8-dynamic":
            if n.op_type != "ConvTranspose":
                problems.append(f"{path.name}: {n.op_type} {n.name!r} is left in float")
            continue
        for k, what in ((0, "activation"), (1, "weight")):
            src = producer.get(n.input[k])
            eight = src is not None and src.op_type == "DequantizeLinear" and (
                what == "activation" or consts.get(src.input[0], np.zeros(0, np.float32)).dtype in (np.uint8, np.int8))
            if not eight:
                problems.append(f"{path.name}: {n.op_type} {n.name!r} reads its {what} in float, not from 8-bit values")
    return problems


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
    """Median end-to-end (encode + decode) milliseconds per variant, on real samples.

    The benchmark's method (:func:`edgeae.bench.timing.blocks`): every variant is warmed up,
    then timed in blocks, round after round (the first variant rotating), each block running
    one variant warm as a user runs one model, so machine drift hits all alike without
    charging a variant for the cache state the previous one left. ``repeats`` timed calls
    per variant and batch, spread over the rounds; the figure is the median call.
    """
    from edgeae.bench.timing import blocks

    result: dict[str, dict[str, float]] = {name: {} for name in pairs}
    for b in batches:
        xb = take_batch(x, b)
        times = blocks([_end_to_end(enc, dec, xb) for enc, dec in pairs.values()], iterations=repeats, warmup=1)
        for name, ns in zip(pairs, times.calls, strict=True):
            result[name][f"batch{b}"] = round(float(np.median(ns)) / 1e6, 4)
    return result


def _end_to_end(enc: Any, dec: Any, xb: np.ndarray) -> Any:
    """A call running ``dec(enc(xb))`` on two sessions, input names resolved once."""
    enc_in, dec_in = enc.get_inputs()[0].name, dec.get_inputs()[0].name

    def call() -> None:
        dec.run(None, {dec_in: enc.run(["code"], {enc_in: xb})[0]})

    return call
