"""Write the static site of one bundle: graphs, ``site.json``, the page and onnxruntime-web.

Data flow::

    bundle/ (manifest.json, encoder*.onnx, decoder*.onnx, samples.npy)
      -> check graphs (hash, IR version, opset, dtypes)   -> copy the chosen precisions
      -> Python runtime on the held-out samples            -> reference codes + .eae bytes
      -> site.json + index.html + page.mjs, runner.mjs, coder.mjs + style.css (+ ort/ from --ort-web)

The reference codes and ``.eae`` bytes let the page check itself against the Python
runtime on the device (the self-check box, pass or FAIL), the way export checks ONNX against
PyTorch; each graph's SHA-256 in ``site.json`` lets it refuse a changed or damaged graph.
The site is built beside ``out_dir`` and swapped in whole (:func:`edgeae.atomic.output_dir`).
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.atomic import check_output_dir, output_dir
from edgeae.errors import BundleError, ConfigError, StreamError, ValidationError
from edgeae.runtime.bundle import GraphEntry, Manifest, graph_problems, read_manifest
from edgeae.runtime.precision import parse_precisions
from edgeae.runtime.varint import get_varint

# The public names are listed once, in edgeae/web/__init__.py.

ORT_WEB_VERSION = "1.30.0"  # the onnxruntime-web release the page is written and tested against
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
# The WASM-only build: the ES module API, its loader and the SIMD WebAssembly binary (~14 MB).
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MAX_IR_VERSION = 13  # newest ONNX IR version onnxruntime-web 1.30 loads (IR 14 is refused; checked in Chromium)
MAX_OPSET = 26  # newest ai.onnx opset onnxruntime-web 1.30 accepts (27 is refused; checked in Chromium)
ASSETS = ("index.html", "page.mjs", "inputs.mjs", "signals.mjs", "runner.mjs", "coder.mjs", "style.css")  # the page, in edgeae/web/static/
DEFAULT_SAMPLES = 24  # held-out samples the page offers (and the self-check covers)
_PAGE_DTYPES = ("float32", "uint8")  # tensor dtypes the page can feed and read
CHECK_FP32_TOL = 1e-4  # self-check: max |code difference| page vs Python for fp32 and fp16 graphs
CHECK_INT8_TOL = 0.01  # self-check: max |code difference| / code range for int8 graphs (docs/web.md)


@dataclass
class SiteReport:
    """What ``build_site`` wrote and where onnxruntime-web comes from."""

    out: Path  # the site folder
    precisions: list[str]  # graph precisions the page offers, default first
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    ort_source: str = ""  # "local" (copied from --ort-web) or "cdn"
    ort_url: str = ""  # where the page loads onnxruntime-web from (relative or absolute)
    ort_version: str = ORT_WEB_VERSION  # version of the copied or linked onnxruntime-web
    samples: int = 0  # held-out samples embedded in site.json
    bits: list[int] = field(default_factory=list)  # codec bit depths the page codes with
    notes: list[str] = field(default_factory=list)  # things the user should know
    check: dict[str, Any] | None = None  # with check=True: the page's self-check in headless Chromium

    @property
    def page_bytes(self) -> int:
        """Everything the page downloads except onnxruntime-web itself."""
        return sum(n for p, n in self.files.items() if not p.startswith("ort/"))

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


# ------------------------------------------------------------------ ONNX header
def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message (values not decoded).

    Varints are read by the runtime's one decoder (``edgeae.runtime.varint``): ONNX writes
    minimal varints, and the top-level fields of the graphs edgeae exports stay below its
    2**35 limit (a huge ``model_version`` would be refused as unreadable).
    """
    pos = 0
    while pos < len(buf):
        key, pos = get_varint(buf, pos, "field key")
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = get_varint(buf, pos, f"field {number}")
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = get_varint(buf, pos, f"length of field {number}")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def onnx_header(path: str | Path) -> tuple[int, dict[str, int]]:
    """IR version and opset imports (domain -> version) of an ONNX file, without onnx.

    Reads the top-level fields of ``ModelProto`` (1: ir_version, 8: opset_import with
    1: domain, 2: version) and skips the rest, so no ONNX package is needed on the device side.
    """
    data = Path(path).read_bytes()
    ir, opsets = 0, {}
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == 0:
                ir = value
            elif number == 8 and wire == 2:
                domain, version = "", 0
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        domain = v.decode("utf-8")
                    elif n == 2 and w == 0:
                        version = v
                opsets[domain] = version
    except (ValueError, UnicodeDecodeError, StreamError) as exc:
        raise BundleError(f"{Path(path).name} is not a readable ONNX file ({exc}); re-export the bundle") from None
    return ir, opsets


