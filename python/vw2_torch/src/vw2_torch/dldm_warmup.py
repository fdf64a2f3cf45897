"""Process stage `warmup` in PyTorch: the twin of packages/dldm/src/stages/WarmupStage.ts (docs/paper.md "Warm-up").

    python -m vw2_torch.dldm_warmup                          # one process
    torchrun --nproc-per-node=k -m vw2_torch.dldm_warmup     # DDP: gloo on CPU, NCCL on GPUs

Reads the stage spec (vw2_stage; config = the resolved WarmupConfigSchema of the tfjs stage, input `dataset` = a
`video-dataset` artifact), trains encoder → queries → latent norm → FSQ → conv decoder on the reconstruction loss
with AdamW and the stage's schedule, and reports the tfjs stage's metric names (`warmup/loss`, `warmup/reconstruction`,
`warmup/grad_norm`, `warmup/lr`, `warmup/step_ms`). Batches are the tfjs stage's for the seed (vw2_torch.data).

Data parallel: the global batch `optim.batchSize` is split across ranks DistributedSampler-style (rank r takes
positions r, r + k, …), DDP all-reduces the gradients, the latent norm uses the global batch's statistics and the
decoder's input noise is drawn for the global batch and sliced: k processes compute what one process computes
with the whole batch, up to float summation order.

Mid-stage checkpoints every `checkpointEvery` steps go to the spec's resume_dir (vw2_stage.checkpoint); a rerun
resumes from the newest valid one. `pauseAtStep`: train to that step, checkpoint, exit 0 without outputs.

With a second input `robot` (a robot `video-dataset`, config `craftWeight`/`robotWeight`: WarmupStage.ts
warmupRobotMixStage) the batches are the tfjs robot-mixed warm-up's weighted mixture of Craft and robot clips.

Output `checkpoint` (format `vw2-dldm-torch/2`, README.md): a tfjs `dldm-checkpoint` (model.safetensors under the tfjs
Dldm's names and layouts, config.json, train_state.json: vw2_torch.tfjs_checkpoint), so the tfjs stages downstream
load it as the tfjs warm-up's, plus model.pt (state_dict), optimizer.pt and manifest.json (format, files with sha256).
"""
from __future__ import annotations

import hashlib
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

import vw2_stage as stage
from vw2_stage.checkpoint import Checkpoints
from vw2_stage.distributed import init_distributed, shutdown

from .data import Clips, Dataset, MixtureBatches, batch_indices
from .dldm import Dldm, adamw
from .tfjs_checkpoint import write_dldm_checkpoint

CHECKPOINT_FORMAT = "vw2-dldm-torch/2"


@dataclass(frozen=True)
class WarmupConfig:
    """The fields of WarmupStage.ts's WarmupConfigSchema this command reads (the engine sends them all, resolved)."""

    model: Mapping[str, Any]
    steps: int
    optim: Mapping[str, Any]
    split: str
    clip_stride: int
    latent_norm_freeze: float
    checkpoint_every: int
    #: mixture weights of the robot-mixed warm-up (read only with a `robot` input)
    craft_weight: float = 3.0
    robot_weight: float = 1.0

    @staticmethod
    def parse(config: Mapping[str, Any]) -> "WarmupConfig":
        def need(path: str) -> Any:
            value: Any = config
            for key in path.split("."):
                if not isinstance(value, Mapping) or key not in value:
                    raise ValueError(f"warmup config: missing {path} (the engine sends the resolved WarmupConfigSchema)")
                value = value[key]
            return value

        if need("lpipsWeight") > 0:
            raise ValueError(f"warmup.lpipsWeight = {need('lpipsWeight')}: the PyTorch twin has no LPIPS term; set it to 0")
        if need("colourAugment") > 0:
            raise ValueError(f"warmup.colourAugment = {need('colourAugment')}: not implemented in the PyTorch twin; set it to 0")
        for key in ("lr", "warmupSteps", "schedule", "weightDecay", "beta1", "beta2", "eps", "clipNorm", "batchSize"):
            need(f"optim.{key}")
        return WarmupConfig(
            model=need("model"), steps=int(need("steps")), optim=need("optim"), split=need("split"),
            clip_stride=int(need("clipStride")), latent_norm_freeze=float(need("latentNormFreeze")),
            checkpoint_every=int(need("checkpointEvery")),
            craft_weight=float(config.get("craftWeight", 3.0)), robot_weight=float(config.get("robotWeight", 1.0)),
        )


