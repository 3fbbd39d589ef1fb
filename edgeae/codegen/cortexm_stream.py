"""The streaming C API on emulated Cortex-M: a sensor loop's bytes and its measured cost.

::

    edgeae codegen output (encoder + codec + PREFIX_stream) + c/stream_target_main.c
    + a recording (S, C) as a const array
      -> push one step at a time, one chunk per window, under qemu-system-arm -icount shift=0
      -> bytes compared with Python's for the host C encoder's codes and with the Python
         runtime's (`edgeae compress` of the first window, `--append` of each next one)

Builds and runs through :mod:`edgeae.codegen.toolchain`, counts instructions with SysTick and
measures the stack by painting it, as :mod:`edgeae.codegen.cortexm_codec` does for one-call
compression.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgeae.codegen.compress_c import codec_prefix
from edgeae.codegen.cortexm import c_array
from edgeae.codegen.stream_c import stream_reference
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import (
    CALIBRATION_LOOPS,
    TARGETS,
    read_counters,
    require_target,
    run_firmware,
)
from edgeae.errors import ConfigError, ExportError

__all__ = ["run_stream_target", "stream_windows"]

_PAINTED = 16384  # stack bytes c/stream_target_main.c paints below main's frame


def stream_windows(recording: np.ndarray, steps: int, hop: int, per_case: int = 0) -> np.ndarray:
    """The windows ``(M, C, steps)`` the stream cuts from ``recording`` (S, C) with a restart every
    ``per_case`` steps (0: one recording): :func:`edgeae.data.tsfile.window_series` of the same."""
    from edgeae.data.tsfile import window_series

    rec = np.asarray(recording, np.float32)
    if per_case:
        cases = rec.reshape(-1, per_case, rec.shape[1]).transpose(0, 2, 1)  # (N, C, per_case)
        return window_series(cases, steps, hop)
    return window_series(rec, steps, hop)


def _unit(c_dir: Path, tag: str) -> tuple[str, Any, dict]:
    report = json.loads((c_dir / "codegen.json").read_text())
    stream = report.get("compress", {}).get("stream", {})
    if not stream.get("written"):
        raise ConfigError(f"{c_dir} has no streaming API ({stream.get('why', 'generated without codec tables')})")
    g = next((g for g in report["graphs"] if g["role"] == "encoder" and g["name"].endswith(f"_{tag}")), None)
    if g is None:
        raise ConfigError(f"{c_dir} has no {tag} encoder")
    unit = SimpleNamespace(name=g["name"], inputs=[tuple(t) for t in g["inputs"]],
                           outputs=[tuple(t) for t in g["outputs"]])
    return report["prefix"], unit, report


def _expected(w: Path, bundle_dir: Path, c_dir: Path, unit: Any, windows: np.ndarray, raw: bool,
              tag: str) -> tuple[bytes, bytes]:
    """Python's bytes for the host C encoder's codes, and for the Python runtime's codes (ONNX Runtime)."""
    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.codegen.codec import bundle_codecs
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime import load
    from edgeae.runtime.bundle import read_manifest

    manifest = read_manifest(bundle_dir)
    codec, mid = bundle_codecs(bundle_dir)[0]
    host = w / "host"
    host.mkdir(exist_ok=True)
    for ext in (".c", ".h"):
        shutil.copyfile(c_dir / f"{unit.name}{ext}", host / f"{unit.name}{ext}")
    x = unit_inputs(bundle_dir, manifest, "encoder", raw, windows)
    host_codes = run_harness(build_harness(unit, host, cxx=None), unit, [x])[0]
    model = load(bundle_dir, precision="fp32" if tag == "fp32" else "int8-static")
    return stream_reference(codec, mid, host_codes), stream_reference(codec, mid, model.encode(windows))