def _check_graph(folder: Path, entry: GraphEntry) -> None:
    """Refuse a graph the page cannot run, saying what to do."""
    problems = graph_problems(folder, entry)  # the graph file and any external data it refers to
    if problems:
        raise BundleError(f"bundle {folder}: {'; '.join(problems)}")
    if entry.external_data:
        raise BundleError(f"{entry.file} keeps weights in {len(entry.external_data)} external data file(s); the page "
                          "loads one file per graph: re-export the bundle with edgeae export (weights inside)")
    if entry.fixed_batch not in (None, 1):
        raise BundleError(f"{entry.file} only runs batch {entry.fixed_batch}; the page runs one sample "
                          "at a time: re-export without --fixed-batch (or with --fixed-batch 1)")
    for spec in (*entry.inputs, *entry.outputs):
        if spec.dtype not in _PAGE_DTYPES:
            raise BundleError(f"{entry.file}: tensor {spec.name!r} is {spec.dtype}; the page feeds and reads "
                              f"{' and '.join(_PAGE_DTYPES)} tensors: choose an fp32 or int8 precision")
    ir, opsets = onnx_header(folder / entry.file)
    if ir > MAX_IR_VERSION:
        raise BundleError(
            f"{entry.file} has ONNX IR version {ir}; onnxruntime-web {ORT_WEB_VERSION} loads IR <= "
            f"{MAX_IR_VERSION}: re-export with an onnx package that writes IR {MAX_IR_VERSION}, or rewrite "
            f"the field (python -c \"import onnx; m = onnx.load('{entry.file}'); m.ir_version = "
            f"{MAX_IR_VERSION}; onnx.save(m, '{entry.file}')\") and update the manifest hash by re-exporting"
        )
    opset = opsets.get("", opsets.get("ai.onnx", 0))
    if opset > MAX_OPSET:
        raise BundleError(
            f"{entry.file} uses ai.onnx opset {opset}; onnxruntime-web {ORT_WEB_VERSION} implements up to "
            f"opset {MAX_OPSET}: re-export with --opset {MAX_OPSET}"
        )


def _pick_graphs(manifest: Manifest, folder: Path, asked) -> dict[str, dict[str, GraphEntry]]:
    """Each precision's (encoder, decoder) entries, checked; ``asked`` as given (messages name an alias)."""
    have = [p for p in manifest.precisions("encoder") if p in manifest.precisions("decoder")]
    precisions = parse_precisions(asked, have, str(folder))  # BundleError naming what the bundle has
    chosen = {}
    for precision in precisions:
        pair = {role: manifest.find_graph(role, precision) for role in ("encoder", "decoder")}
        for entry in pair.values():
            _check_graph(folder, entry)
        chosen[precision] = pair
    return chosen


# ---------------------------------------------------------------- site content
def _graph_record(entry: GraphEntry, output: str) -> dict[str, Any]:
    return {"file": entry.file, "input": entry.inputs[0].name, "input_dtype": entry.inputs[0].dtype,
            "output": output, "output_dtype": next((o.dtype for o in entry.outputs if o.name == output),
                                                   entry.outputs[0].dtype),
            "raw_io": entry.raw_io, "size": entry.size, "sha256": entry.sha256}


def _codecs(manifest: Manifest) -> list[dict[str, Any]]:
    """Every codec record with its 8-byte model id (hex): the page writes the same headers."""
    from edgeae.runtime.compress import codecs_of

    if manifest.codec is None:
        return []
    return [{**codec.to_dict(), "model_id": mid.hex()} for codec, mid in codecs_of(manifest)]


def _samples(manifest: Manifest, folder: Path, limit: int) -> np.ndarray | None:
    path, problem = manifest.samples_file(folder)
    if path is None:
        return None
    if problem:
        raise BundleError(f"bundle {folder}: {problem}")
    x = np.load(path, allow_pickle=False)
    if x.shape[1:] != manifest.sample_shape:
        raise BundleError(f"{path.name} has samples of shape {x.shape[1:]}, manifest says "
                          f"{manifest.sample_shape}; re-export the bundle")
    return x[:limit]


