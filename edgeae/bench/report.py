"""Benchmark results: rows, percentiles, paired ratios, the self-check, the recommendation,
target ratios, and their outputs.

Kept apart from the timing loop (:mod:`edgeae.bench.harness`) so the reporting logic is
tested without timing anything. Formats: ``table`` (terminal), ``json``, ``csv``,
``markdown``; :mod:`edgeae.bench.plots` draws PNGs when matplotlib is importable.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from edgeae.bench.timing import median_ci
from edgeae.errors import ConfigError
from edgeae.runtime.bundle import PRECISIONS

__all__ = ["FORMATS", "TARGETS", "CHECK_TOLERANCE", "Row", "BenchResult", "percentiles", "paired_ratio",
           "recommend", "self_check"]

CHECK_TOLERANCE = 0.05  # each variant's block figure within 5% of a timeit loop of it alone

FORMATS = ("table", "json", "csv", "markdown")
# Targets reported as ratios next to what was measured (never asserted in tests).
TARGETS = {
    "overhead_vs_bare": ("<=", 1.10, "edgeae fp32 encoder p50 / bare InferenceSession.run p50, batch 1"),
    "speedup_vs_torch": (">=", 1.5, "PyTorch eager encoder p50 / edgeae fp32 encoder p50, batch 1"),
    "int8_speedup": (">=", 2.0, "best int8 within the PSNR budget / fp32 encoder throughput, largest batch"),
    "ceiling_ratio": (">=", 0.70, "fp32 encoder one-thread multiply-adds/s / numpy one-thread matmul of the "
                      "same shapes, interleaved, largest batch"),
}


@dataclass
class Row:
    """One measured cell: a variant on one graph at one batch size, thread count and provider."""

    variant: str  # precision, "ort-bare" or "torch-eager"
    graph: str  # encoder | decoder | end-to-end
    provider: str  # ORT execution provider name
    batch: int  # samples per call
    threads: int  # intra-op threads (torch.set_num_threads for torch-eager)
    session_ms: float | None = None  # cold start: loading the variant (verify + sessions)
    p50_ms: float | None = None  # median call latency
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None  # samples/s = batch / block_ms
    calls: int = 0  # timed calls
    load_mb: float | None = None  # current-RSS growth while loading the variant (/proc/self/statm)
    peak_rss_mb: float | None = None  # process peak RSS (ru_maxrss) after the cell
    size: int = 0  # bytes of the graph file(s); torch-eager: weights file
    psnr: float | None = None  # held-out reconstruction PSNR (dB) of this variant
    status: str = "ok"  # ok, or why the variant could not run
    block_ms: float | None = None  # ms per call: median over rounds of the block medians (the figure ratios use)
    rounds_ms: list[float] | None = None  # ms per call, median of this variant's block in each round
    timeit_ms: float | None = None  # ms per call of a plain timeit loop of this variant alone (self-check)
    check: float | None = None  # block_ms / timeit_ms: the harness agrees with timeit when within CHECK_TOLERANCE


def percentiles(ns: list[int] | np.ndarray) -> dict[str, float]:
    """p50 / p90 / p99 in milliseconds (linear interpolation) of per-call times in ns."""
    if len(ns) == 0:
        raise ConfigError("no timed calls to summarize; use --iterations 1 or more")
    p = np.percentile(np.asarray(ns, dtype=np.float64) / 1e6, [50, 90, 99])
    return {"p50": round(float(p[0]), 5), "p90": round(float(p[1]), 5), "p99": round(float(p[2]), 5)}


def _ok(r: Row) -> bool:
    return r.status == "ok" and r.throughput is not None


def paired_ratio(slow: Row | None, fast: Row | None) -> dict[str, Any] | None:
    """How many times faster ``fast`` ran than ``slow``, round by round (their blocks of one
    round are adjacent in time, so the machine's state cancels): the median ratio and its
    95% interval (``lo``/``hi``, None with too few rounds). ``resolved``: the interval
    excludes 1.0, i.e. the method can tell the two apart; ``faster``: resolved and > 1."""
    if slow is None or fast is None or not slow.rounds_ms or not fast.rounds_ms \
            or len(slow.rounds_ms) != len(fast.rounds_ms):
        return None
    med, lo, hi = median_ci([a / b for a, b in zip(slow.rounds_ms, fast.rounds_ms, strict=True)])
    resolved = lo is not None and hi is not None and (lo > 1.0 or hi < 1.0)
    return {"ratio": round(med, 3), "lo": None if lo is None else round(lo, 3),
            "hi": None if hi is None else round(hi, 3), "rounds": len(slow.rounds_ms), "resolved": resolved,
            "faster": bool(resolved and lo > 1.0)}


def recommend(rows: list[Row], max_psnr_drop: float, min_gain: float = CHECK_TOLERANCE) -> list[dict[str, Any]]:
    """Per provider, thread count and batch size: the precision to deploy.

    Looks at end-to-end rows when measured (else encoder, else decoder). fp32 unless
    another precision within ``max_psnr_drop`` dB of fp32's PSNR is *resolvably* faster:
    :func:`paired_ratio`'s interval lies above ``1 + min_gain`` (default: the 5% to which the
    self-check holds the method to ``timeit``); among those, the highest median ratio. A
    difference the rounds cannot resolve, or one within the method's tolerance, or between
    rows that failed the self-check (``check`` off by more than 5%), never picks a variant. A variant without a
    PSNR qualifies only if it is fp32. Variants are compared only within one run of
    interleaved blocks (same provider and thread count).
    """
    ok = [r for r in rows if _ok(r) and r.variant in PRECISIONS]
    graph = next((g for g in ("end-to-end", "encoder", "decoder") if any(r.graph == g for r in ok)), None)
    out = []
    for provider, threads, batch in sorted({(r.provider, r.threads, r.batch) for r in ok if r.graph == graph}):
        cells = [r for r in ok if (r.graph, r.provider, r.threads, r.batch) == (graph, provider, threads, batch)]
        base = next((r for r in cells if r.variant == "fp32"), None)
        if base is None:
            continue
        best, best_cmp, unresolved = base, None, []
        for r in cells:
            d = _drop(r, base.psnr)
            if r is base or d is None or d > max_psnr_drop:
                continue
            cmp = paired_ratio(base, r)
            if cmp is None or not cmp["faster"] or cmp["lo"] <= 1.0 + min_gain or _off_check(base, r):
                unresolved += [r.variant] if cmp is None or not cmp["resolved"] or cmp["faster"] else []
                continue
            if best_cmp is None or cmp["ratio"] > best_cmp["ratio"]:
                best, best_cmp = r, cmp
        out.append({"batch": batch, "graph": graph, "variant": best.variant, "provider": provider,
                    "threads": threads, "throughput": best.throughput, "p50_ms": best.p50_ms,
                    "psnr_drop": _drop(best, base.psnr), "speedup_vs_fp32": best_cmp["ratio"] if best_cmp else 1.0,
                    "interval": [best_cmp["lo"], best_cmp["hi"]] if best_cmp else None,
                    "unresolved": sorted(unresolved)})
    return out


def _off_check(*rows: Row) -> bool:
    """A row whose self-check failed: its blocks did not measure what the variant alone costs."""
    return any(r.check is not None and abs(r.check - 1.0) > CHECK_TOLERANCE for r in rows)


def self_check(rows: list[Row], tolerance: float = CHECK_TOLERANCE) -> dict[str, Any] | None:
    """Does every variant's block figure agree with a plain ``timeit`` loop of it alone?
    The worst row (largest ``|check - 1|``), how many rows fall outside ``tolerance``, and the verdict."""
    checked = [r for r in rows if _ok(r) and r.check is not None]
    if not checked:
        return None
    worst = max(checked, key=lambda r: abs(r.check - 1.0))
    outside = [r for r in checked if abs(r.check - 1.0) > tolerance]
    by_threads = {str(t): [sum(1 for r in checked if r.threads == t and abs(r.check - 1.0) <= tolerance),
                           sum(1 for r in checked if r.threads == t)] for t in sorted({r.threads for r in checked})}
    return {"rows": len(checked), "outside": len(outside), "tolerance": tolerance, "by_threads": by_threads,
            "worst": {"variant": worst.variant, "graph": worst.graph, "batch": worst.batch,
                      "threads": worst.threads, "check": worst.check},
            "median_abs_dev": round(float(np.median([abs(r.check - 1.0) for r in checked])), 4),
            "ok": not outside}


def _drop(r: Row, ref: float | None) -> float | None:
    """dB lost against the fp32 PSNR ``ref`` (None when either is unknown)."""
    return None if r.psnr is None or ref is None else round(ref - r.psnr, 3)


def _ratio(slow: Row | None, fast: Row | None) -> dict[str, Any] | None:
    """:func:`paired_ratio`, or for rows without rounds (results saved by older versions) the
    ratio of their medians, with no interval."""
    if slow is None or fast is None:
        return None
    got = paired_ratio(slow, fast)
    if got is None and slow.p50_ms and fast.p50_ms:
        got = {"ratio": round(slow.p50_ms / fast.p50_ms, 3), "lo": None, "hi": None, "rounds": 0,
               "resolved": False, "faster": False}
    return got


def _find(rows: list[Row], variant: str, graph: str, batch: int, threads: int) -> Row | None:
    return next((r for r in rows if _ok(r) and (r.variant, r.graph, r.batch, r.threads) == (variant, graph, batch, threads)), None)


@dataclass
class BenchResult:
    """Everything one benchmark run measured, plus the settings that were pinned."""

    bundle: str  # the bundle folder
    kind: str  # model kind from the manifest
    max_psnr_drop: float  # quality budget for the recommendation (dB vs fp32)
    settings: dict[str, Any]  # threads, session options, provider, versions, inputs, method
    rows: list[Row] = field(default_factory=list)  # one per variant x graph x batch x threads x provider
    ceiling: dict[str, Any] | None = None  # numpy one-thread matmul of the encoder's shapes
    ratios: dict[str, Any] = field(default_factory=dict)  # measured vs TARGETS
    recommendations: list[dict[str, Any]] = field(default_factory=list)  # per batch size

    def finish(self) -> None:
        """Compute the recommendation, the target ratios (paired across rounds, with their
        95% intervals) and the self-check from the rows."""
        self.recommendations = recommend(self.rows, self.max_psnr_drop)
        rows, t = self.rows, min((r.threads for r in self.rows if _ok(r)), default=1)
        ratios: dict[str, Any] = {}
        intervals: dict[str, Any] = {}

        def put(key: str, slow: Row | None, fast: Row | None) -> dict[str, Any] | None:
            got = _ratio(slow, fast)
            if got is not None:
                ratios[key] = got["ratio"]
                intervals[key] = [got["lo"], got["hi"]]
            return got

        fp32_1 = _find(rows, "fp32", "encoder", 1, t)
        put("overhead_vs_bare", fp32_1, _find(rows, "ort-bare", "encoder", 1, t))
        put("speedup_vs_torch", _find(rows, "torch-eager", "encoder", 1, t), fp32_1)
        big = max((r.batch for r in rows if _ok(r) and r.graph == "encoder"), default=None)
        fp32_big = _find(rows, "fp32", "encoder", big, t) if big else None
        if fp32_big:
            ref = fp32_big.psnr
            int8 = [r for v in ("int8-dynamic", "int8-static") if (r := _find(rows, v, "encoder", big, t))
                    and (ref is None or (r.psnr is not None and ref - r.psnr <= self.max_psnr_drop))]
            if int8:
                best = max(int8, key=lambda r: _ratio(fp32_big, r)["ratio"])
                put("int8_speedup", fp32_big, best)
                ratios["int8_variant"] = best.variant
        c = self.ceiling
        if c and "macs_per_s" in c:  # prefer the fp32 encoder timed interleaved with the numpy matmuls
            one = _find(rows, "fp32", "encoder", c["batch"], 1)
            seconds = c["encoder_p50_ms"] / 1e3 if "encoder_p50_ms" in c else (c["batch"] / one.throughput
                                                                                if one else None)
            if seconds:
                c["achieved_macs_per_s"] = round(c["macs"] / seconds)
                ratios["ceiling_ratio"] = round(c["achieved_macs_per_s"] / c["macs_per_s"], 3)
        ratios["threads"] = t
        if intervals:
            ratios["intervals"] = intervals
        check = self_check(rows)
        if check is not None:
            ratios["self_check"] = check
        self.ratios = ratios

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        """A result as :meth:`to_json` wrote it: re-render or re-plot without measuring again."""
        text = {"variant", "graph", "provider", "status"}
        rows = [Row(**{k: (float(v) if isinstance(v, str) and k not in text else v) for k, v in row.items()})
                for row in data.get("rows", [])]
        return cls(bundle=data["bundle"], kind=data["kind"], max_psnr_drop=data["max_psnr_drop"],
                   settings=data.get("settings", {}), rows=rows, ceiling=data.get("ceiling"),
                   ratios=data.get("ratios", {}), recommendations=data.get("recommendations", []))

    # ---- outputs -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = {k: {"op": op, "target": v, "what": what, "measured": self.ratios.get(k),
                               "met": _met(op, v, self.ratios.get(k))} for k, (op, v, what) in TARGETS.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), indent=2) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[f.name for f in fields(Row)], lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(asdict(r))
        return buf.getvalue()

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        head = ["variant", "graph", "provider", "batch", "threads", "session ms", "p50 ms", "p90 ms", "p99 ms",
                "block ms", "timeit ms", "check", "samples/s", "load MB", "peak RSS MB", "size KB", "PSNR dB",
                "status"]
        body = [[r.variant, r.graph, r.provider.replace("ExecutionProvider", ""), str(r.batch), str(r.threads),
                 _f(r.session_ms, 1), _f(r.p50_ms, 4), _f(r.p90_ms, 4), _f(r.p99_ms, 4), _f(r.block_ms, 4),
                 _f(r.timeit_ms, 4), _f(r.check, 3), _f(r.throughput, 0), _f(r.load_mb, 1), _f(r.peak_rss_mb, 0),
                 _f(r.size / 1024, 1), _f(r.psnr, 2), r.status]
                for r in self.rows]
        return head, body

    def _summary(self) -> list[str]:
        s = self.settings
        lines = [f"settings: providers {', '.join(s.get('providers', []))}; intra-op threads {s.get('threads')}; "
                 f"graph optimization {s.get('graph_optimization_level')}; allow_spinning {s.get('allow_spinning')}; "
                 f"onnxruntime {s.get('onnxruntime')}; inputs {s.get('inputs')}"]
        m = s.get("machine")
        if m:
            lines.append(f"machine: {m.get('cpu')} ({', '.join(m.get('isa', [])) or 'no AVX2/AVX-512/NEON-dot'}), "
                         f"{m.get('cores')} cores; method: {s.get('timing')}")
        spans = self.ratios.get("intervals", {})
        for k, (op, v, what) in TARGETS.items():
            got = self.ratios.get(k)
            extra = f" ({self.ratios['int8_variant']})" if k == "int8_speedup" and got is not None else ""
            span = spans.get(k)
            if got is not None and span and span[0] is not None:
                extra += f" [95% {span[0]:.3f}-{span[1]:.3f}]"
            verdict = "not measured" if got is None else ("met" if _met(op, v, got) else "MISSED")
            lines.append(f"{k}: {_f(got, 3)}{extra} (target {op} {v}: {verdict}) - {what}")
        check = self.ratios.get("self_check")
        if check:
            w = check["worst"]
            per = "; ".join(f"{t} thread(s): {a} of {n}" for t, (a, n) in check.get("by_threads", {}).items())
            lines.append(f"self-check: {check['rows'] - check['outside']} of {check['rows']} rows within "
                         f"{check['tolerance']:.0%} of a timeit loop of the variant alone ({per}) "
                         f"({'ok' if check['ok'] else 'NOT all'}; median deviation {check['median_abs_dev']:.1%}, "
                         f"worst {w['variant']} {w['graph']} batch {w['batch']} x{w['check']:.3f})")
        for rec in self.recommendations:
            lines.append(_recommendation_line(rec, self.max_psnr_drop))
        return lines

    def to_table(self) -> str:
        head, body = self._cells()
        widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
        last = len(head) - 1  # status, left-aligned like the names
        lines = ["  ".join(c.rjust(w) if 3 <= i < last else c.ljust(w) for i, (c, w) in
                           enumerate(zip(row, widths, strict=True))).rstrip() for row in [head, *body]]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines + [""] + self._summary()) + "\n"

    def to_markdown(self) -> str:
        head, body = self._cells()
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if 3 <= i < len(head) - 1 else "---"
                                                               for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines + [""] + [f"- {line}" for line in self._summary()]) + "\n"

    def render(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}; choose from: {', '.join(FORMATS)}")
        return {"table": self.to_table, "json": self.to_json, "csv": self.to_csv,
                "markdown": self.to_markdown}[fmt]()


def _recommendation_line(rec: dict[str, Any], budget: float) -> str:
    where = f"{rec['provider'].replace('ExecutionProvider', '')}, {rec['threads']} thread(s)"
    head = f"recommendation batch {rec['batch']} ({where}): {rec['variant']}"
    if rec.get("interval"):
        lo, hi = rec["interval"]
        why = (f"{_f(rec['speedup_vs_fp32'], 2)}x fp32 [95% {lo:.2f}-{hi:.2f}], PSNR drop "
               f"{_f(rec['psnr_drop'], 2)} dB <= {budget}")
    else:
        why = f"no other precision within the PSNR budget is resolvably more than {CHECK_TOLERANCE:.0%} faster"
    if rec.get("unresolved"):
        why += f"; not resolvably more than {CHECK_TOLERANCE:.0%} faster than fp32: {', '.join(rec['unresolved'])}"
    return f"{head} - {why}"


def _met(op: str, target: float, got: float | None) -> bool | None:
    if got is None:
        return None
    return got <= target if op == "<=" else got >= target


def _f(v: float | None, digits: int) -> str:
    if v is None:
        return "-"
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def _finite(obj: Any) -> Any:
    """JSON has no inf/NaN: write them as strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
