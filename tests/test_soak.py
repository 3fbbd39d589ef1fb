"""Concurrency soak: one EdgeModel shared by 8 threads, and one bundle loaded by 4 processes at once.

A loaded model keeps no per-call state (edgeae/runtime/model.py), so every call made
concurrently must give exactly the bytes a serial call gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import edgeae.runtime as rt
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.compress import compress, decompress
from tests._bundles import digits_uint8, make_bundle

ROOT = Path(__file__).resolve().parents[1]
CALLS = 10_000
THREADS = 8


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder = make_bundle(tmp_path_factory.mktemp("soak") / "b", "image")[0]
    manifest = rt.read_manifest(folder)
    manifest.codec = [LatentCodec.fit(rt.load(folder).encode(digits_uint8()), 6).to_dict()]
    rt.write_manifest(folder, manifest)
    return folder


def _tasks(model) -> list[tuple[str, object]]:
    """Distinct calls of every kind: batch-1 fast path, larger batches, other layouts, chunking."""
    x = digits_uint8()
    codes = model.encode(x)
    tasks: list[tuple[str, object]] = []
    for i in range(60):
        n = 1 + (i * 7) % 40
        s = (i * 29) % (len(x) - n)
        tasks += [("encode", x[s:s + n]), ("encode", x[s].astype(np.float32) / 255), ("encode", x[s:s + n, 0]),
                  ("decode", codes[s:s + n]), ("reconstruct", x[s:s + n]), ("compress", x[s:s + n]),
                  ("decode-chunked", codes[s:s + 3 * n])]
    return tasks


def _call(model, kind: str, arg) -> bytes:
    if kind == "encode":
        return model.encode(arg).tobytes()
    if kind == "decode":
        return model.decode(arg, raw=True).tobytes()
    if kind == "decode-chunked":
        return model.decode(arg, batch_size=5).tobytes()
    if kind == "reconstruct":
        return model.reconstruct(arg).tobytes()
    data = compress(model, arg, bits=6)
    return data + decompress(model, data).tobytes()


def test_one_model_eight_threads(bundle):
    model = rt.load(bundle)
    tasks = _tasks(model)
    serial = [_call(model, k, a) for k, a in tasks]
    order = np.random.default_rng(0).integers(0, len(tasks), CALLS)

    def run(i: int) -> bool:
        k, a = tasks[order[i]]
        return _call(model, k, a) == serial[order[i]]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        same = list(pool.map(run, range(CALLS), chunksize=50))
    assert len(same) == CALLS and all(same), f"{same.count(False)} of {CALLS} concurrent calls differed"


_CHILD = r"""
import json, sys
import numpy as np
import edgeae.runtime as rt
from edgeae.runtime.compress import compress
model = rt.load(sys.argv[1])
x = np.load(sys.argv[2])
codes = model.encode(x)
out = {"codes": codes.tobytes().hex(), "recon": model.decode(codes, raw=True).tobytes().hex(),
       "stream": compress(model, x, bits=6).hex()}
print(json.dumps(out))
"""


def test_one_bundle_four_processes(bundle, tmp_path):
    x = digits_uint8()[:300]
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(bundle), str(tmp_path / "x.npy")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    model = rt.load(bundle)
    codes = model.encode(x)
    want = {"codes": codes.tobytes().hex(), "recon": model.decode(codes, raw=True).tobytes().hex(),
            "stream": compress(model, x, bits=6).hex()}
    assert all(r == want for r in results)
