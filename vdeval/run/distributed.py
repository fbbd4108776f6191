"""Running one suite across processes started by torchrun (torch.distributed).

Ranks split the clips deterministically (clip i goes to rank i mod world size), each generates
and featurizes its share, and rank 0 gathers per-clip rows and the features set-level metrics
need, scores, and alone writes results. Without torchrun this is a one-rank no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from vdeval.errors import VdevalError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list) -> list:
        return items[self.rank::self.world_size]


def from_environment() -> Ranks:
    """Ranks from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK); one rank without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as e:
        raise VdevalError(f"bad torchrun environment: {e}") from None
    return Ranks(rank, world, local)


def init(ranks: Ranks, device: str) -> None:
    """Join the process group: gloo on CPU, nccl on CUDA."""
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(device_for(ranks, device))  # nccl and bare .cuda() calls use the rank's GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def device_for(ranks: Ranks, device: str) -> str:
    """On CUDA, each rank takes the GPU of its local rank unless one was named."""
    if device == "cuda" and ranks.distributed:
        return f"cuda:{ranks.local_rank}"
    return device


def gather(ranks: Ranks, obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not ranks.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out


def agree(ranks: Ranks, what: str, value: str) -> None:
    """Refuse to go on unless every rank holds the same `value` (e.g. the resolved suite's hash)."""
    values = gather(ranks, value)
    if len(set(values)) > 1:
        raise VdevalError(
            f"ranks disagree on the {what}: " + ", ".join(f"rank {i}: {v[:12]}" for i, v in enumerate(values)),
            "start every rank with the same suite file and options",
        )


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def finish(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
