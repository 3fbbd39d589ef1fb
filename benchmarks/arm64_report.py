"""benchmarks/results/arm64.md from the matrix's JSON (benchmarks.arm64_matrix)."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown", "verdict"]


def verdict(c: dict[str, Any] | None) -> str:
    """'identical', 'max abs X, Y of max (k/n differ)', or 'not run'."""
    if not c:
        return "not run"
    if c["identical"]:
        return "identical"
    rel = f", {c['max_rel']:.1g} of max" if c.get("max_rel") else ""
    return f"max abs {c['max_abs']:.2g}{rel} ({c['differ']}/{c['elements']} differ)"


def _cli_rows(name: str, cpu: str, r: dict) -> list[str]:
    cli = r["cli"]
    enc = "; ".join(f"{p}: {verdict(c)}" for p, c in cli["encode"].items())
    dec = "; ".join(f"{p}: {verdict(c)}" for p, c in cli["decode"].items())
    failed = [f"`{k}`: {v['arm64']}" for k, v in cli["commands"].items() if v["arm64"] != "ok"]
    streams = ", ".join(f"{k}: {'same bytes' if v else ('differ' if v is False else 'not written')}"
                        for k, v in cli["streams"].items())
    back = verdict(cli.get("decompress")) if cli.get("decompress") else "not run"
    return [f"| {name} | {cpu} | {enc} | {dec} | {'same' if cli['info_same'] else 'differs'} | {streams} | "
            f"{back} | {'<br>'.join(failed) or 'all ok'} |"]


def _cpp_rows(name: str, cpu: str, r: dict) -> list[str]:
    cpp = r["cpp"]
    return [f"| {name} | {cpu} | {p} | {verdict(c)} | {'same bytes' if cpp['stream_same'][p] else 'DIFFER'} | "
            f"{verdict(cpp['decompress'][p])} |" for p, c in cpp["codes"].items()]


def _codegen_rows(name: str, cpu: str, r: dict) -> list[str]:
    return [f"| {name} | {cpu} | {u} | {v['precision']} | {verdict(v)} |" for u, v in r["codegen"]["units"].items()]


def _settings_rows(name: str, cpu: str, r: dict) -> list[str]:
    rows = {}
    for key, c in r["settings"].items():
        graph, setting, _ = key.split("|")
        rows.setdefault(graph, {})[setting] = verdict(c)
    return [f"| {name} | {cpu} | {g} | " + " | ".join(s.values()) + " |" for g, s in rows.items()]


def markdown(out: dict[str, Any]) -> str:
    """The results page: what was emulated, then one table per check."""
    m, v = out["machine"], out["versions"]
    lines = ["# ARM64 (aarch64) under emulation: the runtime, the C++ app and the generated C", "",
             f"Host (measured timings, x86 reference results): {m['cpu']}, {m['cores']} cores, ISA: "
             f"{' '.join(m['isa'])}; Python {v['python_x86']}, onnxruntime {v['onnxruntime_x86']}.",
             f"Emulated: {v['qemu']} user mode; aarch64 userland: Debian {v['userland']} (aarch64 wheels); "
             f"{v['cross_gcc']}. No aarch64 wheel on PyPI for: {', '.join(v['missing_aarch64_wheels']) or 'none'}.",
             "", "Emulated CPU models (features as the emulated CPU reports them: MIDR_EL1, HWCAP, HWCAP2):", ""]
    lines += [f"- `{cpu}`: {c['described']}; {c['cpuinfo']}" for cpu, c in out["cpus"].items()]
    inst = out.get("install", {})
    lines += ["", "`pip install edgeae` as resolved by pip running in the aarch64 CPython (platform_machine "
              f"`{inst.get('platform_machine', '?')}`; dry run against PyPI, binary wheels only): "
              + (", ".join(f"`{w}`" for w in inst["installs"]) if inst.get("ok") else f"FAILED: {inst.get('error')}")]
    lines += ["", f"Every figure compares the emulated aarch64 result with this machine's on the same "
              f"{out['samples']} held-out MNIST samples. No timing is taken under emulation.", "",
              "## The CLI in the aarch64 CPython", "",
              "Encode: codes of each precision; decode: raw outputs of this machine's fp32 codes; .eae: "
              "`compress` there (the built-in range coder: no aarch64 wheel of constriction) vs here "
              "(constriction); decompress: this machine's fp32 stream decompressed there vs here.", "",
              "| model | CPU | encode | decode | info | .eae | decompress | commands that failed |",
              "|---|---|---|---|---|---|---|---|"]
    for name, per in out["models"].items():
        for cpu, r in per["cpus"].items():
            lines += _cli_rows(name, cpu, r)
    lines += ["", "## examples/cpp (g++-aarch64-linux-gnu, the aarch64 wheel's libonnxruntime.so) and the C codec", "",
              "Codes vs the Python runtime here; the stream vs `compress_codes` of those codes here; "
              "eae_codec_tool's decompress (aarch64) of the stream written here vs Python's.", "",
              "| model | CPU | encoder | codes | .eae | C decompress |", "|---|---|---|---|---|---|"]
    for name, per in out["models"].items():
        for cpu, r in per["cpus"].items():
            lines += _cpp_rows(name, cpu, r)
    lines += ["", "## Generated C (`edgeae codegen`, aarch64-linux-gnu-gcc -O2 -static) vs the same C built here", "",
              "| model | CPU | unit | precision | outputs |", "|---|---|---|---|---|"]
    for name, per in out["models"].items():
        for cpu, r in per["cpus"].items():
            lines += _codegen_rows(name, cpu, r)
    settings = next(iter(next(iter(out["models"].values()))["cpus"].values()))["settings"]
    names = list(dict.fromkeys(k.split("|")[1] for k in settings))
    lines += ["", "## Graphs under ONNX Runtime settings: emulated ARM vs x86", "",
              "`edgeae`: the runtime's session defaults (on ARM64 `MatMulIntegerToFloatFusion` and KleidiAI "
              "left out). The others start from ONNX Runtime's own defaults (every optimizer and KleidiAI in, "
              "overriding the runtime's ARM64 defaults): the optimization level, an optimizer left out "
              "(`optimization.disable_specified_optimizers`), or KleidiAI's kernels left out "
              "(`mlas.disable_kleidiai = 1`).", "",
              "| model | CPU | graph | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for name, per in out["models"].items():
        for cpu, r in per["cpus"].items():
            lines += _settings_rows(name, cpu, r)
    lines += ["", "## This machine: int8-dynamic with and without MatMulIntegerToFloatFusion", "",
              "p50 microseconds, one thread, interleaved; ratio = unfused / fused; outputs compared bit for bit.", "",
              "| model | graph | batch | fused | unfused | ratio | same outputs |", "|---|---|---|---|---|---|---|"]
    for name, per in out["models"].items():
        lines += [f"| {name} | {r['graph']} | {r['batch']} | {r['fused_us']:.1f} | {r['unfused_us']:.1f} | "
                  f"{r['ratio']:.2f}x | {'yes' if r['same_outputs'] else 'NO'} |" for r in per["fusion_cost"]]
    return "\n".join(lines) + "\n"
