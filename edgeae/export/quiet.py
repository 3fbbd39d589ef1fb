"""Keep the CLI's output to edgeae's own lines while export tools run.

The dynamo exporter, ONNX Runtime's quantizer and its ORT-format tooling log progress,
print to stdout and warn about their internals; none of it is actionable for a user of
``edgeae export``. Real failures still surface as exceptions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet(logger: str | None = None, level: int = logging.ERROR) -> Iterator[None]:
    """Raise ``logger`` (the root logger when None) to ``level`` and swallow warnings and prints."""
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(level)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(before)
