"""`python -m vw2_torch.dldm_warmup` as a process stage: events and outputs, k = 2 torchrun (gloo, CPU) equal to one
process with the same global batch, kill -9 then resume, pause at a step."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from vw2_stage.checkpoint import Checkpoints
from vw2_stage.testing import StageRun, start_stage, write_spec
from vw2_torch.dldm import Dldm

STEPS, EVERY, BATCH, SEED = 24, 4, 4, 0
# k = 2 vs one process: gradients and latent-norm moments are summed in another order across ranks. Per-step losses
# agree to ~1e-8 over the whole run. Weights agree to DDP_ATOL except INVARIANT ones: biases right before a
# normalisation (a conv before GroupNorm, the code projection before the latent norm) have an exact gradient of 0,
# so what Adam steps them by is normalised float noise (up to lr per step in either run, measured max |Δ| 6e-3);
# they do not change the function. A wrong shard, noise or norm statistic moves the loss by ≫ 1e-6 within a step.
DDP_ATOL = 2e-4
LOSS_ATOL = 1e-6
INVARIANT = re.compile(r"^(decoder\.(inp|mid|down\.\d+|up\.\d+)\.conv2?\.bias|qformer\.to_code\.bias|qformer\.norm_out\.bias)$")
METRICS = {"warmup/loss", "warmup/reconstruction", "warmup/grad_norm", "warmup/lr", "warmup/step_ms"}


def spec_for(tmp: Path, name: str, dataset: Path, config: dict[str, Any], pause: int | None = None) -> Path:
    return write_spec(
        tmp / f"{name}.json", step="warmup", stage="warmup", config=config, seed=SEED, pauseAtStep=pause,
        inputs={"dataset": {"dir": str(dataset), "kind": "video-dataset", "hash": "d" * 64}},
        outputs={"checkpoint": str(tmp / name / "checkpoint")}, resumeDir=str(tmp / name / "resume"),
    )


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint" / "model.pt")


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def config(warmup_config) -> dict[str, Any]:
    return warmup_config(steps=STEPS, checkpointEvery=EVERY, optim={"batchSize": BATCH})


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, dataset: Path, config: dict[str, Any]) -> tuple[Path, StageRun]:
    import sys

    tmp = tmp_path_factory.mktemp("single")
    run = start_stage([sys.executable, "-m", "vw2_torch.dldm_warmup"], spec_for(tmp, "run", dataset, config))
    assert run.wait() == 0, run.stderr[-3000:]
    return tmp / "run", run


def test_reports_the_tfjs_stage_metrics_progress_checkpoints_and_uploads(single: tuple[Path, StageRun]) -> None:
    out, run = single
    metrics = [e for e in run.events if e["type"] == "metrics"]
    assert [e["step"] for e in metrics] == list(range(STEPS))
    assert all(set(e["values"]) == METRICS for e in metrics)
    assert metrics[0]["values"]["warmup/lr"] == pytest.approx(2e-3 / 5)  # linear warm-up over optim.warmupSteps = 5
    assert [(e["done"], e["total"]) for e in run.events if e["type"] == "progress"] == [(s + 1, STEPS) for s in range(STEPS)]
    assert [(e["step"], e["total"]) for e in run.events if e["type"] == "checkpoint"] == [(s, STEPS) for s in range(EVERY, STEPS, EVERY)]
    assert [e["path"] for e in run.events if e["type"] == "upload"] == ["checkpoint/train_state.json", "checkpoint/manifest.json"]
    logs = [e["message"] for e in run.events if e["type"] == "log"]
    assert logs[0] == f"warmup: 14 clips of 9 frames; {STEPS} steps at batch {BATCH}"
    losses = [e["values"]["warmup/loss"] for e in metrics]
    assert sum(losses[-4:]) < sum(losses[:4])  # it learns


def test_writes_a_checkpoint_output_with_its_manifest(single: tuple[Path, StageRun], config: dict[str, Any]) -> None:
    out = single[0] / "checkpoint"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "vw2-dldm-torch/2"
    for name, sha in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
    assert json.loads((out / "config.json").read_text()) == config["model"]
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == STEPS and state["worldSize"] == 1 and state["globalBatch"] == BATCH
    model = Dldm(config["model"])
    model.load_state_dict(weights(single[0]))
    assert model.latent_norm.running_in_train.item() == 1.0  # later stages normalise with the running statistics
    assert sum(p.numel() for p in model.parameters()) == 194084  # the tfjs mini dLDM's trainable count (bench/results)


def test_torchrun_k2_gloo_equals_one_process_with_the_same_global_batch(
    tmp_path: Path, dataset: Path, config: dict[str, Any], single: tuple[Path, StageRun], python: str
) -> None:
    torchrun = str(Path(python).parent / "torchrun")
    run = start_stage([torchrun, "--standalone", "--nproc-per-node=2", "-m", "vw2_torch.dldm_warmup"],
                      spec_for(tmp_path, "ddp", dataset, {**config}), env={"OMP_NUM_THREADS": "1"})
    assert run.wait() == 0, run.stderr[-3000:]
    assert any("2 per rank × 2 ranks, gloo" in e["message"] for e in run.events if e["type"] == "log")
    assert [e["step"] for e in run.events if e["type"] == "metrics"] == list(range(STEPS))  # rank 0 only: once each
    ddp, one = weights(tmp_path / "ddp"), weights(single[0])
    torch.manual_seed(SEED)
    initial = Dldm(config["model"]).state_dict()
    variant = [k for k in one if not INVARIANT.match(k)]
    assert len(variant) > 150 and len(one) - len(variant) == 18
    diff = max_abs_diff({k: ddp[k] for k in variant}, {k: one[k] for k in variant})
    trained = [k for k in variant if not k.startswith("latent_norm.")]  # parameters, not the norm's buffers
    moved = max_abs_diff({k: one[k] for k in trained}, {k: initial[k] for k in trained})
    single_losses = [e["values"]["warmup/loss"] for e in single[1].events if e["type"] == "metrics"]
    ddp_losses = [e["values"]["warmup/loss"] for e in run.events if e["type"] == "metrics"]
    loss_diff = max(abs(a - b) for a, b in zip(single_losses, ddp_losses))
    print(f"\nDDP k=2 vs one process, {STEPS} steps: max |Δloss| {loss_diff:.2e}; max |Δw| {diff:.2e} over {len(variant)} tensors "
          f"(weights moved up to {moved:.2e}); invariant biases {max_abs_diff(ddp, one):.2e}")
    assert moved > 100 * DDP_ATOL
    assert diff <= DDP_ATOL
    assert loss_diff <= LOSS_ATOL
    # the function too: both final models give the same train-mode loss on a fixed batch and noise
    video = torch.rand(BATCH, 9, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(BATCH, 4, 3, 32, 32, generator=torch.Generator().manual_seed(6)) * 0.02
    models = [Dldm(config["model"]) for _ in range(2)]
    for model, w in zip(models, (one, ddp)):
        model.load_state_dict(w)
        model.train()
        model.latent_norm.running_in_train.zero_()  # batch statistics: the path whose invariance the biases rely on
    with torch.no_grad():
        a, b = (m(video, noise).item() for m in models)
    print(f"fixed-batch loss: one process {a:.8f}, k=2 {b:.8f}")
    assert abs(a - b) <= LOSS_ATOL
    assert json.loads((tmp_path / "ddp" / "checkpoint" / "train_state.json").read_text())["worldSize"] == 2


def test_kill_9_mid_run_then_rerun_resumes_from_the_last_checkpoint_and_matches_the_uninterrupted_run(
    tmp_path: Path, dataset: Path, config: dict[str, Any], single: tuple[Path, StageRun], python: str
) -> None:
    spec = spec_for(tmp_path, "killed", dataset, config)
    first = start_stage([python, "-m", "vw2_torch.dldm_warmup"], spec)
    first.wait_for(lambda e: e["type"] == "checkpoint" and e["step"] == 2 * EVERY, timeout=300)
    first.kill_group()
    assert first.wait() == -9
    assert not (tmp_path / "killed" / "checkpoint" / "model.pt").exists()
    last = Checkpoints(tmp_path / "killed" / "resume").steps()[0]
    assert 2 * EVERY <= last < STEPS

    again = start_stage([python, "-m", "vw2_torch.dldm_warmup"], spec)
    assert again.wait() == 0, again.stderr[-3000:]
    print(f"\nkilled after the checkpoint at step {2 * EVERY}; rerun resumed at step {last}")
    assert f"warmup: resumed from checkpoint at step {last}" in again.stdout
    assert any(e["type"] == "log" and e["message"].startswith(f"warmup: resumed from checkpoint at step {last}") for e in again.events)
    assert [e["step"] for e in again.events if e["type"] == "metrics"] == list(range(last, STEPS))
    assert max_abs_diff(weights(tmp_path / "killed"), weights(single[0])) == 0.0  # one process, one thread: bit for bit


def test_pause_at_step_checkpoints_and_exits_without_outputs_then_continues(
    tmp_path: Path, dataset: Path, config: dict[str, Any], single: tuple[Path, StageRun], python: str
) -> None:
    paused = start_stage([python, "-m", "vw2_torch.dldm_warmup"], spec_for(tmp_path, "rung", dataset, config, pause=6))
    assert paused.wait() == 0, paused.stderr[-3000:]
    assert [(e["step"], e["total"]) for e in paused.events if e["type"] == "checkpoint"] == [(4, STEPS), (6, STEPS)]
    assert [e["step"] for e in paused.events if e["type"] == "metrics"] == list(range(6))
    assert not (tmp_path / "rung" / "checkpoint").exists()
    rest = start_stage([python, "-m", "vw2_torch.dldm_warmup"], spec_for(tmp_path, "rung", dataset, config))
    assert rest.wait() == 0, rest.stderr[-3000:]
    assert "warmup: resumed from checkpoint at step 6" in rest.stdout
    assert max_abs_diff(weights(tmp_path / "rung"), weights(single[0])) == 0.0


def test_a_config_the_twin_cannot_train_fails_before_compute_naming_the_key(
    tmp_path: Path, dataset: Path, warmup_config, python: str
) -> None:
    bad = warmup_config(steps=2, model={"decoder": {"kind": "tokens"}})
    run = start_stage([python, "-m", "vw2_torch.dldm_warmup"], spec_for(tmp_path, "bad", dataset, bad))
    assert run.wait() == 1
    assert "model.decoder.kind = 'tokens': the PyTorch dLDM twin implements 'conv-unet' only" in run.stderr
    assert not any(e["type"] == "metrics" for e in run.events)
