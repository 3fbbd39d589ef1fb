"""Streaming compression in C for signal bundles: a sensor loop pushes time steps into a ring the
caller owns; each complete window becomes one `.eae` chunk.

::

    <prefix>_stream.h / .c     (this module; C in c/stream.h, c/stream.c, c/stream_proto.h,
                                c/stream_body.c, host check c/stream_check_main.c)
      PREFIX_stream_init(&s, ring, ring_floats, hop, codec)   hop 0: the window length
      PREFIX_stream_header(&s, out, cap, &len)                the stream header, once
      PREFIX_stream_push(&s, x, n)                            time steps in (stops at a full window)
      PREFIX_stream_ready(&s) / PREFIX_stream_chunk_<p>(&s, out, cap, &len)   one chunk per window
      PREFIX_stream_restart(&s), PREFIX_stream_resume(&s, stream, len)

Windows are cut as :func:`edgeae.data.tsfile.window_series` cuts a recording ``(T, C)`` (one
every ``hop`` steps, tail left out; a restart per case of ``(N, C, T)`` data). Each pushed step
is normalized as the Python runtime does it (``(x - offset) * float32(1 / scale)`` in float32,
one value per channel), so the encoder sees the model inputs ``edgeae compress`` gives ONNX
Runtime. The ring holds the last T steps channel-major; a complete window is rotated in place
(three reversals per row) into the encoder's ``(C, T)`` input: no second window buffer.

Checked at generation (:func:`check_stream`): the held-out windows, laid end to end as one
recording, are pushed in blocks with an overlapping hop and as cases with restarts; the C
stream must equal, byte for byte, Python's header + ``append_codes`` per window for the codes
the C encoder computes on the same windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.codegen.compress_c import codec_prefix
from edgeae.codegen.emit import Unit
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import build_c, check_cxx, run_program
from edgeae.errors import ConfigError, ValidationError

__all__ = ["stream_layout", "stream_sources", "check_stream", "stream_reference", "StreamLayout"]


class StreamLayout:
    """What the stream needs from a bundle: window shape and the per-channel normalization."""

    def __init__(self, channels: int, steps: int, offset: np.ndarray, inv_scale: np.ndarray):
        self.channels, self.steps = channels, steps
        self.offset = np.asarray(offset, np.float32)  # (C,)
        self.inv_scale = np.asarray(inv_scale, np.float32)  # (C,) float32(1 / scale), as the runtime


def stream_layout(manifest: Any, raw: bool) -> StreamLayout | str:
    """The layout of a signal bundle's stream, or why it has none (a sentence)."""
    from edgeae.runtime.preprocess import Normalizer

    shape = tuple(int(v) for v in manifest.sample_shape)
    if len(shape) != 2:
        return f"the input {shape} is not a signal window (C, T)"
    c, t = shape
    if raw:  # raw-I/O encoders fold the normalization into the graph: push their input as it is
        if np.dtype(manifest.normalization["raw_dtype"]) != np.float32:
            return "raw-I/O signals must be float32"
        return StreamLayout(c, t, np.zeros(c, np.float32), np.ones(c, np.float32))
    nz = Normalizer(manifest.normalization, shape)
    off = np.broadcast_to(nz.offset, shape) if nz.has_offset else np.zeros(shape, np.float32)
    inv = np.broadcast_to(nz.inv_scale, shape) if not nz.is_identity else np.ones(shape, np.float32)
    if not (np.all(off == off[:, :1]) and np.all(inv == inv[:, :1])):
        return "its normalization differs along time (the stream normalizes one value per channel)"
    return StreamLayout(c, t, off[:, 0].copy(), inv[:, 0].copy())


def _f(v: float) -> str:
    s = f"{float(np.float32(v)):.9g}"
    return (s if ("e" in s or "." in s or "n" in s) else s + ".0") + "f"


def _values(prefix: str, u: Unit, code_size: int) -> dict[str, object]:
    return {"prefix": prefix, "tag": u.name.rsplit("_", 1)[1], "unit": u.name, "code_size": code_size,
            "extra": "".join(f"    float o{k}[{n}];\n" for k, (_, _, n) in enumerate(u.outputs) if k),
            "args": ", ".join(["code"] + [f"o{k}" for k in range(1, len(u.outputs))])}