def _reference(folder: Path, precisions: list[str], x: np.ndarray | None,
               codecs: list[dict[str, Any]]) -> dict[str, Any]:
    """Python runtime results on the embedded samples: what the page compares itself with."""
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.model import load
    from edgeae.runtime.stream import compress_codes

    if x is None or len(x) == 0:
        return {}
    ref: dict[str, Any] = {}
    for precision in precisions:
        model = load(folder, precision, providers="cpu", threads=1)
        codes = model.encode(x)
        streams = {}
        for rec in codecs:
            codec = LatentCodec.from_dict(rec)
            mid = bytes.fromhex(rec["model_id"])
            streams[str(codec.bits)] = [
                base64.b64encode(compress_codes(codec, mid, c[None])).decode("ascii") for c in codes]
        ref[precision] = {"codes": codes.astype(float).tolist(), "eae": streams,
                          "code_tol": _code_tol(precision, codes)}
    return ref


def _is_signal(manifest: Manifest) -> bool:
    """(C, T) windows of sensor signals: the page plots each channel over time (not an image, not features)."""
    return not manifest.is_image and len(manifest.sample_shape) == 2


def _code_tol(precision: str, codes: np.ndarray) -> float:
    """Largest |code difference| page vs Python the self-check accepts (docs/web.md)."""
    if precision.startswith("int8"):
        return CHECK_INT8_TOL * float(np.ptp(codes) or 1.0)
    return CHECK_FP32_TOL


def _ort_files(ort_web: Path) -> str:
    """Check an onnxruntime-web dist/ folder; returns its version (from its package.json)."""
    missing = [f for f in ORT_WEB_FILES if not (ort_web / f).is_file()]
    if missing:
        raise ConfigError(
            f"--ort-web {ort_web} lacks {', '.join(missing)}: pass the dist/ folder of an installed npm "
            f"onnxruntime-web (npm install onnxruntime-web@{ORT_WEB_VERSION}; then "
            "--ort-web node_modules/onnxruntime-web/dist)"
        )
    pkg = ort_web.parent / "package.json"
    try:
        return str(json.loads(pkg.read_text(encoding="utf-8")).get("version", "unknown"))
    except (OSError, ValueError):
        return "unknown"


def _precision_list(precisions: str | list[str] | tuple[str, ...], samples: int) -> list[str]:
    """The precisions (the one parser: int8 = int8-static, no repeats); checks them and ``samples`` before any file is read."""
    precisions = parse_precisions(precisions)
    if not isinstance(samples, int) or samples < 0:
        raise ConfigError(f"samples={samples!r} must be a non-negative int")
    return precisions


_FOREIGN = "is not an edgeae site (no site.json); --overwrite only replaces sites"


def _write_site(out: Path, folder: Path, graphs: dict[str, dict[str, GraphEntry]], report: SiteReport,
                ort_dir: Path | None, ort_version: str) -> None:
    """The graphs, onnxruntime-web (or a note on the CDN) and the page's own files into ``out``."""
    for pair in graphs.values():
        for entry in pair.values():
            shutil.copyfile(folder / entry.file, out / entry.file)
    _copy_runtime(out, report, ort_dir, ort_version)
    static = resources.files("edgeae.web") / "static"
    for name in ASSETS:
        (out / name).write_bytes((static / name).read_bytes())


def _copy_runtime(out: Path, report: SiteReport, ort_dir: Path | None, ort_version: str) -> None:
    """Copy onnxruntime-web into the site when given, else point the page at the CDN; notes say which."""
    if ort_dir is not None:
        (out / "ort").mkdir(exist_ok=True)
        for name in ORT_WEB_FILES:
            shutil.copyfile(ort_dir / name, out / "ort" / name)
        report.ort_source, report.ort_url = "local", "ort/"
        if ort_version != ORT_WEB_VERSION:
            report.notes.append(f"--ort-web holds onnxruntime-web {ort_version}; the page is tested "
                                f"with {ORT_WEB_VERSION}")
    else:
        report.ort_source, report.ort_url = "cdn", ORT_WEB_CDN
        report.notes.append(f"the page loads onnxruntime-web {ORT_WEB_VERSION} from {ORT_WEB_CDN} "
                            "(needs the internet); pass --ort-web node_modules/onnxruntime-web/dist "
                            "to copy it into the site and work offline")


def _site_json(manifest: Manifest, folder: Path, title: str | None, precisions: list[str],
               graphs: dict[str, dict[str, GraphEntry]], codecs: list[dict[str, Any]], x: np.ndarray | None,
               reference: dict[str, Any], report: SiteReport, ort_version: str) -> dict[str, Any]:
    """The page's ``site.json``: model facts, graph files, codecs, samples and the Python reference."""
    norm = manifest.normalization
    return {
        "format": "edgeae-site", "version": 1,
        "bundle": title or folder.resolve().name, "kind": manifest.kind, "variational": bool(manifest.variational),
        "code_size": manifest.code_size, "sample_shape": list(manifest.sample_shape),
        "is_image": manifest.is_image,
        "is_signal": _is_signal(manifest),
        "normalization": {k: norm[k] for k in ("mode", "raw_dtype", "offset", "scale")},
        "precisions": precisions,
        "graphs": {p: {"encoder": _graph_record(pair["encoder"], "code"),
                       "decoder": _graph_record(pair["decoder"], "x_hat")} for p, pair in graphs.items()},
        "codecs": codecs,
        "samples": None if x is None else {"dtype": x.dtype.name, "shape": list(x.shape),
                                           "data": x.reshape(-1).tolist()},
        "reference": reference,
        "ort": {"source": report.ort_source, "url": report.ort_url, "version": ort_version},
    }


