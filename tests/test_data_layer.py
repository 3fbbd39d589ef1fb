"""The data layer's contracts: row sources of any sample rank, read(start, count), one
finite-value rule for whole files and blocks, and an import graph with data at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from edgeae.data import (
    ArraySource,
    RowSource,
    iter_blocks,
    load_array_input,
    load_dataset,
    open_source,
    read_codes,
    scan_statistics,
)
from edgeae.errors import DataError, InputError

ROOT = Path(__file__).resolve().parents[1]


def _series(tmp_path, n=23, shape=(3, 50)):
    x = np.random.default_rng(2).normal(size=(n, *shape)).astype(np.float32)  # (N, C, T)
    np.save(tmp_path / "s.npy", x)
    return tmp_path / "s.npy", x


def test_npy_rows_keep_any_sample_rank(tmp_path):
    """(N, C, T) signals stay (C, T): no image axis is added where the format does not say so."""
    path, x = _series(tmp_path)
    for want in ((), (3, 50)):
        src = open_source(path, want)
        assert (src.kind, src.shape, src.dtype) == ("npy", (23, 3, 50), "float32")
        np.testing.assert_array_equal(src.read(20, 10), x[20:])  # count past the end: the rest
        np.testing.assert_array_equal(src.take(np.array([1, 4, 5])), x[[1, 4, 5]])
        np.testing.assert_array_equal(np.concatenate([b for _, b in iter_blocks(src, 4)]), x)
    np.testing.assert_array_equal(load_array_input(path, (3, 50)), x)
    np.testing.assert_array_equal(open_source(path, (150,)).read(0, 23), x.reshape(23, 150))
    assert open_source(path).read(23, 5).shape == (0, 3, 50)


def test_rank_5_samples_in_memory():
    x = np.arange(2 * 2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 2, 3, 4, 5)
    src = ArraySource.of(x)
    assert isinstance(src, RowSource) and src.shape == x.shape and len(src) == 2
    np.testing.assert_array_equal(src.read(1, 5), x[1:])
    np.testing.assert_array_equal(src.take(np.array([1, 0])), x[[1, 0]])


def test_statistics_and_training_rows_over_signals(tmp_path):
    torch = pytest.importorskip("torch")
    from edgeae.config import DataConfig
    from edgeae.data import fit_normalization, split_indices
    from edgeae.rows import prepare_data

    path, x = _series(tmp_path, n=40)
    src = open_source(path)
    norm, (lo, hi), _ = scan_statistics(src, rows=7)
    assert norm.mode == "standardize" and lo.shape == (150,)
    np.testing.assert_allclose(norm.offset, fit_normalization(x).offset, rtol=1e-12, atol=1e-12)
    split, _ = prepare_data(src, DataConfig(source=str(path), val_fraction=0.25, seed=1))
    tr, _ = split_indices(40, 0.25, 1)
    assert tuple(split.train.shape) == (30, 3, 50) and split.train[np.array([3, 0])].shape == (2, 3, 50)
    np.testing.assert_array_equal(split.train.raw(slice(None)), x[tr])
    assert isinstance(split.train[0], torch.Tensor)


def test_one_finite_rule_names_the_same_sample_whole_and_in_blocks(tmp_path):
    rows = np.arange(24, dtype=np.float32).reshape(8, 3)
    text = "\n".join(",".join(str(v) for v in r) for r in rows).replace("19.0", "nan")  # sample 7
    (tmp_path / "v.csv").write_text(text)
    want = f"{tmp_path / 'v.csv'} contains NaN or infinite values (the first in sample 7); clean or drop them first"
    for read in (lambda p: load_dataset(p).x, lambda p: load_array_input(p, (3,)),
                 lambda p: np.concatenate([b for _, b in iter_blocks(open_source(p, (3,)), 2)])):
        with pytest.raises(DataError) as info:
            read(tmp_path / "v.csv")
        assert str(info.value) == want
    np.save(tmp_path / "i.npy", np.full((3, 2), 7, np.int64))  # integers are always finite
    assert load_dataset(tmp_path / "i.npy").x.dtype == np.float32


def test_csv_quoted_cells_read_alike_whole_and_in_blocks(tmp_path):
    (tmp_path / "q.csv").write_text('a,b\n"1",2\n3," 4"\n')
    whole = load_dataset(tmp_path / "q.csv").x
    assert whole.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(open_source(tmp_path / "q.csv", (2,)).read(0, 2), whole)


def test_codes_npz_is_refused_by_content(tmp_path):
    np.savez(tmp_path / "codes.npy", x=np.zeros((2, 4), np.float32))  # np.savez adds .npz
    (tmp_path / "codes.npy.npz").rename(tmp_path / "codes.npy")
    with pytest.raises(InputError, match="holds an .npz archive; expected a .npy array of codes, shape"):
        read_codes(str(tmp_path / "codes.npy"), 4)
    np.save(tmp_path / "ok.npy", np.ones((3, 4), np.float32))
    assert read_codes(str(tmp_path / "ok.npy"), 4).shape == (3, 4)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import`` / ``from ... import`` in a file, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_data_sits_at_the_bottom_of_the_house():
    """edgeae.data imports no torch and nothing above it; nobody imports its private names."""
    above = ("edgeae.train", "edgeae.rows", "edgeae.export", "edgeae.cli", "edgeae.scale", "edgeae.models",
             "edgeae.distributed", "edgeae.codegen", "edgeae.web", "edgeae.bench", "torch", "onnx")
    for f in sorted((ROOT / "edgeae" / "data").glob("*.py")):
        for module, _ in _imports(f):
            assert not module.startswith(above), (f.name, module)
    for f in sorted((ROOT / "edgeae").rglob("*.py")):
        if f.parent.name == "data":
            continue
        for module, names in _imports(f):
            if module.startswith("edgeae.data"):
                assert not [n for n in names if n.startswith("_")], (f, module, names)
    assert not (ROOT / "edgeae" / "scale" / "sources.py").exists()
    assert not (ROOT / "edgeae" / "scale" / "stream.py").exists()
