"""Training and export read their data on demand: one statistics pass, index-array splits,
batches gathered from a memory map. The reference is the in-memory path: the data set read
whole, normalized whole and indexed (what training did before it streamed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from edgeae.config import DataConfig
from edgeae.data import (
    RowSource,
    fit_normalization,
    load_dataset,
    open_training_source,
    scan_statistics,
    split_indices,
    streaming_normalization,
)
from edgeae.errors import DataError
from edgeae.export import export
from edgeae.rows import prepare_data
from edgeae.runtime.preprocess import Normalizer
from edgeae.train import train
from tests._bundles import digits_features, digits_uint8


def _floats(tmp_path, n=400, d=12, dtype=np.float64):
    x = (np.random.default_rng(5).normal(size=(n, d)) * 3 + 1).astype(dtype)
    path = tmp_path / "f.npy"
    np.save(path, x)
    return path, x


def test_streaming_normalization_bit_equal_in_one_block(tmp_path):
    path, x = _floats(tmp_path)
    src = open_training_source(path)[0]
    idx = np.sort(np.random.default_rng(1).choice(len(x), 300, replace=False))
    ref = fit_normalization(x.astype(np.float32)[idx])
    got = streaming_normalization(src, rows=len(x), indices=idx)
    assert (got.mode, got.offset, got.scale) == (ref.mode, ref.offset, ref.scale)  # bit-equal


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_streaming_normalization_blocks_match_fit(tmp_path, rows):
    path, x = _floats(tmp_path)
    src = open_training_source(path)[0]
    idx = np.arange(3, len(x), 2)
    ref = fit_normalization(x.astype(np.float32)[idx])
    got = streaming_normalization(src, rows=rows, indices=idx)
    assert got.mode == ref.mode == "standardize"
    np.testing.assert_allclose(got.offset, ref.offset, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scale, ref.scale, rtol=1e-12, atol=1e-12)


def test_streaming_normalization_modes_and_errors(tmp_path):
    np.save(tmp_path / "u.npy", digits_uint8()[:40])
    np.save(tmp_path / "unit.npy", np.random.default_rng(0).random((30, 5)))
    for name in ("u.npy", "unit.npy"):
        x = load_dataset(tmp_path / name).x
        src = open_training_source(tmp_path / name)[0]
        assert streaming_normalization(src, rows=4) == fit_normalization(x)
    bad = np.ones((20, 3))
    bad[13, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match="NaN"):
        streaming_normalization(open_training_source(tmp_path / "nan.npy")[0], rows=5)


def test_training_source_reads_what_load_dataset_reads(tmp_path):
    from PIL import Image

    x = digits_uint8()[:30, 0]
    np.save(tmp_path / "hwc.npy", x[..., None])  # channels last
    np.save(tmp_path / "f64.npy", digits_features()[:30].astype(np.float64))
    head = bytes([0, 0, 0x08, 3]) + np.asarray(x.shape, dtype=">u4").tobytes()
    (tmp_path / "t-images-idx3-ubyte").write_bytes(head + x.tobytes())
    (tmp_path / "imgs").mkdir()
    for i, img in enumerate(x[:9]):
        Image.fromarray(img).save(tmp_path / "imgs" / f"{i:02d}.png")
    np.savetxt(tmp_path / "v.csv", digits_features()[:30], delimiter=",")
    for name, kind in (("hwc.npy", "npy"), ("f64.npy", "npy"), ("t-images-idx3-ubyte", "idx"),
                       ("imgs", "images"), ("v.csv", "memory")):
        ref = load_dataset(tmp_path / name)
        src, fmt, is_image = open_training_source(tmp_path / name)
        assert (src.kind, fmt, is_image, src.sample_shape, src.dtype, len(src)) == (
            kind, ref.format, ref.is_image, ref.sample_shape, ref.x.dtype.name, len(ref))
        np.testing.assert_array_equal(src.take(np.array([5, 0, 7, 8])), ref.x[[5, 0, 7, 8]])


def _old_prepare(x: np.ndarray, cfg: DataConfig):
    """What prepare_data did before it streamed: normalize everything, then index."""
    tr, va = split_indices(len(x), cfg.val_fraction, cfg.seed, cfg.split == "ordered")
    norm = fit_normalization(x[tr])
    full = torch.from_numpy(np.ascontiguousarray(Normalizer(norm, x.shape[1:]).normalize(x)))
    return full[tr], full[va], x[va], norm


@pytest.mark.parametrize("name", ["digits", "floats"])
def test_split_equals_in_memory_path(tmp_path, name):
    if name == "digits":
        source, x = "digits", load_dataset("digits").x
    else:
        path, raw = _floats(tmp_path)
        source, x = path, raw.astype(np.float32)
    cfg = DataConfig(source=str(source), val_fraction=0.2, seed=3)
    split, norm = prepare_data(source, cfg)
    tr, va, va_raw, ref_norm = _old_prepare(x, cfg)
    assert norm == ref_norm
    assert torch.equal(split.train.load(), tr) and torch.equal(split.val.load(), va)
    np.testing.assert_array_equal(split.val_raw, va_raw)
    perm = torch.randperm(len(tr), generator=torch.Generator().manual_seed(0))[:37]
    assert torch.equal(split.train[perm], tr[perm])  # a shuffled batch, gathered sorted, in its order
    assert split.train.min() == tr.min() and split.train.max() == tr.max()
    assert split.val.min() == va.min() and split.val.max() == va.max()
    assert torch.equal(split.val[5:9], va[5:9]) and torch.equal(split.val[4], va[4])


def _weights(run) -> dict:
    return load_file(str(run / "weights.safetensors"))


def test_memory_mapped_training_equals_in_memory(tmp_path):
    """A .npy (memory-mapped, batches read on demand) trains the weights its in-memory
    twin (.npz, read whole) trains, and never reads the file whole."""
    x = np.tile(digits_uint8()[:, 0], (2, 1, 1))  # (3594, 8, 8) uint8
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    reads = []
    take = RowSource.take

    def counting_take(self, indices):
        if self.kind == "npy":
            reads.append(len(indices))
        return take(self, indices)

    kw = dict(model="mlp", epochs=2, batch_size=64, device="cpu", hidden="32", code_size=8, noise="gaussian:0.05")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RowSource, "take", counting_take)
        a = train(str(tmp_path / "x.npy"), out=tmp_path / "a", **kw)
    b = train(str(tmp_path / "x.npz"), out=tmp_path / "b", **kw)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a.metrics["val_psnr"] == b.metrics["val_psnr"]
    assert max(reads) < len(x) * 0.9 and reads.count(64) >= 2 * (len(x) * 0.9 // 64)


@pytest.mark.slow  # an int8-static export with its checks: about a minute on 2 shared cores
def test_export_reads_only_its_samples(tmp_path):
    x = np.tile(digits_uint8()[:, 0], (2, 1, 1))
    np.save(tmp_path / "x.npy", x)
    train(str(tmp_path / "x.npy"), out=tmp_path / "run", model="mlp", epochs=1, device="cpu",
                 hidden="32", code_size=8)
    reads = []
    take = RowSource.take

    def counting_take(self, indices):
        reads.append(len(indices))
        return take(self, indices)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RowSource, "take", counting_take)
        res = export(tmp_path / "run", tmp_path / "bundle", precisions="int8-static",
                            calibration_samples=100, codec_bits="none", latency_repeats=1)
    assert res.manifest.validation
    # held-out samples (raw and normalized) and the calibration rows; never the whole file
    assert sorted(reads) == [100, 359, 359] and sum(reads) < len(x) / 4


def test_statistics_pass_splits_ranges(tmp_path):
    path, x = _floats(tmp_path, n=50, d=3)
    src = open_training_source(path)[0]
    tr, va = np.arange(0, 50, 3), np.setdiff1d(np.arange(50), np.arange(0, 50, 3))
    _, (tlo, thi), (vlo, vhi) = scan_statistics(src, 4, tr, va)
    f = x.astype(np.float32)
    np.testing.assert_array_equal(tlo, f[tr].min(0))
    np.testing.assert_array_equal(vhi, f[va].max(0))
    np.testing.assert_array_equal(thi, f[tr].max(0))
    np.testing.assert_array_equal(vlo, f[va].min(0))