def schedule(optim: Mapping[str, Any], total_steps: int) -> Callable[[int], float]:
    """train/optim.ts makeSchedule: linear warm-up, then constant or cosine to 10 % (@vw2/nn schedule.ts)."""
    peak, warm = float(optim["lr"]), int(optim["warmupSteps"])

    def lr(step: int) -> float:
        if warm > 0 and step < warm:
            return peak * (step + 1) / warm
        if optim["schedule"] != "cosine":
            return peak
        low = 0.1 * peak
        progress = min(1.0, max(0.0, (step - warm) / max(1, total_steps - warm)))
        return low + 0.5 * (peak - low) * (1 + math.cos(math.pi * progress))

    return lr


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checkpoint_output(out: Path, model: Dldm, optimizer: torch.optim.Optimizer, train_state: Mapping[str, Any]) -> None:
    """The tfjs dldm-checkpoint (what the later stages load) and the PyTorch state dicts beside it."""
    names = write_dldm_checkpoint(out, model, train_state)
    torch.save(model.state_dict(), out / "model.pt")
    torch.save(optimizer.state_dict(), out / "optimizer.pt")
    files = {name: _sha256(out / name) for name in [*names, "model.pt", "optimizer.pt"]}
    _write_json(out / "manifest.json", {"format": CHECKPOINT_FORMAT, "torch": torch.__version__, "files": files})


def open_clips(dataset: Dataset, m: Mapping[str, Any], cfg: WarmupConfig) -> Clips:
    clips = Clips(dataset, m["frames"], cfg.clip_stride or 1 + m["temporalCompression"], cfg.split)
    if clips.count == 0:
        raise ValueError(f"{dataset.dir}: no clip of {m['frames']} frames in split {cfg.split!r} (episodes too short or split empty)")
    return clips


