"""Training on two CPU processes (torchrun + DDP, gloo) against one process of the same epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeae.cli import _without_option
from edgeae.distributed import DistContext, local_batch
from edgeae.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_global_batch_splits_over_ranks():
    ctx = DistContext(rank=1, world=2, local_rank=1, backend="gloo")
    assert local_batch(64, ctx) == 32 and local_batch(64, None) == 64
    with pytest.raises(ConfigError, match="--batch-size 63 is the global batch and must divide by the 2"):
        local_batch(63, ctx)


@pytest.mark.parametrize("n", [1797, 1438])
def test_shards_split_one_shuffle_between_ranks(n):
    """Each rank trains on its own part of one epoch's shuffle: disjoint, together every sample
    (DistributedSampler pads an odd count with one repeat), the same on every call."""
    from edgeae.distributed import shard

    parts = [shard(n, 4, 3, DistContext(rank=r, world=2, local_rank=r, backend="gloo")) for r in (0, 1)]
    a, b = (set(p.tolist()) for p in parts)
    assert len(parts[0]) == len(parts[1]) == (n + 1) // 2
    assert a | b == set(range(n)) and len(a & b) == n % 2
    assert all(shard(n, 4, 3, DistContext(r, 2, r, "gloo")).tolist() == parts[r].tolist() for r in (0, 1))
    assert shard(n, 5, 3, DistContext(0, 2, 0, "gloo")).tolist() != parts[0].tolist()  # a new order each epoch


def test_launcher_drops_its_own_option():
    args = ["--epochs", "3", "--nproc-per-node", "2", "--out", "r", "--nproc-per-node=4"]
    assert _without_option(args, "--nproc-per-node") == ["--epochs", "3", "--out", "r"]


def test_cli_refuses_uneven_global_batch(tmp_path):
    from click.testing import CliRunner

    from edgeae.cli import cli

    res = CliRunner().invoke(cli, ["train", "--nproc-per-node", "2", "--batch-size", "63", "--out", str(tmp_path)])
    assert res.exit_code == 1 and res.output.strip() == (
        "Error: --batch-size 63 is the global batch and must divide by the 2 processes; use e.g. 62")


def test_relay_prints_each_rank_error_once(capsys):
    import io

    from edgeae.distributed import _relay

    lines = ["epoch 1\n", "Error: bad data\n", "Error: bad data\n", "Traceback (most recent call last):\n",
             "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"]
    _relay(io.StringIO("".join(lines)))
    assert capsys.readouterr().err == "epoch 1\nError: bad data\n"


def _train(out: Path, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "edgeae", "train", "--data", "digits", "--epochs", "6", "--seed", "3",
           "--out", str(out), *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow  # three Python processes import torch: ~60 s on 2 shared cores
def test_two_processes_match_one(tmp_path):
    one = _train(tmp_path / "one")
    two = _train(tmp_path / "two", "--nproc-per-node", "2")
    assert two["processes"] == 2 and two["backend"] == "gloo"
    assert len(two["rank_params_sha256"]) == 2 and len(set(two["rank_params_sha256"])) == 1
    assert abs(two["val_psnr"] - one["val_psnr"]) < 0.5, (one["val_psnr"], two["val_psnr"])
    # the reported training loss is per sample on both (the sum over ranks over all samples seen)
    for a, b in zip(one["history"], two["history"], strict=True):
        assert abs(b["train_loss"] / a["train_loss"] - 1) < 0.25, (a["train_loss"], b["train_loss"])
    assert two["epochs_run"] == one["epochs_run"] == 6
    # resume continues the job coherently on both ranks (state broadcast from rank 0)
    more = _train(tmp_path / "two", "--nproc-per-node", "2", "--resume", "--epochs", "8")
    assert more["epochs_run"] == 8 and len(set(more["rank_params_sha256"])) == 1
