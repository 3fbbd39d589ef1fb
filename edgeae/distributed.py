"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

    torchrun --nproc-per-node N -m edgeae train ...        (or: edgeae train --nproc-per-node N)
      -> N processes, each: init_process_group(gloo on CPU | nccl on CUDA)
         -> DistributedSampler shard of every epoch -> DDP averages gradients
         -> rank 0 writes the run folder; every rank takes rank 0's early-stopping decision

``--batch-size`` stays the *global* batch: each of the N ranks trains on ``batch_size / N``
samples per step, so N processes take the same steps over the same epochs as one process.
Random augmentation and denoising noise draw from per-rank seeds; the shuffling order is
shared (DistributedSampler's seed + epoch). Multi-node is the same command with torchrun's
rendezvous flags (docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from edgeae.errors import ConfigError

__all__ = ["DistContext", "setup", "shutdown", "launch", "free_port", "shard", "local_batch",
           "broadcast_object", "sum_all", "params_digest", "gather_objects"]


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (one per rank)."""

    rank: int  # global rank, 0..world-1
    world: int  # number of processes in the job
    local_rank: int  # rank on this machine (picks the GPU)
    backend: str  # gloo | nccl

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and prints."""
        return self.rank == 0


def setup(device: str = "auto") -> DistContext | None:
    """Join the job torchrun started (``WORLD_SIZE`` > 1 in the environment), else None.

    NCCL when the run uses CUDA (each rank on GPU ``LOCAL_RANK``), gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device in ("cuda", "auto") and torch.cuda.is_available()  # cuda without a GPU: refused later
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, backend)


def shutdown(ctx: DistContext | None, wait: bool = True) -> None:
    """Leave the process group: after a barrier when the run ended well, at once after an
    error (this rank exits; torchrun then stops the others)."""
    if ctx is not None and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def local_batch(batch_size: int, ctx: DistContext | None) -> int:
    """Per-rank batch: the global ``batch_size`` split over the ranks."""
    if ctx is None:
        return batch_size
    if batch_size % ctx.world:
        raise ConfigError(f"--batch-size {batch_size} is the global batch and must divide by the "
                          f"{ctx.world} processes; use e.g. {batch_size - batch_size % ctx.world or ctx.world}")
    return batch_size // ctx.world


def shard(n: int, epoch: int, seed: int, ctx: DistContext) -> torch.Tensor:
    """This rank's shuffled sample indices for ``epoch`` (DistributedSampler, same order on all ranks)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def wrap(net: torch.nn.Module, ctx: DistContext | None, dev: torch.device) -> torch.nn.Module:
    """The module that runs the training forward: DDP (gradients averaged) or ``net`` itself."""
    if ctx is None:
        return net
    from torch.nn.parallel import DistributedDataParallel

    if dev.type == "cuda":  # "cuda" is this rank's GPU: setup() made LOCAL_RANK the current device
        return DistributedDataParallel(net, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(net)


def broadcast_object(obj: Any, ctx: DistContext | None) -> Any:
    """Rank 0's ``obj`` on every rank (early-stopping decisions, resume state)."""
    if ctx is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_all(value: float, ctx: DistContext | None) -> float:
    """Sum of ``value`` over the ranks."""
    if ctx is None:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if ctx.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())


def gather_objects(obj: Any, ctx: DistContext | None) -> list[Any]:
    """``obj`` of every rank, in rank order."""
    if ctx is None:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def params_digest(net: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer: equal on all ranks when DDP kept them in step."""
    h = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (for a single-machine rendezvous)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(nproc: int, train_args: list[str]) -> int:
    """Run ``edgeae train <train_args>`` on ``nproc`` local processes through torchrun.

    Equivalent to ``torchrun --nproc-per-node N --master-addr 127.0.0.1 --master-port P
    -m edgeae train ...``; returns torchrun's exit code.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc-per-node {nproc}: give 1 or more processes")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "edgeae", "train", *train_args]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)
    _relay(proc.stderr)
    return proc.wait()


def _relay(stream) -> None:
    """Pass the job's stderr through; once a rank printed ``Error: ...``, print each such
    line once and drop torchrun's own failure report (a traceback of the launcher)."""
    seen: set[str] = set()
    for line in stream:
        if line.startswith("Error: "):
            if line not in seen:
                sys.stderr.write(line)
            seen.add(line)
        elif not seen:
            sys.stderr.write(line)
    sys.stderr.flush()
