"""ONNX Runtime sessions: execution providers, session options, opset support.

onnxruntime is imported inside the functions so that ``import edgeae.runtime`` stays
fast; the first :func:`edgeae.runtime.load` pays for it.

Defaults favour low batch-1 latency on small devices without burning idle CPU:
graph optimization ``ORT_ENABLE_ALL``, ``session.intra_op.allow_spinning = "0"`` (worker
threads sleep instead of spinning between calls) and one intra-op thread unless told
otherwise (measured: for these small graphs a single thread beats the thread pool at
batch 1, see docs/deploy.md).
"""

from __future__ import annotations

import functools
import platform
import re
from pathlib import Path
from typing import Any

from edgeae.errors import BundleError, ProviderError
from edgeae.runtime.varint import put_varint

__all__ = [
    "PROVIDER_ALIASES",
    "DEFAULT_THREADS",
    "available_providers",
    "resolve_providers",
    "session_options",
    "max_supported_opset",
    "create_session",
    "EXACT_INT8",
    "exact_int8_options",
]

# Short names accepted by ``providers=`` and ``--provider``.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
# ONNX Runtime's x64 u8 x s8 kernels without VNNI (AVX2, AVX-512 without VNNI) sum pairs of
# products in int16, which saturates; this session option selects exact kernels instead.
# Measured on the MNIST conv bundle's graphs quantized with s8 weights, emulated Haswell:
# off, codes differ from a VNNI CPU by up to 3.9 (int8-static encoder); on, bit-equal.
EXACT_INT8 = ("session.x64quantprecision", "1")
_MAX_THREADS = 4096  # more than any machine has cores; onnxruntime takes an int32
# intra_op threads when the caller does not say (0 = onnxruntime's default: all cores).
DEFAULT_THREADS = 1
# On ARM64, ONNX Runtime's fused MatMulIntegerToFloat (int8-dynamic graphs) computes
# scale * acc + bias with one fused multiply-add where x86 rounds twice, so codes differ by
# an ulp; unfused, ARM64 computes x86's bits (benchmarks/results/arm64.md). x86 keeps it.
# On CPUs with SME, Arm's KleidiAI fp32 GEMM kernels sum in another order than MLAS's own:
# fp32 codes move by up to 3.2e-5 from x86's; with MLAS's kernels, by up to 3.8e-6 (emulated).
# A caller's own entry for either key wins ("" / "0" bring the fusion / KleidiAI back).
_ARM64_CONFIG = {"optimization.disable_specified_optimizers": "MatMulIntegerToFloatFusion",
                 "mlas.disable_kleidiai": "1"}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers, e.g. ``["CPUExecutionProvider"]``."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_providers(providers: str | list[str] | tuple[str, ...] = "auto") -> list[str]:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, full ORT names or a list into ORT provider names.

    ``"auto"`` picks CUDA when this onnxruntime has it (CPU stays as fallback), else CPU.
    An explicit provider that is not available raises :class:`ProviderError`.
    """
    available = available_providers()
    if providers is None or providers == "auto":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    if not (isinstance(providers, str) or (isinstance(providers, (list, tuple))
                                           and all(isinstance(p, str) for p in providers))):
        raise ProviderError(f"providers must be a name (auto, cpu, cuda, ...) or a list of names, got "
                            f"{type(providers).__name__} {str(providers)[:60]}")
    names = [providers] if isinstance(providers, str) else list(providers)
    resolved: list[str] = []
    for name in names:
        full = PROVIDER_ALIASES.get(str(name).lower(), str(name))
        if full not in available:
            short = [k for k, v in PROVIDER_ALIASES.items() if v in available]
            hint = ""
            if full == "CUDAExecutionProvider":
                hint = ("; for CUDA install edgeae[gpu], then replace the CPU build: pip uninstall -y onnxruntime && "
                        "pip install --force-reinstall --no-deps onnxruntime-gpu")
            raise ProviderError(
                f"execution provider {name!r} is not available in this onnxruntime; available: "
                f"{', '.join(available)} (short names: {', '.join(short) or 'none'}){hint}"
            )
        if full not in resolved:
            resolved.append(full)
    return resolved


def session_options(threads: int | None = None, spinning: bool = False, optimization: str = "all",
                    **config: str) -> Any:
    """``onnxruntime.SessionOptions`` with edgeae's defaults: the one place sessions are configured.

    Args:
        threads: intra-op threads; None = :data:`DEFAULT_THREADS`, 0 = onnxruntime's default.
        spinning: let idle worker threads spin (lower latency under load, burns CPU).
        optimization: graph optimization level: "all" (running), "basic" (platform-independent,
            for saving .ort files) or "disabled" (run the graph exactly as written, for checks).
        config: extra ``add_session_config_entry`` key/values.
    """
    import onnxruntime as ort

    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    if optimization not in levels:
        raise ProviderError(f"optimization {optimization!r} is not one of: {', '.join(levels)}")
    if threads is None:
        threads = DEFAULT_THREADS
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ProviderError(f"threads must be a non-negative int (0 = all cores), got {str(threads)[:40]}")
    if threads > _MAX_THREADS:
        raise ProviderError(f"threads={str(threads)[:40]} is more than {_MAX_THREADS}; pass 0 for all cores")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[optimization]
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no warnings on stderr for every session
    entries = {"session.intra_op.allow_spinning": "1" if spinning else "0",
               "session.inter_op.allow_spinning": "1" if spinning else "0",
               **(_ARM64_CONFIG if platform.machine().lower() in ("aarch64", "arm64") else {}), **config}
    for key, value in entries.items():
        opts.add_session_config_entry(key, str(value))
    return opts


def exact_int8_options(options: Any) -> Any:
    """``options`` with exact u8 x s8 products (:data:`EXACT_INT8`); for graphs with s8 weights.

    The option only changes the u8 x s8 kernels, so the options object can be shared with
    the other graph of the bundle; a caller's own ``SessionOptions`` get it added.
    """
    try:
        if options.get_session_config_entry(EXACT_INT8[0]) == EXACT_INT8[1]:
            return options  # set already (both graphs have s8 weights): adding it again warns
    except Exception:  # onnxruntime raises when the key is not set
        pass
    options.add_session_config_entry(*EXACT_INT8)
    return options


# A serialized ModelProto "y = Identity(x)" (float[1]) without its opset_import, so that
# opset support can be probed without the onnx package.
_PROBE_GRAPH = (
    b'\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x01gZ\x0f\n\x01x\x12\n\n\x08\x08\x01\x12\x04\n\x02'
    b"\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01"
)


def _probe_model(opset: int) -> bytes:
    opset_id = b"\n\x00\x10" + put_varint(opset)  # domain "" , version
    return b"\x08\x08" + b":" + put_varint(len(_PROBE_GRAPH)) + _PROBE_GRAPH + b"B" + put_varint(len(opset_id)) + opset_id


def _accepts(opset: int) -> tuple[bool, str]:
    import onnxruntime as ort

    opts = session_options()
    opts.log_severity_level = 4  # a refused opset is the expected answer, not an error to log
    try:
        ort.InferenceSession(_probe_model(opset), opts, providers=["CPUExecutionProvider"])
        return True, ""
    except Exception as exc:  # onnxruntime raises its own exception types
        return False, str(exc)


@functools.lru_cache(maxsize=1)
def max_supported_opset() -> int:
    """Highest ai.onnx opset the installed onnxruntime loads.

    Found by loading a tiny in-memory graph (no onnx package needed): onnxruntime rejects
    an opset beyond its release with "... is till opset N"; if that text ever changes, a
    binary search over probe loads gives the same answer.
    """
    ok, message = _accepts(1000)
    if ok:
        return 1000
    match = re.search(r"till opset (\d+)", message)
    if match and _accepts(int(match.group(1)))[0]:
        return int(match.group(1))
    lo, hi = 7, 1000  # lo accepted (every onnxruntime >= 1.0 reads opset 7), hi rejected
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _accepts(mid)[0] else (lo, mid)
    return lo


def create_session(path: str | Path, providers: list[str], options: Any) -> Any:
    """Open one graph file; onnxruntime load failures become :class:`BundleError`."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        raise BundleError(
            f"onnxruntime {ort.__version__} could not load {Path(path).name}: {exc}"
        ) from None
