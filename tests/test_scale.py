"""Row sources, block-by-block encode/compress, and the same blocks on a Dask cluster.

The reference is always the in-memory path: ``load_array_input`` for reading,
``model.encode`` / ``compress`` on the whole array for codes and stream bytes.
"""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from edgeae.cli import cli
from edgeae.data import (
    fit_normalization,
    iter_blocks,
    load_array_input,
    open_source,
    streaming_normalization,
)
from edgeae.runtime import load, read_manifest, write_manifest
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.compress import compress
from edgeae.scale import bulk
from tests._bundles import digits_features, digits_uint8, make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The digits PCA test bundle with 6- and 4-bit codec tables (code size 16: 16384-row blocks)."""
    folder, _ = make_bundle(tmp_path_factory.mktemp("scale") / "b", "image")
    codes = load(folder).encode(digits_uint8())
    man = read_manifest(folder)
    write_manifest(folder, dataclasses.replace(man, codec=[LatentCodec.fit(codes, b).to_dict() for b in (6, 4)]))
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """40,000 digits (three blocks, the last partial) as an (N, 8, 8) uint8 .npy."""
    x = np.tile(digits_uint8()[:, 0], (23, 1, 1))[:40_000]
    path = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(path, x)
    return path, x[:, None]


def _idx(path, x: np.ndarray, gz: bool) -> None:
    head = bytes([0, 0, 0x08, x.ndim]) + np.asarray(x.shape, dtype=">u4").tobytes()
    (gzip.open if gz else open)(path, "wb").write(head + x.tobytes())


@pytest.mark.parametrize("kind", ["npy", "idx", "idx-gz", "csv", "images"])
def test_source_matches_load_array_input(tmp_path, kind):
    x = digits_uint8()[:50, 0]  # (50, 8, 8)
    if kind == "npy":
        path = tmp_path / "x.npy"
        np.save(path, x.transpose(0, 1, 2)[..., None])  # (N, H, W, 1): channels last
    elif kind.startswith("idx"):
        path = tmp_path / ("t-images-idx3-ubyte" + (".gz" if kind == "idx-gz" else ""))
        _idx(path, x, kind == "idx-gz")
    elif kind == "csv":
        path = tmp_path / "x.csv"
        rows = ["f" + ",f".join(str(i) for i in range(64))] + [",".join(map(str, r)) for r in digits_features()[:50]]
        path.write_text("\n".join(rows[:10] + [""] + rows[10:]) + "\n")  # a header and a blank line
    else:
        from PIL import Image

        path = tmp_path / "imgs"
        path.mkdir()
        for i, img in enumerate(x[:20]):
            mode = "RGB" if i == 7 else "L"  # one colour image makes every image RGB
            Image.fromarray(img).convert(mode).save(path / f"{i:03d}.png")
    want = (64,) if kind == "csv" else ((3, 8, 8) if kind == "images" else (1, 8, 8))
    ref = load_array_input(path, want)
    src = open_source(path, want)
    assert (src.n, src.sample_shape, src.dtype) == (len(ref), want, ref.dtype.name)
    np.testing.assert_array_equal(src.read(3, 14), ref[3:17])
    np.testing.assert_array_equal(np.concatenate([b for _, b in iter_blocks(src, 7)]), ref)


def test_streaming_normalization_matches_fit(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, digits_features())
    got = streaming_normalization(open_source(path), rows=100)
    ref = fit_normalization(digits_features())
    assert got.mode == ref.mode == "standardize"
    np.testing.assert_allclose(got.offset, ref.offset, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.scale, ref.scale, rtol=1e-9, atol=1e-9)
    assert streaming_normalization(open_source(path.parent / "f.npy")).mode == "standardize"


def test_blocks_equal_whole_array(bundle, big, tmp_path):
    path, x = big
    model = load(bundle)
    src = open_source(path, model.sample_shape)
    assert bulk.block_rows(model.code_size) == 16384  # 40,000 samples -> 3 blocks
    bulk.encode_to_npy(model, src, tmp_path / "c.npy")
    np.save(tmp_path / "ref.npy", model.encode(x))
    assert (tmp_path / "c.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()  # same file as np.save
    report = bulk.compress_to_file(model, src, tmp_path / "s.eae", bits=4)
    assert (tmp_path / "s.eae").read_bytes() == compress(model, x, bits=4)
    assert report["samples"] == 40_000 and 10 < report["psnr"] < 40


dask = pytest.importorskip("dask", reason="the dask extra is not installed (pip install 'edgeae[dask]')")


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two one-thread worker processes (real processes: pickling is proved)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           host="127.0.0.1")
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_dask_api_equals_single_process(bundle, big, tmp_path, client):
    import dask.array as da

    from edgeae.scale import dask as edask

    path, x = big
    model = load(bundle)
    xd = da.from_array(x, chunks=(5000, 1, 8, 8))  # chunks unlike the block plan: rechunked
    codes = edask.encode(bundle, xd)
    assert codes.chunks[0] == (16384, 16384, 7232)
    np.testing.assert_array_equal(codes.compute(), model.encode(x))
    pids = client.run(lambda: __import__("os").getpid())
    assert len(set(pids.values())) == 2
    report = edask.compress(bundle, xd, tmp_path / "d.eae", bits=6)
    assert (tmp_path / "d.eae").read_bytes() == compress(model, x, bits=6)
    assert report["samples"] == 40_000
    edask.compress(bundle, xd[:1000], tmp_path / "d.eae", append=True)  # one more chunk, same codec
    whole = compress(model, x, bits=6) + bulk.compress_block(model, x[:1000], 6, check=False)[0]
    assert (tmp_path / "d.eae").read_bytes() == whole


@pytest.mark.slow  # two local clusters start: ~30 s on 2 cores
def test_cli_dask_same_bytes(bundle, big, tmp_path):
    path, _ = big
    run = CliRunner().invoke
    assert run(cli, ["compress", str(bundle), str(path), "-o", str(tmp_path / "a.eae")]).exit_code == 0
    res = run(cli, ["compress", str(bundle), str(path), "-o", str(tmp_path / "b.eae"), "--dask", "local:2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.eae").read_bytes() == (tmp_path / "b.eae").read_bytes()
    res = run(cli, ["encode", str(bundle), str(path), "-o", str(tmp_path / "c.npy"), "--dask", "local:2"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), load(bundle).encode(np.load(path)[:, None]))
    res = run(cli, ["encode", str(bundle), str(path), "-o", str(tmp_path / "d.npy"), "--dask", "local:0"])
    assert res.exit_code == 1 and res.output.strip() == (
        "Error: --dask 'local:0': give local:N with N >= 1 workers, e.g. local:2")
