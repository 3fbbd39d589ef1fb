"""A subset of benchmarks/gate_matrix.py: correct exports of a real (MNIST) and the built-in
digits model pass with every precision, raw I/O off and on, and no bound is exceeded.

The full matrix (data sets x kinds x seeds x epochs, emulated CPUs, faults) runs for hours
on 2 cores: ``python -m benchmarks.gate_matrix``; the faults are in test_gate_faults.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import MNIST

pytestmark = pytest.mark.slow


def test_matrix_subset_passes_every_correct_export(tmp_path, monkeypatch):
    from benchmarks import gate_matrix

    pairs = [("mnist", "mlp")] if MNIST.exists() else [("digits", "conv")]
    # raw I/O on: the bundle holds the model-unit graphs and the raw ones, every precision
    res = gate_matrix.run_matrix([], [], [0], [1], [True], [], False, tmp_path, pairs=pairs)
    assert res["exports"] == len(pairs)
    assert res["refused"] == 0, res["refusals"]
    assert res["margins"] and all(v <= 1 for v in res["margins"].values()), res["margins"]
    assert {"float", "fp16", "quantized", "semantics", "psnr"} <= set(res["margins"])