def stream_sources(prefix: str, encoders: list[Unit], code_size: int, layout: StreamLayout) -> tuple[str, str]:
    """The text of ``<prefix>_stream.h`` and ``.c`` for these encoder units."""
    if not encoders:
        raise ConfigError("the C stream needs an encoder; generate at least one precision")
    c, t = layout.channels, layout.steps
    if not all(np.isfinite(layout.offset)) or not all(np.isfinite(layout.inv_scale)):
        raise ConfigError("the bundle's normalization holds values that are not finite; re-export it")
    protos, bodies, incs = [], [], []
    for u in encoders:
        if len(u.inputs) != 1 or u.inputs[0][1] != "float" or u.inputs[0][2] != c * t:
            raise ConfigError(f"{u.name}: the C stream needs one float input of {c} x {t} values, got {u.inputs}")
        if u.outputs[0][1] != "float" or u.outputs[0][2] != code_size:
            raise ConfigError(f"{u.name}: the C stream needs a float code of {code_size} values first")
        incs.append(f'#include "{u.name}.h"')
        protos.append(fill("stream_proto.h", **_values(prefix, u, code_size)))
        bodies.append(fill("stream_body.c", **_values(prefix, u, code_size)))
    common = {"prefix": prefix, "UP": prefix.upper(), "channels": c, "steps": t, "ring": c * t,
              "ring_bytes": 4 * c * t, "code_size": code_size}
    header = fill("stream.h", **common, tag=encoders[0].name.rsplit("_", 1)[1], protos="\n".join(protos))
    note = ("Identity here: the encoder takes raw units (normalization folded into its graph)."
            if not np.any(layout.offset) and np.all(layout.inv_scale == 1) else "From the bundle's manifest.")
    source = fill("stream.c", **common, includes="\n".join(incs), bodies="".join(bodies), norm_note=note,
                  offsets=", ".join(_f(v) for v in layout.offset),
                  inv_scales=", ".join(_f(v) for v in layout.inv_scale))
    return header, source


def stream_reference(codec: Any, model_id: bytes, codes: np.ndarray) -> bytes:
    """Python's bytes for the C stream: the header, then one ``append_codes`` chunk per window's code."""
    from edgeae.runtime.stream import append_codes, compress_codes, read_header

    codes = np.asarray(codes, np.float32).reshape(len(codes), -1)
    header = compress_codes(codec, model_id, codes[:1])
    header = header[: read_header(header).header_size]
    return header + b"".join(append_codes(codec, model_id, header, codes[i:i + 1]) for i in range(len(codes)))


def _runs(t: int, n: int) -> list[tuple[int, int, int]]:
    """(hop, block, case length) runs of the check: overlapping windows in odd blocks, per case, skipping."""
    return [(max(1, t // 2), 7, 0), (t, 1, t), (t + 3, 64, 0)] if n > 1 else [(t, 1, t)]


def check_stream(folder: Path, build: Path, prefix: str, units: list[Unit], bundle_dir: Path, samples: np.ndarray,
                 raw: bool, manifest: Any, layout: StreamLayout) -> dict[str, Any]:
    """Compile the stream API with each encoder, push the held-out windows as one recording and as
    cases, and compare each C stream with Python's bytes; ValidationError (nothing is written) on a difference."""
    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.codegen.verify import unit_inputs
    from edgeae.data.tsfile import window_series
    from edgeae.runtime.compress import codecs_of

    codec, mid = codecs_of(manifest)[0]
    build.mkdir(parents=True, exist_ok=True)
    libs = [folder / "eae_codec.c", folder / f"{codec_prefix(prefix)}_codec.c", folder / f"{prefix}_stream.c"]
    check_cxx(folder / f"{prefix}_stream.c", build / f"{prefix}_stream.cpp.o", include=folder)
    c, t = layout.channels, layout.steps
    cases = np.ascontiguousarray(np.asarray(samples, np.float32).reshape(-1, c, t))
    recording = np.ascontiguousarray(cases.transpose(0, 2, 1).reshape(-1, c))  # (N * T, C): cases end to end
    (build / "recording.bin").write_bytes(recording.tobytes())
    out: dict[str, Any] = {"channels": c, "steps": t, "ring_bytes": 4 * c * t, "runs": []}
    for u in units:
        tag = u.name.rsplit("_", 1)[1]
        src = build / f"stream_check_{tag}.c"
        src.write_text(fill("stream_check_main.c", **_values(prefix, u, manifest.code_size), UP=prefix.upper(),
                            channels=c), encoding="utf-8")
        exe = build_c([*libs, *(folder / f"{v.name}.c" for v in units), src], build / f"stream_check_{tag}",
                      f"compiling {prefix}_stream.c with the {tag} encoder as C99", include=folder)
        enc = build_harness(u, build, tag="stream")
        for hop, block, per_case in _runs(t, len(cases)):
            windows = window_series(cases if per_case else recording, t, hop)
            got = run_program([exe, build / "recording.bin", len(recording), hop, block, per_case], b"",
                              f"running {exe.name}")
            x = unit_inputs(bundle_dir, manifest, "encoder", raw, windows)
            want = stream_reference(codec, mid, run_harness(enc, u, [x])[0])
            if got != want:
                raise ValidationError("generated C failed its check; nothing was written:\n  "
                                      f"{prefix}_stream_chunk_{tag} (hop {hop}, blocks of {block} steps"
                                      f"{', restart every case' if per_case else ''}): the C stream "
                                      f"({len(got)} bytes) differs from Python's ({len(want)} bytes) for "
                                      f"{len(windows)} windows")
            out["runs"].append({"encoder": tag, "hop": hop, "block": block, "restart_every": per_case,
                                "windows": len(windows), "bytes": len(got)})
    return out
