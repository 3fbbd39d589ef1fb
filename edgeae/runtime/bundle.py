"""The bundle manifest: the one definition of ``manifest.json`` (standard library only).

A bundle is a folder of ONNX graphs plus ``manifest.json``. The exporter writes the
manifest through :func:`graph_entry` / :func:`write_manifest`; the runtime reads it with
:func:`read_manifest` and checks files with :func:`verify_bundle`, so both sides agree on
one schema. Every graph file is pinned by size and SHA-256 so a tampered or truncated
file is refused before onnxruntime sees it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeae.atomic import atomic_write_text
from edgeae.config import MODEL_KINDS, NORMALIZATION_MODES, VARIATIONAL_KINDS, Normalization
from edgeae.errors import BundleError, ConfigError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
    "PRECISIONS",
    "ROLES",
    "GRAPH_FORMATS",
    "MANIFEST_NAME",
    "TensorSpec",
    "GraphEntry",
    "Manifest",
    "file_sha256",
    "file_problem",
    "graph_entry",
    "read_manifest",
    "write_manifest",
    "verify_bundle",
]

FORMAT = "edgeae-bundle"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")
ROLES = ("encoder", "decoder")
GRAPH_FORMATS = ("onnx", "ort")
MANIFEST_NAME = "manifest.json"
_MAX_MANIFEST_BYTES = 64 << 20  # per-feature normalization of a 3x512x512 input stays far below


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise BundleError(f"malformed manifest: {message}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _choice(name: str, value: Any, allowed: tuple) -> None:
    _need(value in allowed, f"{name} {value!r} is not one of: {', '.join(map(str, allowed))}")


@dataclass
class TensorSpec:
    """One graph input or output as the manifest records it."""

    name: str  # ONNX tensor name: x | code | mean | log_var | x_hat
    shape: list[Any]  # dims; the batch axis is the string "batch" (or an int if fixed)
    dtype: str  # numpy dtype name: float32 | float16 | uint8

    @classmethod
    def coerce(cls, value: Any) -> TensorSpec:
        """Accept a TensorSpec, a dict or a ``(name, shape, dtype)`` tuple."""
        if isinstance(value, TensorSpec):
            return value
        if isinstance(value, dict):
            _need({"name", "shape", "dtype"} <= set(value), f"tensor spec {value!r} needs name, shape, dtype")
            return cls(str(value["name"]), list(value["shape"]), str(value["dtype"]))
        name, shape, dtype = value
        return cls(str(name), list(shape), str(dtype))


@dataclass
class GraphEntry:
    """One graph file of the bundle, pinned by size and hash."""

    role: str  # encoder | decoder
    precision: str  # fp32 | fp16 | int8-dynamic | int8-static
    file: str  # file name inside the bundle folder, e.g. "encoder.int8-dynamic.onnx"
    opset: int  # ai.onnx opset the graph is stamped with
    size: int  # bytes
    sha256: str  # hex digest of the file
    inputs: list[TensorSpec]  # graph inputs, in order
    outputs: list[TensorSpec]  # graph outputs, in order
    format: str = "onnx"  # onnx | ort (ORT flatbuffer format for mobile builds)
    raw_io: bool = False  # True: input/output in raw units (uint8), normalization folded in
    fixed_batch: int | None = None  # None = dynamic batch axis; N = graph only runs batch N

    def __post_init__(self) -> None:
        _choice("graph role", self.role, ROLES)
        _choice("graph precision", self.precision, PRECISIONS)
        _choice("graph format", self.format, GRAPH_FORMATS)
        _need(isinstance(self.file, str) and _bare_name(self.file), f"graph file {self.file!r} must be a bare file name")
        _need(_int(self.opset) and self.opset > 0, f"graph {self.file}: opset {self.opset!r} must be a positive int")
        _need(_int(self.size) and self.size >= 0, f"graph {self.file}: size {self.size!r} must be an int")
        _need(isinstance(self.sha256, str) and len(self.sha256) == 64, f"graph {self.file}: sha256 must be 64 hex digits")
        _need(self.fixed_batch is None or (_int(self.fixed_batch) and self.fixed_batch > 0),
              f"graph {self.file}: fixed_batch {self.fixed_batch!r} must be null or a positive int")
        self.inputs = [TensorSpec.coerce(t) for t in self.inputs]
        self.outputs = [TensorSpec.coerce(t) for t in self.outputs]
        _need(bool(self.inputs) and bool(self.outputs), f"graph {self.file}: needs inputs and outputs")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphEntry:
        _need(isinstance(data, dict), f"graph entry must be an object, got {data!r}")
        known = {"role", "precision", "file", "opset", "size", "sha256", "inputs", "outputs",
                 "format", "raw_io", "fixed_batch"}
        missing = {"role", "precision", "file", "opset", "size", "sha256", "inputs", "outputs"} - set(data)
        _need(not missing, f"graph entry {data.get('file', '?')!r} lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bare_name(name: str) -> bool:
    """A file name inside the bundle folder: no separators, no '..', nothing absolute."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_format(fmt: Any, version: Any) -> None:
    """Refuse what is not an edgeae bundle, or a schema version this edgeae cannot read."""
    _need(fmt == FORMAT, f"format {fmt!r} is not {FORMAT!r}: is this an edgeae bundle?")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise BundleError(
            f"bundle format_version {version!r} is not supported: this edgeae reads format_version "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}; upgrade edgeae (pip install -U edgeae) "
            "or re-export the bundle"
        )


