"""The C templates in ``edgeae/codegen/c/``: real C files the generators fill in.

Two marks, nothing else:

- ``PFX_`` starts every name a template defines (kernels, helpers, macros). It is valid C as
  it stands, so a template reads, compiles and diffs as C; :func:`edgeae.codegen.emit.emit`
  renames ``PFX_`` to the unit's prefix once the whole unit is assembled.
- ``${name}`` marks a value that differs between uses of one template (a C type, a kernel
  name, an expression that exists only with weight zero points). :func:`fill` substitutes
  them with :class:`string.Template`; a placeholder without a value is an error, never a
  silent leftover.

Templates: the fp32 kernels (``dense_f32.c``, ``conv_tile_f32.c``, ``conv_f32.c``, ``convt_f32.c``),
the int8 ones (``requant.c``, ``dsp.c``, ``qrows.c``, ``qdense.c``, ``qtile.c``, ``qstore.c``,
``qconv.c``, ``qconvt.c``), the one-call
compression API (``compress.h``, ``compress.c``, and per encoder ``compress_proto.h`` and
``compress_body.c``), the streaming API of signal bundles (``stream.h``, ``stream.c``,
``stream_proto.h``, ``stream_body.c``), and the Cortex-M firmware pieces the toolchain builds with
(``cortexm_startup.c``, ``cortexm_link.ld``, ``cortexm_main.c``, ``compress_target_main.c``,
``stream_target_main.c``) and the host harnesses (``host_harness.c``, ``compress_check_main.c``,
``stream_check_main.c``).

Every template is compiled with ``-Wall -Wextra -Werror`` after substitution by
``tests/test_codegen_templates.py``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

__all__ = ["C_DIR", "fill", "read"]

C_DIR = Path(__file__).parent / "c"  # shipped as package data (pyproject: "c/*.c", "c/*.ld")


@cache
def read(name: str) -> str:
    """The text of template ``name`` (a file name in :data:`C_DIR`), as it is on disk."""
    return (C_DIR / name).read_text(encoding="utf-8")


def fill(template: str, /, **values: object) -> str:
    """Template ``template`` with every ``${key}`` replaced by ``str(values[key])``."""
    try:
        return Template(read(template)).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise KeyError(f"C template {template} needs a value for ${{{e.args[0]}}}") from None
