"""Graph precision names: one parser and one meaning of each name for every command and API.

    "fp32,int8" | ["fp32", "int8"] -> parse_precisions -> ["fp32", "int8-static"]

A bundle's graphs come in four precisions: ``fp32`` (the reference every other one is
checked against), ``fp16``, ``int8-dynamic`` (activation ranges measured per call) and
``int8-static`` (activation ranges calibrated on training samples, QDQ). ``int8`` is a
short name for ``int8-static`` everywhere (export, the runtime commands, codegen, web, bench):

- it is the one int8 variant every target runs: ONNX Runtime, the browser, and the
  generated C, whose integer kernels need fixed activation scales;
- an export is reproducible: the same command writes the same graphs on every machine
  (a "better of the two" choice would depend on latency measured on the exporting machine);
- ``int8-dynamic`` stays one word away when it is what you want.

Lives in the runtime (standard library only), the lowest floor export, codegen, web and
bench all import, so that none of them parses precisions on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edgeae.errors import BundleError, ConfigError

__all__ = ["PRECISIONS", "ALIASES", "precision_name", "parse_precisions", "shown"]

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")  # the names graphs are stored under
ALIASES = {"int8": "int8-static"}  # short names accepted wherever a precision is


def shown(name: str) -> str:
    """A precision as messages name it: ``'int8' (int8-static)`` for an alias, ``'fp16'`` otherwise."""
    return f"{name!r} ({ALIASES[name]})" if name in ALIASES else repr(name)


def precision_name(name: str) -> str:
    """The stored name of one precision (``int8`` -> ``int8-static``); ConfigError for any other word."""
    if not isinstance(name, str):
        raise ConfigError(f"precision must be a str, got {type(name).__name__}")
    key = name.strip()
    if key in PRECISIONS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise ConfigError(f"unknown precision {name!r}; choose from: {', '.join(PRECISIONS)} "
                      f"({', '.join(f'{a} = {p}' for a, p in ALIASES.items())})")


def parse_precisions(value: str | Iterable[str], available: Sequence[str] | None = None,
                     where: str = "the bundle", allow_empty: bool = False) -> list[str]:
    """Comma-separated names (or a list of them) -> stored names, in order, without repeats.

    ``available``: the precisions the bundle has; a name it lacks is refused with a
    BundleError naming what it has. An empty list is refused unless ``allow_empty``.
    """
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise ConfigError(f"precisions must be comma-separated names or a list, got {type(value).__name__}")
    items = [p.strip() if isinstance(p, str) else p for p in items]
    items = [p for p in items if p != ""]
    if not items and not allow_empty:
        raise ConfigError("no precision given; pass e.g. --precision fp32 or fp32,int8")
    out: list[str] = []
    for item in items:
        name = precision_name(item)
        if available is not None and name not in available:
            raise BundleError(f"precision {shown(item)} is not in bundle {where}; it has: "
                              f"{', '.join(available) or 'none'} (re-export with --precision {name} to add it)")
        if name not in out:
            out.append(name)
    return out
