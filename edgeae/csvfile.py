"""The text rules of a numeric CSV file, shared by the whole-file and the block reader.

``load_dataset`` (``reconstruct``, training) reads a CSV file whole; a
:class:`edgeae.scale.sources.RowSource` (``encode``, ``compress``, Dask) indexes it and
reads blocks of rows. Both split lines, decode them, find the header and parse cells with
these functions, so a file is read (or refused) the same way by every command:

- lines end at ``\\n`` (a ``\\r`` before it is dropped); a UTF-8 byte-order mark at the
  start of the file is not part of the first cell;
- every line must be UTF-8 text without NUL bytes: anything else (UTF-16, Latin-1, a
  binary file) is refused, naming the line, instead of guessing;
- blank rows are skipped; the first row holding any non-number is the header.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import numpy as np

from edgeae.errors import DataError

__all__ = ["decode_line", "split_cells", "is_number", "is_blank", "is_header", "parse_rows"]

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_line(raw: bytes, path: str | Path, line: int) -> str:
    """One line's bytes (``line`` counts from 1; without its ``\\n``) -> its text, strictly."""
    if line == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    if line == 1 and raw.startswith(_UTF16_BOMS):
        raise DataError(f"{path} is UTF-16 text; save it as UTF-8 (CSV files are read as UTF-8)")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise DataError(f"{path}, line {line}: holds a NUL byte (column {nul + 1}); "
                        "CSV files must be UTF-8 text (is it UTF-16 or binary? save it as UTF-8)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}, line {line}: byte {raw[exc.start]:#04x} at column {exc.start + 1} is not "
                        "UTF-8; save the file as UTF-8 text") from None
    return text[:-1] if text.endswith("\r") else text


def split_cells(text: str, path: str | Path, line: int) -> list[str]:
    """The cells of one decoded line (quoted cells as the csv module reads them)."""
    if "\r" in text:
        raise DataError(f"{path}, line {line}: a carriage return (\\r) inside the line; lines must end "
                        "with \\n or \\r\\n (convert old Mac line endings first)")
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise DataError(f"{path}, line {line}: could not be split into cells ({exc})") from None


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def is_blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def is_header(cells: list[str]) -> bool:
    """The first non-blank row is a header when any of its cells is not a number."""
    return not all(is_number(c) for c in cells)


def parse_rows(path: str | Path, rows: list[tuple[int, list[str]]], width: int,
               columns: list[str] | None) -> np.ndarray:
    """Parse rows ``(line_number, cells)`` cell by cell into float32, naming the first bad one."""
    values = np.empty((len(rows), width), dtype=np.float32)
    for n, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path}, line {line}: {len(row)} columns, expected {width}; make every row the same length")
        try:
            values[n] = [float(c) for c in row]
        except ValueError:
            for j, cell in enumerate(row):
                if not is_number(cell):
                    col = f"column {j + 1}" + (f" ({columns[j]!r})" if columns else "")
                    raise DataError(
                        f"{path}, line {line}, {col}: {cell!r} is not a number; "
                        "CSV data must be numeric (only the first row may be a header)"
                    ) from None
    return values
