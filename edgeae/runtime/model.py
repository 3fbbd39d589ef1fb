"""Load a bundle and run it: :func:`load` -> :class:`EdgeModel` (numpy + onnxruntime only).

Data flow::

    raw x (uint8 | float32) -> Normalizer -> encoder.onnx -> code (N, code_size)
    code -> decoder.onnx -> x_hat (model units) -> Normalizer.denormalize -> raw units

Everything a call needs (sessions, tensor names, dtypes, the normalizer) is worked out
once in :func:`load`; a call only validates its input and runs one session per chunk.
A loaded model keeps no per-call state, so one instance serves several threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.errors import BundleError, InputError
from edgeae.runtime.bundle import PRECISIONS, GraphEntry, Manifest, graph_problems, read_manifest
from edgeae.runtime.contract import (
    NonFiniteInput,
    SampleContract,
    as_codes,
    check_codes,
    check_output,
)
from edgeae.runtime.graphscan import scan_graph
from edgeae.runtime.iocheck import ORT_TYPES, io_problems
from edgeae.runtime.precision import ALIASES
from edgeae.runtime.preprocess import Normalizer
from edgeae.runtime.session import (
    create_session,
    exact_int8_options,
    max_supported_opset,
    resolve_providers,
    session_options,
)

__all__ = ["DEFAULT_BATCH_SIZE", "EdgeModel", "load"]

DEFAULT_BATCH_SIZE = 4096  # samples per session.run for large arrays
_FLOAT32 = np.dtype(np.float32)
_vdot = getattr(np.vdot, "_implementation", np.vdot)  # the C function, without the dispatch wrapper
Progress = Callable[[int], None]  # called with the number of samples finished in each chunk


class _Graph:
    """One open session and what is needed to feed it (fixed at load time)."""

    def __init__(self, folder: Path, entry: GraphEntry, manifest: Manifest, providers: list[str], options: Any,
                 output: str):
        self.entry = entry
        self.weight_format = scan_graph(folder / entry.file).weight_format if entry.format == "onnx" else "-"
        if self.weight_format == "s8":  # exact u8 x s8 products on x86 without VNNI (see docs/deploy.md)
            options = exact_int8_options(options)
        self.session = create_session(folder / entry.file, providers, options)
        problems = io_problems(self.session, entry, manifest.sample_shape, manifest.code_size)
        if problems:
            raise BundleError(f"{'; '.join(problems)}; re-export the bundle")
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        self.input_dtype = np.dtype(ORT_TYPES[inputs[0].type])
        self.output_names = [output]
        self.raw_io = entry.raw_io
        self.fixed_batch = entry.fixed_batch
        # onnxruntime's public run() re-validates the feed's names on every call; edgeae built
        # the feed itself, so it calls the binding underneath (about 1 us less per call).
        self.call = getattr(self.session, "_sess", self.session).run  # (output_names, feed, run_options)

    def run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if self.fixed_batch and n != self.fixed_batch:  # pad the last chunk, drop the padding after
            pad = np.repeat(x[-1:], self.fixed_batch - n, axis=0)
            x = np.concatenate([x, pad])
        try:
            out = self.call(self.output_names, {self.input_name: x.astype(self.input_dtype, copy=False)}, None)[0]
        except Exception as exc:  # onnxruntime's own exception types (Fail, RuntimeException, ...)
            raise _run_failure(self.entry.file, exc, n) from None
        return out[:n]


def _run_failure(file: str, exc: Exception, n: int) -> BundleError:
    """An onnxruntime failure while running ``file`` on ``n`` samples, as a BundleError naming the graph."""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return BundleError(f"onnxruntime failed running {file} on a batch of {n}: {text}; the graph cannot run "
                       "here (a smaller --batch-size may help if it ran out of memory), or re-export the bundle")


class EdgeModel:
    """An exported autoencoder, ready to encode, decode and reconstruct numpy arrays.

    Inputs follow the input contract (:mod:`edgeae.runtime.contract`, docs/INPUT.md): one
    sample or a batch, in the bundle's layout or as grayscale without a channel axis,
    channel-last or flat; the output has a batch axis exactly when the input had one.
    ``uint8`` inputs of an 8-bit bundle are raw pixels (normalized here), floats are
    model units there and raw features for ``standardize`` bundles; other real dtypes
    are cast, NaN/inf and wrong shapes are refused with :class:`InputError`.
    """

    def __init__(self, folder: Path, manifest: Manifest, precision: str, encoder: _Graph, decoder: _Graph):
        self.folder = folder  # the bundle folder
        self.manifest = manifest  # the validated manifest.json
        self.precision = precision  # the precision loaded
        self.providers = list(encoder.session.get_providers())  # what onnxruntime actually uses
        self.code_size = manifest.code_size  # width of one code
        self.sample_shape = manifest.sample_shape  # one sample, no batch axis
        self.normalizer = Normalizer(manifest.normalization, self.sample_shape)
        norm = manifest.normalization
        self.contract = SampleContract(self.sample_shape, norm["mode"], norm["raw_dtype"],
                                       pixels_only=encoder.raw_io and norm["mode"] != "standardize")
        self._encoder = encoder
        self._decoder = decoder
        self._floats_are_raw = norm["mode"] == "standardize"
        # The fast path (one chunk in the bundle's layout, no cast): decided here, so a call
        # only compares its dtype and shape with these, normalizes float data units
        # (standardized signals and vectors) and runs the graph.
        if encoder.fixed_batch:
            self._fast_dtype = None
        elif encoder.raw_io:
            self._fast_dtype = encoder.input_dtype
        else:
            self._fast_dtype = _FLOAT32
        self._fast_norm = self.normalizer.normalize if self._floats_are_raw and not encoder.raw_io else None
        self._code_tail = (self.code_size,)
        self._bounded = self.contract.bounded
        self._enc_call, self._enc_outputs, self._enc_input = encoder.call, encoder.output_names, encoder.input_name
        graphs = [g.entry for g in (encoder, decoder)]
        self.info = {  # essentials for display; see edgeae.runtime.summary.describe_bundle
            "bundle": str(folder), "kind": manifest.kind, "variational": manifest.variational,
            "code_size": manifest.code_size, "sample_shape": list(self.sample_shape),
            "normalization": manifest.normalization["mode"], "raw_dtype": manifest.normalization["raw_dtype"],
            "precision": precision, "providers": self.providers,
            "format_version": manifest.format_version, "precisions": manifest.precisions("encoder"),
            "graphs": [{"role": g.role, "file": g.file, "format": g.format, "opset": g.opset,
                        "size": g.size, "sha256": g.sha256, "raw_io": g.raw_io} for g in graphs],
            "hashes_ok": True,  # both loaded graphs matched their size and SHA-256 (else load() raised)
            "weights": {"encoder": encoder.weight_format, "decoder": decoder.weight_format},  # s8 | u8 | float
            "tools": dict(manifest.tools), "created": manifest.created,
        }

    def __repr__(self) -> str:
        return (f"EdgeModel({str(self.folder)!r}, kind={self.manifest.kind!r}, precision={self.precision!r}, "
                f"code_size={self.code_size}, sample_shape={self.sample_shape}, providers={self.providers})")

    # ---- public calls ----------------------------------------------------------------
    def encode(self, x: np.ndarray, batch_size: int | None = None, progress: Progress | None = None) -> np.ndarray:
        """Samples ``(N, *sample_shape)`` (or any layout of the input contract) -> codes ``(N, code_size)`` float32."""
        if type(x) is np.ndarray and x.dtype is self._fast_dtype and batch_size is None and progress is None:
            # The common call, in the bundle's own layout and dtype, one chunk: the same checks
            # as the general path below, inlined (they are most of a batch-1 call's overhead).
            # (onnxruntime copies a non-contiguous array itself, so views need no check.)
            shape, sample = x.shape, self.sample_shape
            single = shape == sample
            if single or (shape[1:] == sample and 0 < shape[0] <= DEFAULT_BATCH_SIZE):
                if single:
                    x = x[None]
                if x.dtype is _FLOAT32:
                    s = _vdot(x, x)
                    if not ((s <= x.size) if self._bounded else math.isfinite(s)):
                        self.contract.check_values(x, "x")
                feed = x if self._fast_norm is None else self._fast_norm(x)
                try:
                    y = self._enc_call(self._enc_outputs, {self._enc_input: feed}, None)[0]
                except Exception as exc:  # onnxruntime's own exception types
                    raise _run_failure(self._encoder.entry.file, exc, len(x)) from None
                if y.shape[1:] != self._code_tail:
                    _bad_output(y, self._code_tail)
                if not math.isfinite(_vdot(y, y)):
                    check_output(y, "the encoder's output", _BAD_CODES)
                return y[0] if single else y
        x, single = self.contract.samples(x, "x")
        out = self._map(x, self._encode_chunk, (self.code_size,), np.float32, batch_size, progress)
        return out[0] if single else out

    def decode(self, code: np.ndarray, batch_size: int | None = None, raw: bool = False,
               progress: Progress | None = None) -> np.ndarray:
        """Codes ``(N, code_size)`` -> reconstructions: model units, or raw units with ``raw=True``."""
        code, single = as_codes(code, self.code_size)
        dtype = self.normalizer.raw_dtype if raw else np.float32
        out = self._map(code, lambda c: self._decode_chunk(c, raw), self.sample_shape, dtype, batch_size, progress)
        return out[0] if single else out

    def reconstruct(self, x: np.ndarray, batch_size: int | None = None, raw: bool = False,
                    progress: Progress | None = None) -> np.ndarray:
        """decode(encode(x)), chunk by chunk (codes are never held for the whole array)."""
        x, single = self.contract.samples(x, "x")
        dtype = self.normalizer.raw_dtype if raw else np.float32
        out = self._map(x, lambda c: self._decode_chunk(self._encode_chunk(c), raw), self.sample_shape,
                        dtype, batch_size, progress)
        return out[0] if single else out

    def sample(self, n: int, seed: int = 0, raw: bool = False) -> np.ndarray:
        """Decode ``n`` codes drawn from N(0, I): new samples from a VAE's prior."""
        if not self.manifest.variational:
            raise BundleError(
                f"sample() needs a variational bundle (kind vae or conv-vae); this bundle's kind is "
                f"{self.manifest.kind!r}: use decode() with codes of your own"
            )
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise InputError(f"n must be a non-negative int, got {n!r}")
        codes = np.random.default_rng(seed).standard_normal((int(n), self.code_size), dtype=np.float32)
        return self.decode(codes, raw=raw)

    def to_model_units(self, x: np.ndarray) -> np.ndarray:
        """What the encoder sees for ``x`` (normalized float32, ``(N, *sample_shape)``); for error metrics."""
        x, _ = self.contract.samples(x, "x")
        if x.dtype == np.uint8 or self._floats_are_raw:
            return self.normalizer.normalize(x)
        return x

    # ---- what was loaded (for tools that time, compare or package the graphs) ------------
    def graph(self, role: str) -> GraphEntry:
        """The manifest entry of the loaded ``"encoder"`` or ``"decoder"`` graph (file, size, raw_io)."""
        if role not in ("encoder", "decoder"):
            raise InputError(f"role {role!r} is not one of: encoder, decoder")
        return (self._encoder if role == "encoder" else self._decoder).entry

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype the encoder graph itself takes (float32, float16 or uint8 for raw-I/O graphs)."""
        return self._encoder.input_dtype

    # ---- internals ---------------------------------------------------------------------
    def _encode_chunk(self, x: np.ndarray) -> np.ndarray:
        self.contract.check_values(x, "x")
        if self._encoder.raw_io or (x.dtype != np.uint8 and not self._floats_are_raw):
            feed = x
        else:
            feed = self.normalizer.normalize(x)
        y = self._encoder.run(feed)
        check_output(y, "the encoder's output", _BAD_CODES)
        return y

    def _decode_chunk(self, code: np.ndarray, raw: bool) -> np.ndarray:
        check_codes(code, "code")
        y = self._decoder.run(code)  # (n, *sample_shape)
        if not (self._decoder.raw_io or math.isfinite(_vdot(y, y))):
            top = float(np.max(np.abs(code)))
            check_output(y, "the decoder's output", f"the decoder graph computed it from codes up to {top:.3g}: "
                         "codes far outside those encode() writes, or damaged weights")
        if self._decoder.raw_io:
            return y if raw else self.normalizer.normalize(y)
        return self.normalizer.denormalize(y) if raw else y

    def _map(self, x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...],
             dtype: Any, batch_size: int | None, progress: Progress | None) -> np.ndarray:
        """Run ``fn`` chunk by chunk into one preallocated output ``(N, *shape)``."""
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        n = len(x)
        if 0 < n <= batch_size:  # one chunk: no preallocation, no copy
            y = fn(x)
            if y.shape[1:] != shape:
                _bad_output(y, shape)
            if progress is not None:
                progress(n)
            return y
        out = np.empty((n, *shape), dtype=dtype)
        for start in range(0, n, batch_size):
            try:
                y = fn(x[start:start + batch_size])
            except NonFiniteInput as exc:  # name the sample in the caller's array, not in the chunk
                raise exc.shifted(start) from None
            if y.shape[1:] != shape:
                _bad_output(y, shape)
            out[start:start + len(y)] = y
            if progress is not None:
                progress(len(y))
        return out


_BAD_CODES = ("the encoder graph computed it from finite input: its weights are damaged or the input is far "
              "outside the range it was trained on")


def _bad_output(y: np.ndarray, shape: tuple[int, ...]) -> None:
    raise BundleError(f"graph returned shape {y.shape[1:]} per sample, manifest says {shape}; re-export the bundle")


def _select(manifest: Manifest, folder: Path, role: str, precision: str, format: str, asked: str) -> GraphEntry:
    entry = manifest.find_graph(role, precision, format)
    if entry is None:
        have = manifest.precisions(role, format)
        known = "" if precision in PRECISIONS else f" (precisions are {', '.join(PRECISIONS)}; int8 = int8-static)"
        kind = f"{precision}, {format}" if asked in ALIASES else format  # 'int8' (int8-static, onnx)
        raise BundleError(
            f"precision {asked!r} ({kind}) is not in bundle {folder}{known}; available {role} "
            f"precisions: {', '.join(have) or 'none'}; choose one of them or re-export with it"
        )
    problems = graph_problems(folder, entry)
    if problems:
        raise BundleError(f"bundle {folder}: {'; '.join(problems)}")
    limit = max_supported_opset()
    if entry.opset > limit:
        import onnxruntime as ort

        raise BundleError(
            f"{entry.file} needs ONNX opset {entry.opset}, but onnxruntime {ort.__version__} supports up to "
            f"opset {limit}: upgrade onnxruntime (pip install -U onnxruntime) or re-export with --opset {limit}"
        )
    return entry


def load(
    bundle_dir: str | Path,
    precision: str = "fp32",
    providers: str | list[str] = "auto",
    threads: int | None = None,
    format: str = "onnx",
    options: Any = None,
) -> EdgeModel:
    """Verify a bundle (schema, version, hashes, opset, precision) and open its graphs.

    Args:
        bundle_dir: folder written by ``edgeae export``.
        precision: fp32 | fp16 | int8-dynamic | int8-static (whatever the bundle has); int8 = int8-static.
        providers: "auto" (CUDA if available, else CPU), "cpu", "cuda", ORT names, a list of them,
            or one comma-separated string ("cuda,cpu", as the CLI's --provider gives it).
        threads: intra-op threads; None = edgeae's default (1, lowest batch-1 latency), 0 = all cores.
        format: "onnx" or "ort" (the ORT flatbuffer copies, for mobile builds).
        options: an ``onnxruntime.SessionOptions`` replacing edgeae's defaults.
    """
    if not isinstance(bundle_dir, (str, os.PathLike)) or not str(bundle_dir):
        raise BundleError(f"bundle_dir must be the path of a bundle folder (a str or os.PathLike), got "
                          f"{type(bundle_dir).__name__} {str(bundle_dir)[:60]!r}")
    folder = Path(bundle_dir)
    manifest = read_manifest(folder)
    if format not in ("onnx", "ort"):
        raise BundleError(f"format {format!r} is not one of: onnx, ort")
    if not isinstance(precision, str):
        raise BundleError(f"precision must be a str ({', '.join(PRECISIONS)}), got {type(precision).__name__}")
    asked, precision = precision, ALIASES.get(precision, precision)  # int8 = int8-static, as everywhere
    entries = [_select(manifest, folder, role, precision, format, asked) for role in ("encoder", "decoder")]
    if isinstance(providers, str) and "," in providers:
        providers = [p.strip() for p in providers.split(",")]
    names = resolve_providers(providers)
    options = options if options is not None else session_options(threads)
    encoder = _Graph(folder, entries[0], manifest, names, options, "code")
    decoder = _Graph(folder, entries[1], manifest, names, options, "x_hat")
    return EdgeModel(folder, manifest, precision, encoder, decoder)