def build_site(
    bundle_dir: str | Path,
    out_dir: str | Path,
    precisions: str | list[str] | tuple[str, ...] = ("fp32",),
    ort_web: str | Path | None = None,
    samples: int = DEFAULT_SAMPLES,
    overwrite: bool = False,
    check: bool = False,
    title: str | None = None,
) -> SiteReport:
    """Write the static page of ``bundle_dir`` into ``out_dir``; returns what was written.

    Args:
        bundle_dir: folder written by ``edgeae export``.
        out_dir: the site folder (created; must be empty unless ``overwrite``).
        precisions: graph precisions the page offers ("fp32,int8-dynamic"); the first is the default.
        ort_web: the ``dist/`` folder of an npm ``onnxruntime-web``: its WASM build is copied so the
            page works offline. None: the page loads onnxruntime-web from a public CDN.
        samples: how many held-out samples of the bundle to embed (0 = none).
        overwrite: replace an earlier site in ``out_dir`` (a folder holding site.json), in one step.
        title: the name the page shows (default: the bundle folder's name).
        check: open the written site in headless Chromium (``edgeae.web.headless``) and compare
            its codes and ``.eae`` bytes with the Python runtime on the embedded samples.
    """
    folder, out = Path(bundle_dir), Path(out_dir)
    asked, precisions = precisions, _precision_list(precisions, samples)
    manifest = read_manifest(folder)
    graphs = _pick_graphs(manifest, folder, asked)
    ort_dir = Path(ort_web) if ort_web is not None else None
    ort_version = _ort_files(ort_dir) if ort_dir is not None else ORT_WEB_VERSION
    check_output_dir(out, overwrite, "site.json", _FOREIGN, ConfigError)  # before any work

    codecs = _codecs(manifest)
    x = _samples(manifest, folder, samples)
    reference = _reference(folder, precisions, x, codecs)
    report = SiteReport(out=out, precisions=precisions, ort_version=ort_version,
                        samples=0 if x is None else len(x), bits=[c["bits"] for c in codecs])
    with output_dir(out, overwrite, "site.json", _FOREIGN, ConfigError) as tmp:
        _write_site(tmp, folder, graphs, report, ort_dir, ort_version)
        if not codecs:
            report.notes.append("the bundle has no codec tables: the page shows no .eae sizes "
                                "(re-export with codec tables to compress)")
        site = _site_json(manifest, folder, title, precisions, graphs, codecs, x, reference, report, ort_version)
        (tmp / "site.json").write_text(json.dumps(site, separators=(",", ":"), allow_nan=False) + "\n",
                                       encoding="utf-8")
        report.files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    if check:
        report.check = _check_in_browser(out, reference)
    return report


def _check_in_browser(out: Path, reference: dict[str, Any]) -> dict[str, Any]:
    """The page's self-check in headless Chromium; ValidationError when it disagrees with Python."""
    from edgeae.web.headless import check_site, missing

    why = missing()
    if why:
        raise ConfigError(f"check=True (--check) cannot run: {why}")
    if not reference:
        raise ConfigError("check=True (--check) needs held-out samples on the page: the bundle has none, or --samples is 0")
    result = check_site(out)
    bad = []
    for p, c in result["precisions"].items():
        tol = reference[p]["code_tol"]  # the page's verdict, and the same rule again on this side
        if not (c["ok"] and c["max_code_diff"] <= tol and c["eae_wrong"] == 0 and c["coder_equal"] == c["eae_total"]):
            bad.append(f"{p}: codes within {c['max_code_diff']:.2e} (allowed {tol:.1e}); .eae "
                       f"bytes identical in {c['eae_equal']} of {c['eae_total']} streams ({c['eae_wrong']} with the "
                       f"same symbols but other bytes); coder gives Python's bytes in {c['coder_equal']} of "
                       f"{c['eae_total']}")
    if bad:
        raise ValidationError(f"the page's self-check in Chromium {result['chromium']} failed: " + "; ".join(bad))
    return result
