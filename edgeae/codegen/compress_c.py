"""One-call compression in C: raw samples -> generated encoder -> C codec -> `.eae` bytes.

::

    <prefix>_compress.h / .c     (this module; C in c/compress.h, c/compress.c, c/compress_proto.h,
                                  c/compress_body.c)
      PREFIX_compress_<p>(x, n, out, cap, &len)          a whole stream of n samples
      PREFIX_compress_begin(&w, codec, out, cap, &len)   a stream header (codec NULL: the default)
      PREFIX_compress_append_<p>(&w, x, n, out, cap, &len) chunks for n more samples
      PREFIX_compress_bound(n)                           a capacity that always suffices
    + <prefix>_encoder_<p>.h/.c   (the generated encoder of each precision p: fp32, int8)
    + <prefix>_latent_codec.h/.c  (the bundle's codec tables, edgeae.codegen.codec)
    + eae_codec.h/.c              (the codec)

No malloc: the symbols of the n samples are parked at the end of the caller's buffer while
the range coder writes from its start, which is why the bound is eae_bound + n * D bytes.
The bytes are those of Python's ``compress_codes`` for the codes the C encoder computes
(checked at generation on the held-out samples, as one stream and as one append per
sample). Whether they also equal ``edgeae compress --precision p`` (ONNX Runtime's codes)
is measured and reported: see docs/embedded.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.codegen.emit import Unit
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import build_c, check_cxx, run_program
from edgeae.errors import ConfigError, ValidationError

__all__ = ["compress_sources", "check_compress", "codec_prefix"]


def codec_prefix(prefix: str) -> str:
    """Prefix of the codec tables next to the graphs (``eae`` alone would clash with eae_codec.h)."""
    return f"{prefix}_latent"


def _tag(unit: Unit) -> str:
    return unit.name.rsplit("_", 1)[1]


def _values(prefix: str, u: Unit, code_size: int) -> dict[str, object]:
    """What the templates c/compress_proto.h and c/compress_body.c need for one encoder unit."""
    (_, it, xn) = u.inputs[0]
    return {"prefix": prefix, "tag": _tag(u), "it": it, "xn": xn, "code_size": code_size, "unit": u.name,
            "units": "raw units" if it == "uint8_t" else "model units",
            # an encoder with more outputs than the code (a VAE's mean, log_var) writes them to scratch
            "extra": "".join(f"    float o{k}[{n}];\n" for k, (_, _, n) in enumerate(u.outputs) if k),
            "args": ", ".join(["code"] + [f"o{k}" for k in range(1, len(u.outputs))])}


def compress_sources(prefix: str, encoders: list[Unit], code_size: int) -> tuple[str, str]:
    """The text of ``<prefix>_compress.h`` and ``.c`` for these encoder units (c/compress.h, c/compress.c,
    with c/compress_proto.h and c/compress_body.c once per encoder)."""
    if not encoders:
        raise ConfigError("one-call compression needs an encoder; generate at least one precision")
    protos, bodies, incs = [], [], []
    for u in encoders:
        if len(u.inputs) != 1 or u.outputs[0][1] != "float" or u.outputs[0][2] != code_size:
            raise ConfigError(f"{u.name}: one-call compression needs one input and a float code of {code_size} "
                              f"values as the first output (got inputs {u.inputs}, outputs {u.outputs})")
        incs.append(f'#include "{u.name}.h"')
        protos.append(fill("compress_proto.h", **_values(prefix, u, code_size)))
        bodies.append(fill("compress_body.c", **_values(prefix, u, code_size)))
    common = {"prefix": prefix, "up": prefix.upper(), "code_size": code_size}
    header = fill("compress.h", **common, tag=_tag(encoders[0]), protos="\n".join(protos))
    return header, fill("compress.c", **common, includes="\n".join(incs), bodies="".join(bodies))


def _harness(prefix: str, u: Unit, code_size: int) -> str:
    """samples file -> stdout: C codes (N, D) f32, then u32 length + one stream of all N, then
    u32 length + header and one append per sample (c/compress_check_main.c)."""
    return fill("compress_check_main.c", **_values(prefix, u, code_size))


def check_compress(folder: Path, build: Path, prefix: str, units: list[Unit], bundle_dir: Path,
                   samples: np.ndarray, raw: bool, manifest: Any) -> dict[str, Any]:
    """Compile the one-call API with each encoder, compress the held-out samples in C and compare
    with Python's streams; raises ValidationError (nothing is written) on any byte difference."""
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime.compress import codecs_of
    from edgeae.runtime.stream import append_codes, compress_codes, decompress_codes, read_header

    codec, mid = codecs_of(manifest)[0]
    d = codec.code_size
    build.mkdir(parents=True, exist_ok=True)
    cp = codec_prefix(prefix)
    libs = [folder / "eae_codec.c", folder / f"{cp}_codec.c", folder / f"{prefix}_compress.c"]
    check_cxx(folder / f"{prefix}_compress.c", build / f"{prefix}_compress.cpp.o", include=folder)
    x = unit_inputs(bundle_dir, manifest, "encoder", raw, samples)
    (build / "samples.bin").write_bytes(np.ascontiguousarray(x).tobytes())
    n = len(x)
    out: dict[str, Any] = {"samples": n, "bits": codec.bits}
    for u in units:
        tag = _tag(u)
        src = build / f"check_{tag}.c"
        src.write_text(_harness(prefix, u, d), encoding="utf-8")
        exe = build / f"check_{tag}"
        build_c([*libs, *(folder / f"{v.name}.c" for v in units), src], exe,
                f"compiling {prefix}_compress.c with the {tag} encoder as C99", include=folder)
        data = run_program([exe, build / "samples.bin", n], b"", f"running {exe.name}")
        codes = np.frombuffer(data[: n * d * 4], np.float32).reshape(n, d)
        at = n * d * 4
        streams = []
        for _ in range(2):
            k = int.from_bytes(data[at:at + 4], "little")
            streams.append(bytes(data[at + 4:at + 4 + k]))
            at += 4 + k
        whole = compress_codes(codec, mid, codes)
        header = whole[: read_header(whole).header_size]
        appended = header + b"".join(append_codes(codec, mid, header, codes[i:i + 1]) for i in range(n))
        problems = []
        if streams[0] != whole:
            problems.append(f"{prefix}_compress_{tag}: the C stream ({len(streams[0])} bytes) differs from Python's "
                            f"compress_codes ({len(whole)} bytes) for the same codes")
        if streams[1] != appended:
            problems.append(f"{prefix}_compress_append_{tag}: the appended C stream differs from Python's append_codes")
        if not problems and not np.array_equal(decompress_codes(codec, mid, streams[0]),
                                               decompress_codes(codec, mid, whole)):
            problems.append(f"{prefix}_compress_{tag}: the C stream decodes to other codes")
        if problems:
            raise ValidationError("generated C failed its check; nothing was written:\n  " + "\n  ".join(problems))
        # the same samples through `edgeae compress --precision p` (ONNX Runtime's codes)
        from edgeae.runtime import load
        from edgeae.runtime.compress import compress

        precision = "fp32" if tag == "fp32" else "int8-static"
        py = compress(load(bundle_dir, precision=precision), samples)
        entry = {"bytes": len(streams[0]), "bytes_per_sample": len(streams[0]) / max(n, 1),
                 "equal_python_codes": True, "equal_edgeae_compress": py == streams[0]}
        if py != streams[0]:
            q_py = decompress_codes(codec, mid, py)
            q_c = decompress_codes(codec, mid, streams[0])
            entry["symbols_differ"] = int(np.count_nonzero(q_py != q_c))
            entry["symbols"] = int(q_c.size)
        out[tag] = entry
    return out
