"""The PyTorch warm-up as a drop-in for the tfjs one: its `checkpoint` output is a tfjs dldm-checkpoint that @vw2/dldm's
own loadDldm reads (strict names and shapes), and the tfjs model rebuilt from it computes the PyTorch model's loss;
the robot-mixed warm-up draws the tfjs mixture's batches."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import ts
from vw2_stage.testing import start_stage, write_spec
from vw2_torch.data import Clips, Dataset, MixtureBatches
from vw2_torch.dldm import Dldm

SEED = 0
# float32 on both sides, different kernels and summation orders. The loss goes through FSQ's rounding, so it only
# sees the decoder's weights and the codes: a wrong encoder or Q-Former weight that flips no code leaves it unchanged
# (measured: transposing encoder.blocks.0.spatial.attn.wq left it equal to the last bit). The pre-quantisation
# latents see every weight before the codes. Measured here: |Δloss| 0 (loss 0.568), max |Δlatent| ≈ 1e-6 (latents
# ~1). Checked by hand on a copy of the output: transposing decoder.inp.conv2.weight moved the loss by 3e-4 (rel 5e-4),
# decoder.inp.film.weight by 2e-3; encoder.blocks.0.spatial.attn.wq left the loss equal but moved the latents by 8e-3,
# qformer.layers.0.cross_attn.wk by 6e-2 (and the loss by 2e-5).
LOSS_RTOL = 1e-5
LATENT_ATOL = 1e-4


def spec(tmp: Path, name: str, config: dict[str, Any], inputs: dict[str, Path]) -> Path:
    return write_spec(
        tmp / f"{name}.json", step="warmup", stage="warmup", config=config, seed=SEED,
        inputs={k: {"dir": str(v), "kind": "video-dataset", "hash": "d" * 64} for k, v in inputs.items()},
        outputs={"checkpoint": str(tmp / name / "checkpoint")}, resumeDir=str(tmp / name / "resume"),
    )


@pytest.fixture(scope="module")
def robot_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("robot") / "dataset"
    ts("dataset", str(d), "rb")
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset: Path, warmup_config) -> Path:
    tmp = tmp_path_factory.mktemp("tfjs-ckpt")
    config = warmup_config(steps=12, optim={"batchSize": 4})
    run = start_stage([sys.executable, "-m", "vw2_torch.dldm_warmup"], spec(tmp, "run", config, {"dataset": dataset}))
    assert run.wait() == 0, run.stderr[-3000:]
    return tmp / "run" / "checkpoint"


def test_the_tfjs_dldm_loaded_from_the_output_computes_the_pytorch_loss(trained: Path, tmp_path: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    model = Dldm(config)
    model.load_state_dict(torch.load(trained / "model.pt"))
    model.eval()  # inference: latent norm on its running statistics, no decoder input noise (tfjs forward(video, false))
    b = 3
    video = torch.rand(b, config["frames"], config["height"], config["width"], 3, generator=torch.Generator().manual_seed(7))  # [B, T, H, W, 3]
    with torch.no_grad():
        x = video.permute(0, 1, 4, 2, 3)  # → [B, T, 3, H, W]
        torch_loss = model.reconstruction_loss(x, model.reconstruct(x, model.codes_of(x))).item()
        torch_latents = model.latent_norm(model.qformer(model.encoder(x))).flatten()  # [B·J·N·L]
        untrained = Dldm(config).eval()
        untrained_loss = untrained.reconstruction_loss(x, untrained.reconstruct(x, untrained.codes_of(x))).item()
    video_file = tmp_path / "video.f32"
    video.contiguous().numpy().astype("<f4").tofile(video_file)
    tfjs = json.loads(ts("loss", str(trained), str(video_file), str(b)))
    tfjs_loss, tfjs_latents = tfjs["loss"], torch.tensor(tfjs["latents"])
    latent_diff = (tfjs_latents - torch_latents).abs().max().item()
    print(f"\nfixed batch of {b}: PyTorch loss {torch_loss:.8f}, tfjs (loadDldm of the output) {tfjs_loss:.8f}, |Δ| {abs(torch_loss - tfjs_loss):.2e}; "
          f"untrained {untrained_loss:.6f}; latents max |Δ| {latent_diff:.2e} (max |z| {torch_latents.abs().max().item():.2f})")
    assert tfjs_latents.shape == torch_latents.shape
    assert latent_diff <= LATENT_ATOL
    assert abs(untrained_loss - torch_loss) > 1e-3  # the trained weights matter on this batch (a wrong one would show)
    assert tfjs_loss == pytest.approx(torch_loss, rel=LOSS_RTOL)


def test_the_output_is_a_dldm_checkpoint_with_the_pytorch_extras(trained: Path) -> None:
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["format"] == "vw2-dldm-torch/2"
    assert set(manifest["files"]) == {"model.safetensors", "config.json", "train_state.json", "model.pt", "optimizer.pt"}
    state = json.loads((trained / "train_state.json").read_text())
    assert state["step"] == 12 and state["stage"] == "warmup" and state["backend"].startswith("pytorch ")


def test_mixture_batches_are_the_tfjs_robot_mixed_warmup_batches(dataset: Path, robot_dataset: Path, warmup_config) -> None:
    config = warmup_config(optim={"batchSize": 5})
    expected = json.loads(ts("mixture", str(dataset), str(robot_dataset), json.dumps({"optim": {"batchSize": 5}, "craftWeight": 2, "robotWeight": 1}), "3", "12"))
    m = config["model"]
    sources = [Clips(Dataset(d), m["frames"], 1 + m["temporalCompression"], "train") for d in (dataset, robot_dataset)]
    mixture = MixtureBatches([s.count for s in sources], [2.0, 1.0], 5, 3)
    got = [[[("craft", "robot")[c], sources[c].refs[i].episode, sources[c].refs[i].start] for c, i in mixture.next()] for _ in range(12)]
    assert got == expected
    assert {c for batch in got for c, *_ in batch} == {"craft", "robot"}


def test_the_robot_mixed_warmup_trains_on_both_sources(tmp_path: Path, dataset: Path, robot_dataset: Path, warmup_config) -> None:
    config = {**warmup_config(steps=3, optim={"batchSize": 4}), "craftWeight": 3, "robotWeight": 1}
    run = start_stage([sys.executable, "-m", "vw2_torch.dldm_warmup"], spec(tmp_path, "mix", config, {"dataset": dataset, "robot": robot_dataset}))
    assert run.wait() == 0, run.stderr[-3000:]
    logs = [e["message"] for e in run.events if e["type"] == "log"]
    assert logs[0] == "warmup: 14 clips of 9 frames + 14 robot clips, weights 3:1; 3 steps at batch 4"
    assert (tmp_path / "mix" / "checkpoint" / "model.safetensors").exists()
