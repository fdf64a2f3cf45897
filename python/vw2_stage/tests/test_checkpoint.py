"""The torch checkpoint helper: atomic saves with checksums, keep-last-2, corrupt-file fallback, and an exact resume
of a training process killed with SIGKILL."""
from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vw2_stage.testing import start_stage, write_spec  # noqa: E402
from vw2_stage.checkpoint import Checkpoints  # noqa: E402

CHILDREN = Path(__file__).parent / "children"


def small_model() -> torch.nn.Module:
    return torch.nn.Linear(4, 3)


def test_keeps_the_last_two_and_restores_weights_optimizer_rng_and_position(tmp_path: Path) -> None:
    ckpts = Checkpoints(tmp_path / "resume")
    model = small_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    for step in (1, 2, 3):
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
        ckpts.save(step, model=model, optimizer=opt, data_position={"epoch": 0, "batch": step}, extra={"note": step})
    assert ckpts.steps() == [3, 2]
    assert sorted(p.name for p in (tmp_path / "resume").iterdir()) == [
        "ckpt-000000002.json", "ckpt-000000002.pt", "ckpt-000000003.json", "ckpt-000000003.pt"]
    expected = (torch.rand(3), np.random.rand(), random.random())  # what the RNGs give right after checkpoint 3
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = opt.state_dict()["state"][0]["exp_avg"].clone()

    fresh = small_model()
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    torch.rand(5), np.random.rand(3), random.random()  # move every RNG on
    restored = Checkpoints(tmp_path / "resume").load_latest(model=fresh, optimizer=fresh_opt)
    assert restored is not None and restored.step == 3
    assert restored.data_position == {"epoch": 0, "batch": 3} and restored.extra == {"note": 3}
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in weights.items())
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], moments)
    assert torch.equal(torch.rand(3), expected[0]) and np.random.rand() == expected[1] and random.random() == expected[2]


def test_a_corrupt_newest_checkpoint_falls_back_to_the_older_one_with_a_warning(tmp_path: Path) -> None:
    ckpts = Checkpoints(tmp_path)
    model = small_model()
    ckpts.save(10, model=model)
    saved = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ckpts.save(20, model=model)
    newest = tmp_path / "ckpt-000000020.pt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, wrong checksum
    newest.write_bytes(bytes(data))
    fresh = small_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = ckpts.load_latest(model=fresh)
    assert restored is not None and restored.step == 10
    assert any("checkpoint step 20" in str(w.message) and "checksum" in str(w.message) for w in caught)
    assert torch.equal(fresh.weight, saved)


def test_an_uncommitted_checkpoint_is_invisible(tmp_path: Path) -> None:
    """A crash between writing the .pt and its .json leaves a file that is never loaded."""
    ckpts = Checkpoints(tmp_path)
    ckpts.save(1, model=small_model())
    (tmp_path / "ckpt-000000002.pt").write_bytes(b"half written")
    (tmp_path / "ckpt-000000003.pt.tmp").write_bytes(b"also half written")
    assert ckpts.steps() == [1]
    assert ckpts.load_latest(model=small_model()).step == 1


def test_nothing_to_resume_from(tmp_path: Path) -> None:
    assert Checkpoints(tmp_path / "none").load_latest(model=small_model()) is None


def test_only_rank_0_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    assert Checkpoints(tmp_path).save(1, model=small_model()) is None
    assert list(tmp_path.iterdir()) == []


def test_kill_9_mid_run_then_rerun_resumes_and_ends_with_the_uninterrupted_weights(tmp_path: Path, python: str) -> None:
    config = {"steps": 40, "every": 10}
    straight = write_spec(tmp_path / "a.json", config=config, resumeDir=str(tmp_path / "a-resume"), outputs={"model": str(tmp_path / "a")})
    run = start_stage([python, str(CHILDREN / "trainer.py")], straight)
    assert run.wait() == 0, run.stderr

    spec = write_spec(tmp_path / "b.json", config={**config, "sleep": 0.05}, resumeDir=str(tmp_path / "b-resume"),
                      outputs={"model": str(tmp_path / "b")})
    first = start_stage([python, str(CHILDREN / "trainer.py")], spec)
    first.wait_for(lambda e: e["type"] == "checkpoint" and e["step"] == 20, timeout=120)
    first.kill_group()
    first.wait()
    assert first.proc.returncode == -9 and not (tmp_path / "b" / "model.pt").exists()
    resumed_at = Checkpoints(tmp_path / "b-resume").steps()[0]
    assert resumed_at >= 20

    again = start_stage([python, str(CHILDREN / "trainer.py")], write_spec(spec, config=config, resumeDir=str(tmp_path / "b-resume"),
                                                                          outputs={"model": str(tmp_path / "b")}))
    assert again.wait() == 0, again.stderr
    assert f"resumed from checkpoint at step {resumed_at} data position {resumed_at}" in again.stdout
    assert [e["step"] for e in again.events if e["type"] == "metrics"] == list(range(resumed_at, 40))
    a, b = torch.load(tmp_path / "a" / "model.pt"), torch.load(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same process, same thread count: bit for bit
