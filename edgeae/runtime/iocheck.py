"""A graph's real inputs and outputs against the manifest: names, dtypes and shapes.

The manifest pins each graph file by hash, but a graph can be swapped for another valid
one with the hash updated. Whatever the file, the runtime feeds it ``(B, *sample_shape)``
samples or ``(B, code_size)`` codes and reads ``code`` / ``x_hat`` back in the dtypes the
manifest records, so those are checked on the opened session (at :func:`edgeae.runtime.load`
and in ``edgeae info``) instead of failing inside onnxruntime at the first call.
"""

from __future__ import annotations

from typing import Any

from edgeae.runtime.bundle import GraphEntry

__all__ = ["ORT_TYPES", "io_problems", "expected_io"]

ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
             "tensor(int8)": "int8", "tensor(double)": "float64"}
_OUTPUT = {"encoder": "code", "decoder": "x_hat"}


def expected_io(entry: GraphEntry, sample_shape: tuple[int, ...], code_size: int) -> tuple[list, list]:
    """Per-sample shapes (no batch axis) of the graph's input and of the output the runtime reads."""
    sample, code = list(sample_shape), [code_size]
    return (sample, code) if entry.role == "encoder" else (code, sample)


def _dims(name: str, shape: Any, want: list[int], fixed_batch: int | None, what: str) -> str | None:
    """Why an onnxruntime shape (ints, names or None per axis) cannot carry ``(B, *want)``."""
    shape = list(shape or [])
    expected = f"[{fixed_batch or 'batch'}, {', '.join(map(str, want))}]"
    if len(shape) != len(want) + 1:
        return f"{what} {name} has shape {shape}, manifest expects {expected}"
    batch = shape[0]
    if fixed_batch and batch != fixed_batch:
        return f"{what} {name} has batch axis {batch!r}, manifest says fixed batch {fixed_batch}"
    if not fixed_batch and isinstance(batch, int) and batch > 0:
        return f"{what} {name} runs only batch {batch}, manifest expects {expected} (a dynamic batch axis)"
    for axis, (got, w) in enumerate(zip(shape[1:], want, strict=True), start=1):
        if isinstance(got, int) and got > 0 and got != w:
            return f"{what} {name} has shape {shape} (axis {axis} is {got}), manifest expects {expected}"
    return None


def io_problems(session: Any, entry: GraphEntry, sample_shape: tuple[int, ...], code_size: int) -> list[str]:
    """What about an opened graph disagrees with its manifest entry (empty = it fits).

    Checked: one input with the recorded name and dtype; the output the runtime reads
    (``code`` or ``x_hat``) present with the recorded dtype; both shapes ``(B, ...)``
    with the manifest's sample shape / code size, and a batch axis that is dynamic or the
    entry's ``fixed_batch``. Symbolic axes are accepted (onnxruntime checks them when run).
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    output = _OUTPUT[entry.role]
    names = [o.name for o in outputs]
    if len(inputs) != 1 or inputs[0].name != entry.inputs[0].name or output not in names:
        return [f"{entry.file}: graph has inputs {[i.name for i in inputs]} and outputs {names}, manifest expects "
                f"input {entry.inputs[0].name!r} and output {output!r}"]
    problems = []
    out = outputs[names.index(output)]
    want_out = next((t.dtype for t in entry.outputs if t.name == output), None)
    for what, node, want in (("input", inputs[0], entry.inputs[0].dtype), ("output", out, want_out)):
        got = ORT_TYPES.get(node.type, node.type)
        if want is not None and got != want:
            problems.append(f"{entry.file}: graph {what} {node.name} is {got}, manifest says {want}")
    if want_out is None:
        problems.append(f"{entry.file}: manifest lists no output {output!r}")
    raw = entry.raw_io  # raw I/O: uint8 pixels into the encoder, out of the decoder; else model units
    allowed_in = ("uint8",) if raw and entry.role == "encoder" else ("float32", "float16")
    allowed_out = ("uint8",) if raw and entry.role == "decoder" else ("float32",)
    for what, node, allowed in (("input", inputs[0], allowed_in), ("output", out, allowed_out)):
        got = ORT_TYPES.get(node.type, node.type)
        if got not in allowed:  # codes and float reconstructions are float32 (docs/INPUT.md)
            problems.append(f"{entry.file}: graph {what} {node.name} is {got}; the runtime needs {' or '.join(allowed)} "
                            f"there for a {'raw-I/O' if raw else 'model-unit'} {entry.role}")
    want_in, want_o = expected_io(entry, sample_shape, code_size)
    for what, node, want in (("input", inputs[0], want_in), ("output", out, want_o)):
        problem = _dims(node.name, node.shape, want, entry.fixed_batch, what)
        if problem:
            problems.append(f"{entry.file}: graph {problem}")
    return problems
