"""Device packaging: ORT-format (.ort) copies and fixed-batch variants.

ONNX Runtime's mobile / minimal builds load only the ``.ort`` flatbuffer format and are
built with just the operators listed in ``required_operators.config``; both are written
with onnxruntime's own tooling. Fixed-batch graphs let ahead-of-time compilers plan
static memory (NPUs, TensorRT engines without profiles).
"""

from __future__ import annotations

from pathlib import Path

from edgeae.errors import ExportError
from edgeae.export.graphs import check_graph, fix_batch
from edgeae.export.quiet import quiet
from edgeae.runtime.session import create_session, session_options

__all__ = ["ORT_CONFIG", "graph_file", "write_ort", "write_required_operators", "write_fixed_batch"]

ORT_CONFIG = "required_operators.config"


def graph_file(role: str, precision: str, raw: bool = False, fixed_batch: int | None = None,
               format: str = "onnx") -> str:
    """The file name of a bundle graph, the one naming rule for every file export writes.

    ``encoder.onnx`` (fp32), ``encoder.<precision>.onnx``, ``.raw`` before the suffix for raw
    I/O, ``encoder.<precision>.b<N>.onnx`` for a fixed batch (precision always named), and
    ``.ort`` instead of ``.onnx`` for ORT-format copies.
    """
    stem = role if precision == "fp32" and fixed_batch is None else f"{role}.{precision}"
    return f"{stem}{'.raw' if raw else ''}{f'.b{fixed_batch}' if fixed_batch else ''}.{format}"


def write_ort(src: Path, dst: Path) -> None:
    """Convert ``src`` to the ORT format with basic (platform-independent) optimizations."""
    opts = session_options(optimization="basic", **{"session.save_model_format": "ORT"})
    opts.optimized_model_filepath = str(dst)
    try:
        create_session(src, ["CPUExecutionProvider"], opts)
    except Exception as exc:
        raise ExportError(f"converting {src.name} to the ORT format failed: {exc}") from exc
    if not dst.is_file():
        raise ExportError(f"onnxruntime did not write {dst.name}; is this onnxruntime build able to save .ort files?")


def write_required_operators(ort_files: list[Path], config: Path) -> None:
    """The operator list a minimal ONNX Runtime build needs for these graphs."""
    import logging

    from onnxruntime.tools.ort_format_model import create_config_from_models

    with quiet("ort_format_model.utils", logging.WARNING):
        create_config_from_models(list(ort_files), config, enable_type_reduction=False)
    # The tool lists the files by absolute (temporary) path; keep bundle-relative names.
    text = config.read_text().replace(f"{config.parent}/", "")
    config.write_text(text)


def write_fixed_batch(src: Path, dst: Path, batch: int) -> None:
    fix_batch(src, dst, batch)
    check_graph(dst)