@dataclass
class Manifest:
    """The contents of ``manifest.json``; validated on construction."""

    kind: str  # mlp | conv | vae | conv-vae
    code_size: int  # width of the latent code
    input: dict[str, Any]  # {"shape": [C, H, W] or [D] (no batch axis), "dtype": "float32", "is_image": bool}
    normalization: dict[str, Any]  # {"mode", "raw_dtype", "offset", "scale"} (see edgeae.config.Normalization)
    graphs: list[GraphEntry]  # every graph file in the bundle
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig as a dict
    variational: bool | None = None  # None: derived from kind
    samples: dict[str, Any] | None = None  # {"file", "sha256", "count"} of held-out raw samples
    validation: dict[str, Any] = field(default_factory=dict)  # per precision: errors, psnr, latency, passed
    codec: dict[str, Any] | list[dict[str, Any]] | None = None  # latent codec tables, one per bit depth
    tools: dict[str, str] = field(default_factory=dict)  # versions of the tools that wrote the bundle
    created: str = field(default_factory=_utc_now)  # ISO 8601 UTC time of writing
    format: str = FORMAT  # always "edgeae-bundle"
    format_version: int = FORMAT_VERSION  # schema version

    def __post_init__(self) -> None:
        _check_format(self.format, self.format_version)
        _choice("kind", self.kind, MODEL_KINDS)
        for name, value, types in (("model", self.model, dict), ("validation", self.validation, dict),
                                   ("tools", self.tools, dict), ("created", self.created, str),
                                   ("variational", self.variational, (bool, type(None))),
                                   ("codec", self.codec, (dict, list, type(None)))):
            _need(isinstance(value, types), f"{name} {value!r} has the wrong type ({type(value).__name__})")
        if self.variational is None:
            self.variational = self.kind in VARIATIONAL_KINDS
        _need(_int(self.code_size) and self.code_size > 0, f"code_size {self.code_size!r} must be a positive int")
        _need(isinstance(self.input, dict) and "shape" in self.input, "input needs a shape")
        shape = self.input["shape"]
        _need(isinstance(shape, list) and 0 < len(shape) <= 3 and all(_int(v) and v > 0 for v in shape),
              f"input shape {shape!r} must be a list of positive ints (one sample, no batch axis)")
        self.input.setdefault("dtype", "float32")
        self.input.setdefault("is_image", len(shape) == 3)
        norm = self.normalization
        _need(isinstance(norm, dict) and {"mode", "raw_dtype", "offset", "scale"} <= set(norm),
              "normalization needs mode, raw_dtype, offset, scale")
        _choice("normalization mode", norm["mode"], NORMALIZATION_MODES)
        _choice("raw dtype", norm["raw_dtype"], ("uint8", "float32"))
        try:  # lists of finite numbers, scales non-zero (the one definition, in edgeae.config)
            Normalization(**{k: norm[k] for k in ("mode", "raw_dtype", "offset", "scale")})
        except (ConfigError, TypeError, ValueError) as exc:
            raise BundleError(f"malformed manifest: normalization: {exc}; re-export the bundle") from None
        n = len(norm["offset"])
        _need(n in (1, math.prod(shape)),
              f"normalization has {n} offset/scale values; expected 1 or one per feature ({math.prod(shape)})")
        self.graphs = [g if isinstance(g, GraphEntry) else GraphEntry.from_dict(g) for g in self.graphs]
        if self.samples is not None:
            rec = self.samples
            _need(isinstance(rec, dict) and isinstance(rec.get("file", "samples.npy"), str)
                  and _bare_name(rec.get("file", "samples.npy")) and isinstance(rec.get("sha256"), str),
                  f"samples {rec!r} must be {{'file': a bare file name, 'sha256': hex digest, 'count': N}}")

    # ---- accessors -------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.input["shape"])

    @property
    def is_image(self) -> bool:
        return bool(self.input.get("is_image"))

    def samples_file(self, folder: str | Path) -> tuple[Path | None, str | None]:
        """The bundle's held-out samples file and what is wrong with it (None when it checks out)."""
        if not self.samples:
            return None, None
        path = Path(folder) / str(self.samples.get("file", "samples.npy"))
        return path, file_problem(path, None, str(self.samples.get("sha256", "")))

    def precisions(self, role: str = "encoder", format: str = "onnx") -> list[str]:
        """Precisions that have a ``role`` graph in ``format``, in canonical order."""
        have = {g.precision for g in self.graphs if g.role == role and g.format == format}
        return [p for p in PRECISIONS if p in have]

    def find_graph(self, role: str, precision: str, format: str = "onnx") -> GraphEntry | None:
        """The graph to run: dynamic batch preferred, then normalized I/O before raw I/O."""
        found = [g for g in self.graphs if (g.role, g.precision, g.format) == (role, precision, format)]
        found.sort(key=lambda g: (g.fixed_batch is not None, g.raw_io))
        return found[0] if found else None

    # ---- (de)serialization ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        _need(isinstance(data, dict), "top level must be a JSON object")
        _check_format(data.get("format"), data.get("format_version"))  # before the other keys
        required = ("kind", "code_size", "input", "normalization", "graphs")
        missing = [k for k in required if k not in data]
        _need(not missing, f"missing keys: {', '.join(missing)}")
        _need(isinstance(data["graphs"], list), "graphs must be a list")
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except BundleError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise BundleError(f"malformed manifest: {type(exc).__name__}: {exc}; re-export the bundle") from None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        order = ["format", "format_version", "model", "kind", "variational", "code_size", "input",
                 "normalization", "graphs", "samples", "validation", "codec", "tools", "created"]
        return {k: data[k] for k in order}


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def graph_entry(
    path: str | Path,
    role: str,
    precision: str,
    opset: int,
    inputs: list[Any],
    outputs: list[Any],
    raw_io: bool = False,
    fixed_batch: int | None = None,
    format: str = "onnx",
) -> GraphEntry:
    """Describe a written graph file: measures its size and SHA-256 now."""
    path = Path(path)
    return GraphEntry(
        role=role, precision=precision, file=path.name, opset=int(opset), size=path.stat().st_size,
        sha256=file_sha256(path), inputs=list(inputs), outputs=list(outputs), format=format,
        raw_io=bool(raw_io), fixed_batch=fixed_batch,
    )


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``<bundle_dir>/manifest.json`` (files are checked by :func:`verify_bundle`)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        hint = "" if Path(bundle_dir).is_dir() else " (the folder does not exist)"
        raise BundleError(f"{path} not found{hint}: is {bundle_dir} a bundle written by `edgeae export`?")
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise BundleError(f"{path} is {path.stat().st_size} bytes, more than a manifest can be "
                              f"({_MAX_MANIFEST_BYTES}); re-export the bundle")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{path} is not valid JSON ({type(exc).__name__}: {exc}); re-export the bundle") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read ({exc.strerror}); check the bundle's permissions") from None
    return Manifest.from_dict(data)


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename) and return its path."""
    path = Path(bundle_dir) / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return path


def file_problem(path: Path, size: int | None, sha256: str) -> str | None:
    """Why ``path`` does not match its manifest record, or None when it does."""
    if not path.is_file():
        return f"{path.name}: file is missing"
    if not path.resolve().is_relative_to(path.parent.resolve()):
        return f"{path.name}: a link to {path.resolve()}, outside the bundle folder; copy the file into the bundle"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return (f"{path.name}: size {actual_size} bytes, manifest says {size} "
                "(truncated or replaced file; re-export or re-copy the bundle)")
    actual = file_sha256(path)
    if actual != sha256:
        return (f"{path.name}: SHA-256 mismatch (expected {sha256}, got {actual}); "
                "the file was modified: re-export or re-copy the bundle")
    return None


def verify_bundle(bundle_dir: str | Path) -> list[str]:
    """Check the manifest and every file it lists; returns problems (empty = bundle OK)."""
    try:
        manifest = read_manifest(bundle_dir)
    except BundleError as exc:
        return [str(exc)]
    folder = Path(bundle_dir)
    problems = [p for g in manifest.graphs if (p := file_problem(folder / g.file, g.size, g.sha256))]
    _, problem = manifest.samples_file(folder)
    return problems + ([problem] if problem else [])