def run(spec: stage.Spec) -> int:
    cfg = WarmupConfig.parse(spec.config)
    world = init_distributed()
    torch.set_num_threads(max(1, spec.cpus // world.world_size))
    m, o = cfg.model, cfg.optim
    global_batch = int(o["batchSize"])
    dataset = Dataset(spec.input("dataset").dir)
    if (dataset.height, dataset.width) != (m["height"], m["width"]):
        raise ValueError(f"{dataset.dir}: frames are {dataset.height}×{dataset.width} but the dLDM expects {m['height']}×{m['width']} (model.height/width)")
    clips = open_clips(dataset, m, cfg)
    robot = None
    if "robot" in spec.inputs:
        robot_dataset = Dataset(spec.input("robot").dir)
        if (robot_dataset.height, robot_dataset.width) != (m["height"], m["width"]):
            raise ValueError(f"{robot_dataset.dir}: frames are {robot_dataset.height}×{robot_dataset.width} but the dLDM expects {m['height']}×{m['width']} (model.height/width)")
        robot = open_clips(robot_dataset, m, cfg)
    # endlessBatches: a batch is never larger than the clip set; the mixture draws batchSize clips with repetition
    batch = global_batch if robot is not None else min(global_batch, clips.count)
    if batch % world.world_size != 0:
        raise ValueError(f"optim.batchSize {batch} must be divisible by the {world.world_size} processes (each takes an equal shard)")
    shard = np.arange(batch)[world.rank :: world.world_size]  # DistributedSampler-style positions in the global batch
    stage.log(f"warmup: {clips.count} clips of {m['frames']} frames"
              + (f" + {robot.count} robot clips, weights {cfg.craft_weight:g}:{cfg.robot_weight:g}" if robot is not None else "")
              + f"; {cfg.steps} steps at batch {batch}"
              + (f" ({len(shard)} per rank × {world.world_size} ranks, {world.backend})" if world.enabled else ""))

    torch.manual_seed(spec.seed)
    model = Dldm(dict(m)).to(world.device)
    optimizer = adamw(model, o)
    net: torch.nn.Module = model
    if world.enabled:
        from torch.nn.parallel import DistributedDataParallel

        # buffers (latent-norm running statistics) are computed from the global batch on every rank: no broadcast
        net = DistributedDataParallel(model, device_ids=[world.device] if world.device.type == "cuda" else None, forward_sync_buffers=False)
    params = [p for p in model.parameters() if p.requires_grad]
    lr_at = schedule(o, cfg.steps)
    clip_norm = float(o["clipNorm"])

    checkpoints = Checkpoints(spec.resume_dir)
    restored = checkpoints.load_latest(model=model, optimizer=optimizer, map_location=world.device)
    start = restored.step if restored is not None else 0
    if restored is not None:
        stage.log(f"warmup: resumed from checkpoint at step {start} ({restored.path.name})")
        if world.is_main:
            print(f"warmup: resumed from checkpoint at step {start}", flush=True)
    stop = cfg.steps if spec.pause_at_step is None else min(cfg.steps, spec.pause_at_step)
    sources = [clips] if robot is None else [clips, robot]
    mixture = None
    if robot is not None:
        mixture = MixtureBatches([clips.count, robot.count], [cfg.craft_weight, cfg.robot_weight], batch, spec.seed)
        mixture.skip(start)  # the mixture is stateful: replay the choices of the steps already trained

    tc, j = m["temporalCompression"], (m["frames"] - 1) // m["temporalCompression"]
    noise_std = float(m["decoder"]["inputNoise"])
    freeze_step = math.floor(cfg.latent_norm_freeze * cfg.steps) if cfg.latent_norm_freeze < 1 else None
    first: dict[str, float] | None = restored.extra.get("first") if restored is not None else None
    last: dict[str, float] = {}
    timed_ms, timed = 0.0, 0
    model.train()
    for step in range(start, stop):
        if freeze_step is not None and step == freeze_step:
            model.latent_norm.use_running_statistics()
            stage.log(f"warmup: latentNorm on running statistics in training from step {step}")
        t0 = time.perf_counter()
        picks = mixture.next() if mixture is not None else [(0, int(i)) for i in batch_indices(clips.count, batch, spec.seed, step)]
        frames = np.stack([sources[c].read(i) for c, i in (picks[p] for p in shard)])  # [b, T, H, W, 3]
        video = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).to(world.device)  # [b, T, 3, H, W]
        # the decoder's input noise for the whole global batch from a per-step seed, then this rank's rows
        g = torch.Generator().manual_seed(spec.seed * 1_000_003 + step)
        noise = (torch.randn(batch, j, 3, m["height"], m["width"], generator=g) * noise_std)[torch.from_numpy(shard)].to(world.device)
        lr = lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss = net(video, noise)
        loss.backward()  # DDP: gradients averaged over ranks = the gradient of the global-batch mean
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else float("inf"))
        optimizer.step()
        reported = loss.detach().clone()
        if world.enabled:
            torch.distributed.all_reduce(reported)
            reported /= world.world_size
        ms = (time.perf_counter() - t0) * 1e3
        values = {"loss": reported.item(), "reconstruction": reported.item(), "grad_norm": grad_norm.item(), "lr": lr}
        if step > start:
            timed, timed_ms = timed + 1, timed_ms + ms
        if first is None:
            first = values
        last = values
        stage.metrics({f"warmup/{k}": v for k, v in {**values, "step_ms": ms}.items()}, step)
        stage.progress(step + 1, cfg.steps, " ".join(f"{k} {v:.4f}" for k, v in values.items()))
        done = step + 1
        at_pause = spec.pause_at_step is not None and done == stop and done < cfg.steps
        if at_pause or (cfg.checkpoint_every > 0 and done % cfg.checkpoint_every == 0 and done < cfg.steps):
            checkpoints.save(done, model=model, optimizer=optimizer, data_position=done, extra={"first": first}, total=cfg.steps)

    if stop < cfg.steps:
        if start >= stop and restored is not None and world.is_main:
            stage.checkpointed(start, cfg.steps)  # already at (or past) the rung: report the checkpoint again
        stage.log(f"warmup: paused at step {stop} of {cfg.steps}")
        shutdown()
        return 0
    model.latent_norm.use_running_statistics()  # every later stage: the same statistics in training and at inference
    mean_ms = timed_ms / timed if timed else 0.0
    if world.is_main:
        out = spec.output("checkpoint")
        backend = f"pytorch {torch.__version__} {world.device.type}" + (f" ddp×{world.world_size} {world.backend}" if world.enabled else "")
        write_checkpoint_output(out, model, optimizer, {
            "step": cfg.steps, "stage": "warmup", "backend": backend, "worldSize": world.world_size, "globalBatch": batch,
            "meanStepMs": mean_ms, "firstLoss": (first or {}).get("loss"), "lastLoss": last.get("loss"),
        })
        stage.upload(out / "train_state.json")
        stage.upload(out / "manifest.json")
        stage.log(f"warmup: loss {(first or {}).get('loss', float('nan')):.4f} → {last.get('loss', float('nan')):.4f}, {mean_ms:.0f} ms/step on {backend}")
    shutdown()
    return 0


def main() -> int:
    # SIGTERM (the engine interrupting the process group): unwind through `finally`s and exit 143 like the node worker
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    spec = stage.load()
    try:
        return run(spec)
    except (ValueError, KeyError) as e:
        stage.log(f"warmup failed: {e}")
        print(f"warmup failed: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
