"""The ``edgeae info`` text: a bundle's graphs, samples, validation and codec, verified.

Kept out of the CLI so scripts report the same figures the command prints. Quality
metrics (PSNR, MSE) live in :mod:`edgeae.runtime.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeae.errors import BundleError
from edgeae.runtime.bundle import GraphEntry, Manifest, graph_problems, read_manifest
from edgeae.runtime.graphscan import scan_graph
from edgeae.runtime.iocheck import io_problems
from edgeae.runtime.session import EXACT_INT8, create_session, session_options

__all__ = ["describe_bundle"]


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _specs(specs: list[Any]) -> str:
    return ", ".join(f"{t.name}[{','.join(map(str, t.shape))}]:{t.dtype}" for t in specs)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def describe_bundle(bundle_dir: str | Path, manifest: Manifest | None = None) -> tuple[str, list[str]]:
    """The ``edgeae info`` text and the list of problems found (empty = every hash OK).

    Raises :class:`edgeae.errors.BundleError` only if the manifest itself is unreadable.
    """
    from edgeae.runtime.session import max_supported_opset

    folder = Path(bundle_dir)
    m = manifest if manifest is not None else read_manifest(folder)
    norm = m.normalization
    lines = [
        f"bundle        {folder}",
        f"format        edgeae-bundle v{m.format_version}, created {m.created}",
        f"model         {m.kind}{' (variational)' if m.variational else ''}, code size {m.code_size}",
        f"input         shape {list(m.sample_shape)} {m.input.get('dtype', 'float32')}, "
        f"{'image' if m.is_image else 'vector'}",
        f"normalization {norm['mode']} (raw {norm['raw_dtype']}, {len(norm['offset'])} offset/scale values)",
        "tools         " + (", ".join(f"{k} {v}" for k, v in m.tools.items()) or "-"),
        "",
    ]
    limit = max_supported_opset()
    problems: list[str] = []
    rows = [["role", "precision", "file", "size", "opset", "io", "weights", "inputs -> outputs", "sha256"]]
    for g in m.graphs:
        found = graph_problems(folder, g)
        status = "OK" if not found else ("MISSING" if "missing" in found[0] else "BAD")
        opset = f"{g.opset}" + ("" if g.opset <= limit else f" (> {limit}!)")
        if g.opset > limit:
            found.append(f"{g.file}: opset {g.opset} is newer than this onnxruntime supports ({limit})")
        weights = "-"
        if status == "OK" and g.opset <= limit:
            weights, opened = _open_check(folder, g, m)
            found += opened
            status = "OK" if not opened else "BAD I/O"
        problems += found
        io = ("raw" if g.raw_io else "norm") + (f" b{g.fixed_batch}" if g.fixed_batch else "")
        ext = f" +{len(g.external_data)} data file(s)" if g.external_data else ""
        rows.append([g.role, g.precision, g.file + ext, _human(g.size), opset, io, weights,
                     f"{_specs(g.inputs)} -> {_specs(g.outputs)}", f"{g.sha256[:12]}.. {status}"])
    lines += _table(rows)
    if any(row[6] == "s8" for row in rows[1:]):
        lines += ["", "weights       s8: int8 weights; run with exact u8 x s8 products (session option "
                  f"{EXACT_INT8[0]}={EXACT_INT8[1]}, set by the runtime) on x86 CPUs without VNNI"]
    if m.samples:
        s = m.samples
        _, p = m.samples_file(folder)
        if p:
            problems.append(p)
        lines += ["", f"samples       {s.get('file')} ({s.get('count')} raw samples) {'BAD' if p else 'OK'}"]
    if m.validation:
        lines += ["", "validation"]
        vrows = [["precision", "passed", "psnr", "psnr drop", "max abs error", "latency ms"]]
        for prec, v in m.validation.items():
            v = v if isinstance(v, dict) else {}
            vrows.append([prec, str(v.get("passed", "-")), _num(v.get("psnr")), _num(v.get("psnr_drop")),
                          _compact(v.get("max_abs_error")), _compact(v.get("latency_ms"))])
        lines += ["  " + r for r in _table(vrows)]
    if m.codec:
        lines += ["", _describe_codec(m)]
    lines += ["", "verification  " + ("all files OK" if not problems else f"{len(problems)} problem(s)")]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines), problems


def _open_check(folder: Path, g: GraphEntry, m: Manifest) -> tuple[str, list[str]]:
    """(weight format, problems) of one graph opened in onnxruntime: does it fit the manifest?"""
    try:
        weights = scan_graph(folder / g.file).weight_format if g.format == "onnx" else "-"
        session = create_session(folder / g.file, ["CPUExecutionProvider"], session_options(optimization="disabled"))
    except BundleError as exc:
        return "-", [str(exc)]
    return weights, io_problems(session, g, m.sample_shape, m.code_size)


def _num(v: Any, digits: int = 2) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-"
    try:
        return f"{float(v):.{digits}f}"
    except OverflowError:  # an int beyond float range
        return "-"


def _compact(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_num(x) if not isinstance(x, float) or x >= 0.01 else f'{x:.2e}'}"
                         for k, x in v.items())
    return _num(v) if v is not None else "-"


def _describe_codec(m: Manifest) -> str:
    """One line per codec table set: bit depth (the first is the default) and held-out rate."""
    records = m.codec if isinstance(m.codec, list) else [m.codec]
    measured = m.validation.get("fp32", {}).get("codec") or {}  # objects (checked by the manifest schema)
    rows = []
    for i, rec in enumerate(records):
        bits = rec.get("bits") if isinstance(rec, dict) else None
        r = measured.get(str(bits)) or {}
        rate = (f": {_num(r.get('bytes_per_sample'), 1)} bytes/sample, PSNR {_num(r.get('psnr'))} dB held out"
                if r else "")
        rows.append(f"{bits}-bit{' (default)' if i == 0 else ''}{rate}")
    return "codec         " + "\n              ".join(rows)
