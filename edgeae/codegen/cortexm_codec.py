"""The C codec and the one-call compression on emulated Cortex-M: the host's bytes, measured cost.

::

    write_codec output + eae_codec_target.c/.ld + test codes (eae_target_vectors.h)
      -> run_codec_target: one stream per sample, one multi-sample stream decoded on target
    edgeae codegen output (encoder + codec + PREFIX_compress) + c/compress_target_main.c
      -> run_compress_target: raw samples -> streams, compared with Python's bytes for the
         codes the host-compiled encoder computes

Both build with :mod:`edgeae.codegen.toolchain` (the one place that runs compilers and QEMU)
and count instructions with SysTick under ``-icount shift=0``.
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

from edgeae.codegen.codec import TEMPLATE_DIR
from edgeae.codegen.compress_c import codec_prefix
from edgeae.codegen.cortexm import c_array
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import (
    CALIBRATION_LOOPS,
    TARGETS,
    arm_gcc,
    object_sizes,
    read_counters,
    require_target,
    run_firmware,
    run_qemu,
    run_tool,
    toolchain_problem,
)
from edgeae.errors import BundleError, ConfigError, ExportError

__all__ = ["CODEC_TARGETS", "TOOLCHAIN_HINT", "run_codec_target", "run_compress_target", "target_vectors_source"]

CODEC_TARGETS = ("cortex-m4f", "cortex-m3", "cortex-m0")  # the boards eae_codec_target.ld maps (MPS2)
TARGET_FILES = ("eae_codec_target.c", "eae_codec_target.ld")
TOOLCHAIN_HINT = (
    "install gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm "
    "(Debian/Ubuntu: `make c-tools`)"
)


def target_vectors_source(codes: np.ndarray, codec_index: int = 0) -> str:
    """``eae_target_vectors.h``: float codes (N, D) as exact hexadecimal float literals."""
    c = np.asarray(codes, dtype=np.float32)
    vals = ", ".join(float(v).hex() + "f" for v in c.ravel())
    return (
        "/* eae_target_vectors.h - generated test codes for eae_codec_target.c */\n"
        f"#define EAE_TV_N {c.shape[0]}\n#define EAE_TV_CODEC {codec_index}\n"
        f"static const float eae_tv_codes[{c.size}] = {{{vals}}};\n"
    )


def _codec_fields(text: str) -> tuple[list[bytes], str, dict[str, int]]:
    """The codec firmware's printout -> (one stream per sample, the multi-sample stream in hex, counters)."""
    streams, multi, fields = [], "", {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "stream":
            streams.append(bytes.fromhex(value))
        elif key == "multi":
            multi = value
        elif key in ("calib_ticks_2000000_instructions", "samples", "bytes", "ticks", "stack_bytes"):
            fields[key] = int(value)
    return streams, multi, fields


def run_codec_target(
    src_dir: str | Path, prefix: str, codes: np.ndarray, cpu: str = "cortex-m4f",
    codec_index: int = 0, timeout: float = 300.0,
) -> dict:
    """Build the codec for a Cortex-M, run it under qemu-system-arm, return what it measured.

    ``src_dir`` holds the output of :func:`edgeae.codegen.codec.write_codec`. The program
    compresses each row of ``codes`` as its own stream (batch 1). Returns ``streams`` (bytes
    per sample), ``instructions_per_sample`` (QEMU ``-icount shift=0``, calibrated by a loop of
    known length), ``stack_bytes`` (painted), ``flash_bytes``/``ram_bytes`` of the codec
    objects (code + tables; static RAM), and ``multi`` (one stream of all rows, decoded on
    target). Raises ConfigError when the toolchain or QEMU is missing.
    """
    if cpu not in CODEC_TARGETS:
        raise ConfigError(f"cpu={cpu!r} is not supported; use one of {sorted(CODEC_TARGETS)}")
    if toolchain_problem():
        raise ConfigError(f"the Cortex-M toolchain or QEMU is missing; {TOOLCHAIN_HINT}")
    src = Path(src_dir)
    for name in TARGET_FILES:
        shutil.copyfile(TEMPLATE_DIR / name, src / name)
    (src / "eae_target_vectors.h").write_text(target_vectors_source(codes, codec_index))
    cc = arm_gcc(cpu, "-masm-syntax-unified", "-O2", "-std=c99", "-Wall", "-Wextra", "-ffunction-sections",
                 "-fdata-sections", f"-DEAE_PREFIX={prefix}", "-I", str(src))
    sources = [src / n for n in ("eae_codec.c", f"{prefix}_codec.c", "eae_codec_target.c")]
    elf = src / f"target-{cpu}.elf"
    run_tool([*cc, "-nostartfiles", "-T", src / "eae_codec_target.ld", "-Wl,--gc-sections", *sources, "-lc", "-lgcc",
              "-o", elf], f"building the codec firmware for {cpu}", timeout=timeout, error=BundleError)
    objs = []
    for name in ("eae_codec.c", f"{prefix}_codec.c"):
        objs.append(src / f"{Path(name).stem}-{cpu}.o")
        run_tool([*cc, "-c", src / name, "-o", objs[-1]], f"cross-compiling {name}", timeout=timeout,
                 error=BundleError)
    sizes = object_sizes(objs)
    text = run_qemu(elf, TARGETS[cpu][1], "the codec firmware", timeout=timeout, error=BundleError)
    streams, multi, fields = _codec_fields(text)
    if "decode ok" not in text or len(streams) != len(codes):
        raise BundleError(f"the {cpu} program did not finish:\n{text}")
    per_tick = 2_000_000 / fields["calib_ticks_2000000_instructions"]
    return {
        "cpu": cpu,
        "machine": TARGETS[cpu][1],
        "streams": streams,
        "multi": bytes.fromhex(multi),
        "instructions_per_sample": fields["ticks"] * per_tick / fields["samples"],
        "instructions_resolution": per_tick / fields["samples"],
        "bytes_per_sample": fields["bytes"] / fields["samples"],
        "stack_bytes": fields["stack_bytes"],
        "flash_bytes": {stem: t + d for stem, (t, d, _) in sizes.items()},
        "ram_bytes": sum(d + b for _, d, b in sizes.values()),
    }


# ------------------------------------------------------------ one-call compression
def _target_unit(bundle_dir: Path, c_dir: Path, tag: str, samples: int) -> tuple[str, Any, np.ndarray, Any, Any]:
    """Check the generated folder and read what the firmware needs: prefix, encoder unit, inputs, codec."""
    from edgeae.codegen.codec import bundle_codecs
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime.bundle import read_manifest

    report = json.loads((c_dir / "codegen.json").read_text())
    prefix = report["prefix"]
    if not report.get("compress"):
        raise ConfigError(f"{c_dir} has no one-call compression (generated without codec tables or with --no-codec)")
    g = next((g for g in report["graphs"] if g["role"] == "encoder" and g["name"].endswith(f"_{tag}")), None)
    if g is None:
        raise ConfigError(f"{c_dir} has no {tag} encoder")
    manifest = read_manifest(bundle_dir)
    x = unit_inputs(bundle_dir, manifest, "encoder", report["io"] == "raw",
                    np.load(bundle_dir / manifest.samples["file"])[:samples])
    unit = SimpleNamespace(name=g["name"], inputs=[tuple(t) for t in g["inputs"]],
                           outputs=[tuple(t) for t in g["outputs"]])
    codec, mid = bundle_codecs(bundle_dir)[0]
    return prefix, unit, x, codec, mid


def _host_streams(w: Path, c_dir: Path, unit: Any, x: np.ndarray, codec: Any, mid: Any) -> list[bytes]:
    """Python's stream bytes, one per sample, for the codes the host-compiled C encoder computes."""
    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.runtime.stream import compress_codes

    host_dir = w / "host"
    host_dir.mkdir(exist_ok=True)
    for ext in (".c", ".h"):
        shutil.copyfile(c_dir / f"{unit.name}{ext}", host_dir / f"{unit.name}{ext}")
    host_codes = run_harness(build_harness(unit, host_dir, cxx=None), unit, [x])[0]
    return [compress_codes(codec, mid, host_codes[i:i + 1]) for i in range(len(x))]


def _compress_firmware(w: Path, c_dir: Path, prefix: str, tag: str, unit: Any, x: np.ndarray, target: str,
                       repeats: int) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """Cross-compile and link the compression firmware in ``w``, run it under qemu; its output and object sizes."""
    (_, it, xn) = unit.inputs[0]
    samples = c_array("samples", it, np.asarray(x).reshape(len(x), -1)[:, :xn])
    main = fill("compress_target_main.c", prefix=prefix, tag=tag, samples=samples, n=len(x), xn=xn,
                repeats=repeats, calib=CALIBRATION_LOOPS)
    units = ["eae_codec", f"{codec_prefix(prefix)}_codec", f"{prefix}_compress", unit.name]
    return run_firmware(w, c_dir, target, main, units, "compression firmware")


def run_compress_target(bundle_dir: str | Path, c_dir: str | Path, tag: str = "int8", target: str = "cortex-m4f",
                        samples: int = 8, work: str | Path | None = None, repeats: int = 4) -> dict[str, Any]:
    """Build ``PREFIX_compress_<tag>`` (encoder + codec, a folder written by ``edgeae codegen``)
    for a Cortex-M, compress ``samples`` held-out samples one stream each under qemu-system-arm,
    and compare every stream with Python's bytes for the host C encoder's codes.

    Returns instructions per compressed sample (sample 0, batch 1, ``-icount shift=0``), flash
    (text + data of encoder, codec, tables and the compress glue), RAM (data + bss + painted
    stack) and ``equal_host`` (every stream byte-identical to the host's).
    """
    require_target(target)
    bundle_dir, c_dir = Path(bundle_dir), Path(c_dir)
    prefix, unit, x, codec, mid = _target_unit(bundle_dir, c_dir, tag, samples)
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(work) if work else Path(tmp)
        w.mkdir(parents=True, exist_ok=True)
        want = _host_streams(w, c_dir, unit, x, codec, mid)
        out, sizes = _compress_firmware(w, c_dir, prefix, tag, unit, x, target, repeats)
    got = [bytes(int(b, 16) for b in line.split()) for line in re.findall(r"^stream ?(.*)$", out, re.M)]
    if len(got) != len(x):
        raise ExportError(f"the {target} compression firmware printed {len(got)} streams, expected {len(x)}:\n"
                          f"{out[-2000:]}")
    per_tick, ticks, stack = read_counters(out, f"the compression firmware on {target}")
    flash = sum(t + d for t, d, _ in sizes.values())
    return {"target": target, "machine": TARGETS[target][1], "unit": unit.name, "samples": len(x),
            "equal_host": got == want, "streams_differ": sum(a != b for a, b in zip(got, want, strict=True)),
            "bytes_per_sample": sum(map(len, got)) / len(got),
            "instructions_per_sample": round(ticks * per_tick / repeats),
            "flash_bytes": flash, "flash_by_object": {k: t + d for k, (t, d, _) in sizes.items()},
            "ram_bytes": sum(d + b for _, d, b in sizes.values()) + stack, "stack_bytes": stack}
