"""Plots of benchmark results (matplotlib, imported only when a plot is drawn).

One colour per precision (and per baseline) and one line style per thread count, fixed
across every plot edgeae draws; baselines are hollow markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeae.bench.report import BenchResult, Row
from edgeae.errors import ConfigError
from edgeae.runtime.bundle import PRECISIONS

__all__ = ["plot", "variant_style", "require_matplotlib"]


def _ok(r: Row) -> bool:
    return r.status == "ok" and r.throughput is not None


def require_matplotlib() -> None:
    """Fail before measuring, not after, when a plot was asked for and cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed: pip install matplotlib "
                          "(or leave out --plot)") from None


# One colour per precision (and per baseline), fixed across every plot edgeae draws.
_COLOURS = {"fp32": "#1f77b4", "fp16": "#2ca02c", "int8-dynamic": "#ff7f0e", "int8-static": "#d62728",
            "ort-bare": "#555555", "torch-eager": "#9467bd"}
_MARKERS = {"ort-bare": "s", "torch-eager": "^"}  # precisions: "o"
_LINESTYLES = ("-", "--", ":", "-.")  # per (provider, threads), in sorted order


def variant_style(variant: str) -> dict[str, Any]:
    """Matplotlib colour and marker of a variant; baselines are drawn hollow so they never hide a precision."""
    style = {"color": _COLOURS.get(variant, "#8c564b"), "marker": _MARKERS.get(variant, "o")}
    if variant in _MARKERS:
        style["markerfacecolor"] = "none"
    return style


def plot(result: BenchResult, path: str | Path, title: str | None = None) -> Path:
    """PNG: p50 latency vs batch size per variant (colour) and provider/threads (line style),
    one panel per graph, and graph size vs held-out PSNR; one shared legend. Needs matplotlib."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result.rows if _ok(r)]
    graphs = [g for g in ("encoder", "decoder", "end-to-end") if any(r.graph == g for r in ok)]
    variants = [v for v in (*PRECISIONS, "ort-bare", "torch-eager") if any(r.variant == v for r in ok)]
    runs = sorted({(r.provider, r.threads) for r in ok})
    dashes = {run: _LINESTYLES[i % len(_LINESTYLES)] for i, run in enumerate(runs)}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.6), squeeze=False)
    panels = list(axes.flat)
    for ax, g in zip(panels, graphs, strict=False):
        _latency_panel(ax, ok, g, variants, dashes)
    _quality_panel(panels[len(graphs)], ok, variants)
    for ax in panels[len(graphs) + 1:]:
        ax.set_visible(False)
    fig.legend(handles=_legend_handles(variants, dashes), loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(title or f"{Path(result.bundle).name} ({result.kind})", fontsize=12)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    from edgeae.outputs import save_figure

    try:
        return save_figure(fig, path, dpi=110)  # whole or not at all
    finally:
        plt.close(fig)


def _latency_panel(ax: Any, ok: list[Row], graph: str, variants: list[str], dashes: dict) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for v in variants:
        for run, style in dashes.items():
            pts = sorted((r.batch, r.p50_ms) for r in ok if (r.graph, r.variant, (r.provider, r.threads)) ==
                         (graph, v, run))
            if pts:
                ax.plot(*zip(*pts, strict=True), linestyle=style, markersize=4, linewidth=1.4, **variant_style(v))
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="p50 latency per call (ms)", title=graph)
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # labels even within one decade
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.25)


def _quality_panel(ax: Any, ok: list[Row], variants: list[str]) -> None:
    """Size vs PSNR, one point per variant (largest size measured: both graphs when timed)."""
    seen: dict[str, tuple[int, float]] = {}
    for r in ok:
        if r.psnr is not None and r.size >= seen.get(r.variant, (-1, 0.0))[0]:
            seen[r.variant] = (r.size, r.psnr)
    points = [(v, seen[v][0] / 1024, seen[v][1]) for v in variants if v in seen]
    for v, kb, q in points:
        ax.plot(kb, q, linestyle="none", markersize=9, markeredgewidth=1.6, **variant_style(v))
    for (v, kb, q), lift in zip(points, _label_lifts(points), strict=True):
        ax.annotate(v, (kb, q), xytext=(8, -4 + 12 * lift), textcoords="offset points", fontsize=9,
                    color=variant_style(v)["color"])
    ax.margins(x=0.25, y=0.2)
    ax.set(xlabel="graph size (KB; torch-eager: weights file)", ylabel="held-out PSNR (dB)",
           title="size vs quality")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(True, alpha=0.25)


def _label_lifts(points: list[tuple[str, float, float]]) -> list[int]:
    """Lines (of 12 pt) to lift each point's label by, so labels of nearby points stack, not collide."""
    if not points:
        return []
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    lifts: list[int] = []
    for i, (_, x, y) in enumerate(points):
        near = [lifts[j] for j, (_, x2, y2) in enumerate(points[:i])
                if abs(x - x2) / span_x < 0.25 and abs(y - y2) / span_y < 0.12]
        lifts.append(max(near) + 1 if near else 0)
    return lifts


def _legend_handles(variants: list[str], dashes: dict) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], label=v, linewidth=1.4, markersize=6, **variant_style(v)) for v in variants]
    for (provider, threads), style in dashes.items():
        where = provider.replace("ExecutionProvider", "")
        handles.append(Line2D([], [], color="black", linestyle=style, linewidth=1.4,
                              label=f"{threads} thread{'s' if threads > 1 else ''} ({where})"))
    return handles
