"""The Python reader of `vw2-episodes/1` against the tfjs side: same PRNG, same clips, same batches, same pixels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ts
from vw2_torch.data import Clips, Dataset, DatasetError, SeededRandom, batch_indices


@pytest.mark.parametrize(("seed", "label", "n"), [(0, "epoch:0", 10), (7, "epoch:1", 13), (-5, "epoch:3", 9), (123456789, "mixture:pick", 31)])
def test_seeded_random_is_the_tfjs_one_bit_for_bit(seed: int, label: str, n: int) -> None:
    assert SeededRandom.derive(seed, label).permutation(n).tolist() == json.loads(ts("rng", str(seed), label, str(n)))


def test_batches_are_the_tfjs_warmup_stage_batches(dataset: Path, warmup_config) -> None:
    config = warmup_config(optim={"batchSize": 4})
    m = config["model"]
    clips = Clips(Dataset(dataset), m["frames"], 1 + m["temporalCompression"], config["split"])
    seed, n = 3, 8  # 14 clips → 3 batches an epoch: 8 batches cross two epoch boundaries
    expected = json.loads(ts("batches", str(dataset), json.dumps({"optim": {"batchSize": 4}}), str(seed), str(n)))
    assert clips.count == 14
    for position, want in enumerate(expected):
        idx = batch_indices(clips.count, 4, seed, position)
        assert [[clips.refs[i].episode, clips.refs[i].start] for i in idx] == want["refs"]
        pixels = np.stack([clips.read(int(i)) for i in idx])
        assert pixels.shape == (4, 9, 32, 32, 3) and pixels.dtype == np.float32
        assert float(pixels.astype(np.float64).sum()) == pytest.approx(want["sum"], rel=1e-12)


def test_a_directory_without_a_manifest_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"dataset.json: cannot read .* is .* a video-dataset artifact"):
        Dataset(tmp_path)


def test_frames_of_the_wrong_shape_are_refused_by_file(dataset: Path, tmp_path: Path) -> None:
    manifest = json.loads((dataset / "dataset.json").read_text())
    manifest["height"] = 16
    (tmp_path / "episodes" / "sq-train-0").mkdir(parents=True)
    (tmp_path / "episodes" / "sq-train-0" / "frames.npy").write_bytes((dataset / "episodes" / "sq-train-0" / "frames.npy").read_bytes())
    manifest["splits"] = {"train": ["sq-train-0"]}
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    d = Dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"frames.npy: expected uint8 \[T, 16, 32, 3\], found uint8 \[14, 32, 32, 3\]"):
        Clips(d, 9, 3, "train").read(0)
