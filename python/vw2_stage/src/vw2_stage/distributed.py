"""torch.distributed set-up from torchrun's environment: NCCL when this rank has a CUDA device, gloo on CPU."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

from .spec import process_rank


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    backend: str | None
    device: Any  # torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None


def init_distributed(backend: str | None = None, timeout_s: float = 600.0) -> Distributed:
    """Joins the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT); a no-op single process
    outside torchrun. `backend` overrides the choice (e.g. "gloo" on a GPU box for a CPU test)."""
    import torch
    import torch.distributed as dist

    rank, world, local = process_rank()
    cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return Distributed(rank=0, world_size=1, local_rank=0, backend=None, device=device)
    chosen = backend or ("nccl" if cuda else "gloo")
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": chosen, "timeout": datetime.timedelta(seconds=timeout_s)}
        if chosen == "nccl":
            kwargs["device_id"] = device  # binds the communicator to this rank's GPU up front
        dist.init_process_group(**kwargs)
    return Distributed(rank=rank, world_size=world, local_rank=local, backend=chosen, device=device)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