def _firmware(w: Path, c_dir: Path, prefix: str, tag: str, unit: Any, recording: np.ndarray, hop: int,
              per_case: int, target: str, repeats: int) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """Cross-compile and link the streaming firmware in ``w``, run it under qemu; its output and object sizes."""
    main = fill("stream_target_main.c", prefix=prefix, UP=prefix.upper(), tag=tag,
                recording=c_array("recording", "float", recording), n=len(recording), hop=hop, per_case=per_case,
                repeats=repeats, calib=CALIBRATION_LOOPS)
    units = ["eae_codec", f"{codec_prefix(prefix)}_codec", f"{prefix}_stream", unit.name]
    return run_firmware(w, c_dir, target, main, units, "streaming firmware")


def run_stream_target(bundle_dir: str | Path, c_dir: str | Path, recording: np.ndarray, hop: int,
                      per_case: int = 0, tag: str = "int8", target: str = "cortex-m4f",
                      work: str | Path | None = None, repeats: int = 1) -> dict[str, Any]:
    """Run ``PREFIX_stream`` (a folder written by ``edgeae codegen`` for a signal bundle) on a
    Cortex-M: push ``recording`` (S, C, in the data's units) one step at a time with windows every
    ``hop`` steps (a restart every ``per_case`` steps), print the stream, time the loop.

    Returns ``equal_host`` (the stream equals Python's bytes for the host C encoder's codes),
    ``equal_edgeae`` (equals the Python runtime's: `edgeae compress` + `--append` per window),
    instructions per window (the whole loop, pushes included, divided by the windows), flash (text +
    data of encoder, codec, tables and stream code), RAM (their data + bss, the caller's ring and
    state, and the painted stack).
    """
    require_target(target)
    bundle_dir, c_dir = Path(bundle_dir), Path(c_dir)
    prefix, unit, report = _unit(c_dir, tag)
    st = report["compress"]["stream"]
    rec = np.ascontiguousarray(np.asarray(recording, np.float32).reshape(-1, st["channels"]))
    if per_case and len(rec) % per_case:
        raise ConfigError(f"a recording of {len(rec)} steps is not a whole number of {per_case}-step cases")
    windows = stream_windows(rec, st["steps"], hop, per_case)
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(work) if work else Path(tmp)
        w.mkdir(parents=True, exist_ok=True)
        want_host, want_py = _expected(w, bundle_dir, c_dir, unit, windows, report["io"] == "raw", tag)
        out, sizes = _firmware(w, c_dir, prefix, tag, unit, rec, hop, per_case, target, repeats)
    parts = [bytes(int(b, 16) for b in m.split()) for m in re.findall(r"^(?:header|chunk) ?(.*)$", out, re.M)]
    got = b"".join(parts)
    if len(parts) != len(windows) + 1:
        raise ExportError(f"the {target} streaming firmware printed {len(parts) - 1} chunks, expected "
                          f"{len(windows)}:\n{out[-2000:]}")
    per_tick, ticks, stack = read_counters(out, f"the streaming firmware on {target}")
    if stack >= _PAINTED:
        raise ExportError(f"the streaming firmware on {target} used all of its {_PAINTED} painted stack bytes")
    state = int(re.search(r"^state (\d+)", out, re.M).group(1))  # sizeof(PREFIX_stream) on the target
    flash = sum(t + d for t, d, _ in sizes.values())
    return {"target": target, "machine": TARGETS[target][1], "unit": unit.name, "windows": len(windows),
            "steps": len(rec), "hop": hop, "equal_host": got == want_host, "equal_edgeae": got == want_py,
            "bytes": len(got), "chunk_bytes_per_window": (len(got) - len(parts[0])) / max(len(windows), 1),
            "instructions_per_window": round(ticks * per_tick / repeats / max(len(windows), 1)),
            "flash_bytes": flash, "flash_by_object": {k: t + d for k, (t, d, _) in sizes.items()},
            "ring_bytes": st["ring_bytes"], "state_bytes": state, "stack_bytes": stack,
            "ram_bytes": sum(d + b for _, d, b in sizes.values()) + st["ring_bytes"] + state + stack}
