"""Under torchrun: every rank reports (only rank 0's events may arrive) and all-reduces rank + 1 over the group
that init_distributed joined."""
import torch
import torch.distributed as dist

import vw2_stage as stage

spec = stage.load()
world = stage.init_distributed()
total = torch.tensor([float(world.rank + 1)])
dist.all_reduce(total)
stage.log(f"rank {world.rank} of {world.world_size} backend {world.backend}")
stage.metrics({"ddp/sum": total.item(), "ddp/rank": world.rank}, step=0)
if world.is_main:
    (spec.output("out") / "rank0.txt").write_text(str(world.rank))
dist.barrier()
dist.destroy_process_group()
