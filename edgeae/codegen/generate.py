"""Bundle -> C: lower every graph, emit it, check it on the held-out samples, write all or nothing.

::

    bundle/ (manifest, encoder/decoder .onnx, samples.npy)
      -> per role x precision: load_graph -> lower_fp32 | lower_int8 -> emit (.h + .c)
      -> gcc -std=c99 ... -Werror, g++ -std=c++17 ... -Werror, harness on held-out samples
      -> compare: fp32 vs ONNX Runtime (max abs <= tolerance); int8 vs the integer
         reference (0 LSB) and, for the record, vs ONNX Runtime
      -> out_dir/ (renamed from a temporary sibling only when every check passed)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.atomic import claim_output_dir, commit_staging_dir
from edgeae.codegen.names import DEFAULT_PREFIX, check_prefix
from edgeae.errors import ConfigError

__all__ = ["CodegenResult", "GraphReport", "generate_c", "SUPPORTED_PRECISIONS"]

SUPPORTED_PRECISIONS = ("fp32", "int8-static")
_TAG = {"fp32": "fp32", "int8-static": "int8"}


@dataclass
class GraphReport:
    """What was generated for one graph and how it checked out."""

    name: str  # symbol prefix and file stem
    role: str  # encoder | decoder
    precision: str  # fp32 | int8-static
    graph: str  # source .onnx file in the bundle
    sha256: str  # of the source graph
    arena_bytes: int
    weight_bytes: int
    inputs: list[Any]  # (tensor, C type, elements)
    outputs: list[Any]
    samples: int  # held-out samples run through the C code
    checks: dict[str, Any] = field(default_factory=dict)  # per comparison: max error, mismatches


@dataclass
class CodegenResult:
    """What :func:`generate_c` returns."""

    out_dir: Path
    graphs: list[GraphReport]
    notes: list[str]
    compress: dict[str, Any] = field(default_factory=dict)  # the one-call C compression and its checks

    def table(self) -> str:
        head = f"{'file':<26}{'precision':<12}{'arena B':>9}{'weights B':>11}{'samples':>9}  check"
        lines = [head, "-" * len(head)]
        for g in self.graphs:
            check = "; ".join(f"{k}: {v['summary']}" for k, v in g.checks.items())
            lines.append(f"{g.name + '.c':<26}{g.precision:<12}{g.arena_bytes:>9}{g.weight_bytes:>11}{g.samples:>9}  {check}")
        for tag in ("fp32", "int8"):
            c = self.compress.get(tag)
            if c:
                same = "= `edgeae compress`" if c["equal_edgeae_compress"] else (
                    f"{c['symbols_differ']}/{c['symbols']} symbols differ from `edgeae compress` (ONNX Runtime codes)")
                lines.append(f"compress_{tag}: {self.compress['samples']} samples -> {c['bytes_per_sample']:.2f} "
                             f"bytes/sample ({self.compress['bits']}-bit), = Python for the C codes, {same}")
        st = self.compress.get("stream", {})
        if st.get("runs"):
            lines.append(f"stream: {st['channels']} x {st['steps']} windows, ring {st['ring_bytes']} B; "
                         f"{len(st['runs'])} pushes (hops {sorted({r['hop'] for r in st['runs']})}, blocks, restarts) "
                         "= Python's header + one append per window")
        return "\n".join(lines)


def _start(out_dir: Path, overwrite: bool) -> Path:
    return claim_output_dir(out_dir, overwrite, "codegen.json", "was not written by edgeae codegen (no "
                            "codegen.json); --overwrite only replaces generated C folders", ConfigError)


def _chosen_precisions(value, available: list[str], where: str) -> list[str]:
    """The precisions to generate: those asked for (the one parser; int8 = int8-static), or every one C can."""
    from edgeae.runtime.precision import parse_precisions

    if value is None:
        chosen = [p for p in available if p in SUPPORTED_PRECISIONS]
        if not chosen:
            raise ConfigError(f"the bundle has no fp32 or int8-static graphs (it has: {', '.join(available)})")
        return chosen
    items = parse_precisions(value)
    for p in items:
        if p not in SUPPORTED_PRECISIONS:
            raise ConfigError(f"precision {p!r} cannot be generated as C; choose from: fp32, int8-static (int8). "
                              "int8-dynamic quantizes activations per call with float ranges and fp16 needs "
                              "half-float hardware: export with --precision fp32,int8-static")
    return parse_precisions(value, available, where)  # as given, so a message names an alias


def _options(bundle_dir: Path, manifest, precisions, io: str, codec: bool | None, verify: bool,
             max_samples: int | None) -> tuple[list[str], bool, bool, np.ndarray | None]:
    """Check the bundle against the options; the precisions, raw I/O, codec and verification samples to use."""
    from edgeae.runtime.bundle import verify_bundle

    problems = verify_bundle(bundle_dir)
    if problems:
        raise ConfigError(f"bundle {bundle_dir} does not check out: " + "; ".join(problems))
    avail = manifest.precisions("encoder")
    chosen = _chosen_precisions(precisions, avail, str(bundle_dir))
    has_raw = any(g.raw_io for g in manifest.graphs)
    if io == "raw" and not has_raw:
        raise ConfigError(f"bundle {bundle_dir} has no raw-I/O graphs; re-export with --raw-io or use --io model")
    raw = has_raw if io == "auto" else io == "raw"
    has_codec = bool(manifest.codec)
    if codec is None:
        codec = has_codec
    elif codec and not has_codec:
        raise ConfigError(f"bundle {bundle_dir} has no codec tables (manifest 'codec' is empty); re-export it with "
                          "--codec-bits, or pass codec=False / --no-codec")
    samples = None
    if verify:
        path, problem = manifest.samples_file(bundle_dir)
        if path is None or problem:
            raise ConfigError(f"bundle {bundle_dir} has no usable held-out samples ({problem or 'none listed'}); "
                              "re-export it, or pass verify=False / --no-verify")
        samples = np.load(path)[:max_samples]
    return chosen, raw, codec, samples


def _write_graph(tmp: Path, bundle_dir: Path, manifest, p: str, role: str, raw: bool, prefix: str, verify: bool,
                 samples: np.ndarray | None):
    """Lower, emit, write and (optionally) check one graph; its report and its emitted unit."""
    from edgeae import __version__
    from edgeae.codegen.emit import emit
    from edgeae.codegen.graph import load_graph
    from edgeae.codegen.lower_fp32 import lower_fp32
    from edgeae.codegen.lower_int8 import lower_int8

    entry = next((g for g in manifest.graphs if (g.role, g.precision, g.format, g.raw_io, g.fixed_batch)
                  == (role, p, "onnx", raw, None)), None)
    if entry is None:
        raise ConfigError(f"bundle {bundle_dir} has no {'raw-I/O ' if raw else ''}{role} graph in {p}")
    g = load_graph(bundle_dir / entry.file, role)
    program = lower_fp32(g) if p == "fp32" else lower_int8(g)
    name = f"{prefix}_{role}_{_TAG[p]}"
    meta = {"graph": entry.file, "sha256": g.sha256, "role": role, "precision": p, "version": __version__,
            "code_size": manifest.code_size, "notes": _notes(p, raw, manifest)}
    unit = emit(program, name, meta)
    (tmp / f"{name}.h").write_text(unit.header, encoding="utf-8")
    (tmp / f"{name}.c").write_text(unit.source, encoding="utf-8")
    rep = GraphReport(name, role, p, entry.file, g.sha256, unit.arena_bytes, unit.weight_bytes,
                      [list(t) for t in unit.inputs], [list(t) for t in unit.outputs], 0)
    if verify:
        from edgeae.codegen.verify import check_unit

        rep.samples, rep.checks = check_unit(unit, program, bundle_dir, manifest, entry, raw, samples,
                                             tmp / ".build")
    return rep, unit


def _write_compress(tmp: Path, bundle_dir: Path, manifest, prefix: str, encoders: list, verify: bool,
                    samples: np.ndarray | None, raw: bool) -> dict[str, Any]:
    """Write the C codec and the one-call compression, (optionally) check them; their report."""
    from edgeae.codegen.codec import bundle_codecs, write_codec_files
    from edgeae.codegen.compress_c import check_compress, codec_prefix, compress_sources

    write_codec_files(bundle_codecs(bundle_dir), tmp, codec_prefix(prefix), origin=f"bundle {bundle_dir.name}")
    h, c = compress_sources(prefix, encoders, manifest.code_size)
    (tmp / f"{prefix}_compress.h").write_text(h, encoding="utf-8")
    (tmp / f"{prefix}_compress.c").write_text(c, encoding="utf-8")
    compress_report = {"files": sorted(p.name for p in tmp.iterdir() if "codec" in p.name or "compress" in p.name)}
    if verify:
        compress_report.update(check_compress(tmp, tmp / ".build", prefix, encoders, bundle_dir, samples,
                                              raw, manifest))
    compress_report["stream"] = _write_stream(tmp, bundle_dir, manifest, prefix, encoders, verify, samples, raw)
    return compress_report


def _write_stream(tmp: Path, bundle_dir: Path, manifest, prefix: str, encoders: list, verify: bool,
                  samples: np.ndarray | None, raw: bool) -> dict[str, Any]:
    """Signal bundles: the streaming API (time steps in, one chunk per window), (optionally) checked."""
    from edgeae.codegen.stream_c import check_stream, stream_layout, stream_sources

    layout = stream_layout(manifest, raw)
    if isinstance(layout, str):
        return {"written": False, "why": layout}
    h, c = stream_sources(prefix, encoders, manifest.code_size, layout)
    (tmp / f"{prefix}_stream.h").write_text(h, encoding="utf-8")
    (tmp / f"{prefix}_stream.c").write_text(c, encoding="utf-8")
    report: dict[str, Any] = {"written": True, "files": [f"{prefix}_stream.h", f"{prefix}_stream.c"]}
    if verify:
        report.update(check_stream(tmp, tmp / ".build", prefix, encoders, bundle_dir, samples, raw, manifest,
                                   layout))
    return report


def generate_c(
    bundle_dir: str | Path,
    out_dir: str | Path,
    precisions: str | list[str] | None = None,
    prefix: str = DEFAULT_PREFIX,
    io: str = "auto",
    verify: bool = True,
    overwrite: bool = False,
    max_samples: int | None = None,
    codec: bool | None = None,
) -> CodegenResult:
    """Write C99 for every graph of the bundle (encoder, decoder) x precision into ``out_dir``.

    ``io``: "raw" (uint8 pixels in and out, normalization folded in; needs a bundle exported
    with --raw-io), "model" (float model units), "auto" (raw when the bundle has it).
    ``verify``: compile and run on the bundle's held-out samples and compare (see module
    docstring); a failed check raises and writes nothing. ``max_samples``: how many of the
    samples the bundle carries to check on (None: all, 256 for bundles from ``edgeae export``).
    ``codec``: also write the bundle's C `.eae` codec and the one-call API
    ``<prefix>_compress_<p>`` (raw samples -> stream bytes; see
    :mod:`edgeae.codegen.compress_c`), checked byte for byte against Python's streams; for
    signal bundles (input (C, T)) also the streaming API ``<prefix>_stream_*`` (time steps in,
    one chunk per window; :mod:`edgeae.codegen.stream_c`), checked the same way.
    None (default): when the bundle has codec tables.
    """
    from edgeae.runtime.bundle import read_manifest

    prefix = check_prefix(prefix)
    if io not in ("auto", "raw", "model"):
        raise ConfigError(f"io {io!r} must be one of: auto, raw, model")
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    manifest = read_manifest(bundle_dir)
    chosen, raw, codec, samples = _options(bundle_dir, manifest, precisions, io, codec, verify, max_samples)
    tmp = _start(out_dir, overwrite)
    try:
        reports, notes, encoders = [], [], []
        compress_report: dict[str, Any] = {}
        for p in chosen:
            for role in ("encoder", "decoder"):
                rep, unit = _write_graph(tmp, bundle_dir, manifest, p, role, raw, prefix, verify, samples)
                reports.append(rep)
                if role == "encoder":
                    encoders.append(unit)
        if codec:
            compress_report = _write_compress(tmp, bundle_dir, manifest, prefix, encoders, verify, samples, raw)
        shutil.rmtree(tmp / ".build", ignore_errors=True)
        (tmp / "codegen.json").write_text(json.dumps({
            "bundle": str(bundle_dir), "io": "raw" if raw else "model", "prefix": prefix, "verified": verify,
            "graphs": [r.__dict__ for r in reports], "compress": compress_report}, indent=2) + "\n",
            encoding="utf-8")
        commit_staging_dir(tmp, out_dir)
        return CodegenResult(out_dir, reports, notes, compress_report)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _notes(precision: str, raw: bool, manifest) -> list[str]:
    lines = []
    if raw:
        lines.append(f"I/O: raw units ({manifest.normalization['raw_dtype']}); the normalization "
                     f"({manifest.normalization['mode']}) is folded into the graph.")
    else:
        lines.append("I/O: model units (float32, normalized as the manifest says).")
    if precision == "int8-static":
        lines += ["int8: integer kernels (8-bit x 8-bit -> int32, per-channel requantization by an",
                  "integer multiplier and shift, ties to even); bit-exact with edgeae's integer",
                  "reference of the QDQ graph (see docs/embedded.md). No float in inner loops, no libm."]
    return lines

