"""Numeric CSV files: the text rules, the one parser, the whole-file reader and the row source.

:func:`read_csv` (``load_dataset``: ``reconstruct``, training) reads a CSV file whole; a
:class:`CsvSource` (``encode``, ``compress``, Dask) indexes it and reads blocks of rows.
Both split lines, decode them, find the header and parse rows with these functions
(:func:`parse_block` is the one parser), so a file is read (or refused) the same way by
every command:

- lines end at ``\\n`` (a ``\\r`` before it is dropped); a UTF-8 byte-order mark at the
  start of the file is not part of the first cell;
- every line must be UTF-8 text without NUL bytes: anything else (UTF-16, Latin-1, a
  binary file) is refused, naming the line, instead of guessing;
- blank rows are skipped; the first row holding any non-number is the header.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeae.data.source import Dataset, RowSource, check_finite
from edgeae.errors import DataError

__all__ = ["CsvSource", "decode_line", "split_cells", "is_number", "is_blank", "is_header", "open_csv",
           "parse_block", "parse_rows", "read_csv"]

_STRIDE = 1024  # rows between two remembered byte offsets of a CSV file
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


def parse_block(path: str | Path, rows: list[tuple[int, list[str], str]], width: int,
                columns: list[str] | None, first_row: int = 0) -> np.ndarray:
    """The one CSV parser: rows ``(line_number, cells, text)`` -> float32 ``(len(rows), width)``.

    numpy's C parser reads the lines' own text when they are well formed; on any problem the
    rows are parsed again cell by cell to name the line and column at fault. ``first_row``
    is the data row of ``rows[0]`` (named when a value is not finite).
    """
    try:
        values = np.loadtxt([text for _, _, text in rows], delimiter=",", dtype=np.float32, ndmin=2,
                            comments=None)
        fast = values.shape == (len(rows), width)
    except ValueError:
        fast = False
    if not fast:
        values = parse_rows(path, [(line, cells) for line, cells, _ in rows], width, columns)
    check_finite(values, path, first_row)
    return values


def read_csv(path: Path) -> Dataset:
    """Numeric CSV -> float32 (N, D) in one pass; a first row with any non-number is the header."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} could not be read as CSV text ({exc.strerror or exc})") from None
    lines = [decode_line(b, path, i) for i, b in enumerate(raw.split(b"\n"), start=1)]
    rows = [(i, cells, lines[i - 1]) for i, cells in
            ((i, split_cells(t, path, i)) for i, t in enumerate(lines, start=1)) if not is_blank(cells)]
    columns = None
    if rows and is_header(rows[0][1]):
        columns = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path} has no data rows; give one sample per line of comma-separated numbers")
    width = len(columns) if columns is not None else len(rows[0][1])
    return Dataset(parse_block(path, rows, width, columns), None, str(path), "csv", False, columns)


@dataclass(frozen=True)
class CsvSource(RowSource):
    """The rows of a CSV file, found through an index of every ``stride``-th row's offset."""

    file: str = ""
    width: int = 0  # cells per row
    index: tuple[tuple[int, int], ...] = ()  # (byte offset, line number) of every stride-th data row
    columns: tuple[str, ...] | None = None  # the header's names (named in errors), None without one

    kind: ClassVar[str] = "csv"

    def _rows(self, start: int, stop: int) -> np.ndarray:
        base = start - start % _STRIDE
        offset, line_no = self.index[base // _STRIDE]
        rows: list[tuple[int, list[str], str]] = []
        with open(self.file, "rb") as f:
            f.seek(offset)
            row = base
            while row < stop:
                raw = f.readline()
                if not raw:
                    break
                text = decode_line(raw.rstrip(b"\n"), self.file, line_no)
                cells = split_cells(text, self.file, line_no)
                line_no += 1
                if is_blank(cells):
                    continue  # blank rows are skipped, as the whole-file reader does
                if row >= start:
                    rows.append((line_no - 1, cells, text))
                row += 1
        return parse_block(self.file, rows, self.width, None if self.columns is None else list(self.columns),
                           start)


def open_csv(path: Path) -> CsvSource:
    """Index a CSV file in one pass: its header, width, row count and row offsets."""
    index, n, width, pos, seen, columns = [], 0, 0, 0, False, None
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            start, pos = pos, pos + len(raw)
            cells = split_cells(decode_line(raw.rstrip(b"\n"), path, line_no), path, line_no)
            if is_blank(cells):
                continue  # blank rows are skipped, as the whole-file reader does
            if not seen:
                seen = True
                if is_header(cells):
                    width, columns = len(cells), tuple(c.strip() for c in cells)
                    continue
            if n % _STRIDE == 0:
                index.append((start, line_no))
            width = width or len(cells)
            n += 1
    if n == 0:
        raise DataError(f"{path} has no data rows; give one sample per line of comma-separated numbers")
    return CsvSource(str(path), n, (), "", file=str(path), width=width, index=tuple(index), columns=columns)
