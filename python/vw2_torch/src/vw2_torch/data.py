"""Reader of the shared dataset layout `vw2-episodes/1` that the data stages write (packages/data/src/dataset/
Manifest.ts, Dataset.ts, Clips.ts, Batches.ts, Random.ts), with the same clip enumeration, the same seeded
shuffle (mulberry32 + FNV-derived streams, bit for bit) and so the same batches as the tfjs stages for a seed:

    dataset.json               {"format": "vw2-episodes/1", "height", "width", "fps", "splits": {split: [id]}, "episodes"?: {id: {task, length, …}}}
    episodes/<id>/frames.npy   uint8 [T, H, W, 3]
    episodes/<id>/meta.json    per-frame labels (read only when dataset.json has no `episodes` index)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

DATASET_FORMAT = "vw2-episodes/1"
_M32 = 0xFFFFFFFF


class DatasetError(ValueError):
    """The directory is not a readable vw2-episodes/1 dataset; the message names the file."""


def _imul(a: int, b: int) -> int:
    return (a * b) & _M32


class SeededRandom:
    """packages/data/src/dataset/Random.ts (mulberry32), in unsigned 32-bit arithmetic: the same sequence for a seed."""

    def __init__(self, seed: int) -> None:
        self.state = (int(seed) ^ 0x9E3779B9) & _M32
        self.next_uint32()

    @staticmethod
    def derive(seed: int, label: str) -> "SeededRandom":
        h = (int(seed) ^ 0x811C9DC5) & _M32
        for unit in np.frombuffer(label.encode("utf-16-le"), dtype="<u2"):  # charCodeAt: UTF-16 code units
            h = _imul(h ^ int(unit), 0x01000193)
        return SeededRandom(h)

    def next_uint32(self) -> int:
        self.state = (self.state + 0x6D2B79F5) & _M32
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + _imul(t ^ (t >> 7), t | 61)) & _M32)) & _M32
        return (t ^ (t >> 14)) & _M32

    def next(self) -> float:
        return self.next_uint32() / 4294967296

    def int(self, n: int) -> int:
        return int(self.next() * n)

    def permutation(self, n: int) -> np.ndarray:
        out = np.arange(n, dtype=np.int64)
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


@dataclass(frozen=True)
class Episode:
    id: str
    split: str
    length: int


@dataclass(frozen=True)
class ClipRef:
    episode: str
    start: int
    length: int


class Dataset:
    """dataset.json + frames.npy files, frames read through a memory map (only the clips asked for are read)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        manifest_path = self.dir / "dataset.json"
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DatasetError(f"{manifest_path}: cannot read ({e.strerror}); is {self.dir} a video-dataset artifact?") from e
        except json.JSONDecodeError as e:
            raise DatasetError(f"{manifest_path}: invalid JSON: {e}") from e
        if m.get("format") != DATASET_FORMAT:
            raise DatasetError(f"{manifest_path}: format must be {DATASET_FORMAT!r}, got {m.get('format')!r}")
        self.manifest = m
        self.height, self.width, self.fps = int(m["height"]), int(m["width"]), float(m["fps"])
        index = m.get("episodes") or {}
        self._maps: dict[str, np.ndarray] = {}
        self.episodes: list[Episode] = []
        for split, ids in m["splits"].items():
            for i in ids:
                length = index[i]["length"] if i in index else self._frames(i).shape[0]
                self.episodes.append(Episode(i, split, int(length)))

    def _frames(self, episode: str) -> np.ndarray:
        if episode not in self._maps:
            path = self.dir / "episodes" / episode / "frames.npy"
            try:
                a = np.load(path, mmap_mode="r")
            except OSError as e:
                raise DatasetError(f"{path}: cannot read ({e})") from e
            if a.dtype != np.uint8 or a.ndim != 4 or a.shape[1:] != (self.height, self.width, 3):
                raise DatasetError(f"{path}: expected uint8 [T, {self.height}, {self.width}, 3], found {a.dtype} {list(a.shape)}")
            self._maps[episode] = a
        return self._maps[episode]

    def read_clip(self, ref: ClipRef) -> np.ndarray:
        """[T, H, W, 3] float32 in [0, 1] (Clips.ts DatasetClips.decode: byte / 255)."""
        frames = self._frames(ref.episode)[ref.start : ref.start + ref.length]
        if frames.shape[0] != ref.length:
            raise DatasetError(f"{self.dir}/episodes/{ref.episode}/frames.npy: clip {ref.start}+{ref.length} past the episode's end")
        return np.asarray(frames, dtype=np.float32) / 255


class Clips:
    """Clips.ts ClipIndex with frameStep 1: `length` frames starting at multiples of `stride`, episode by episode."""

    def __init__(self, dataset: Dataset, length: int, stride: int, split: str) -> None:
        self.dataset, self.length, self.stride = dataset, length, stride
        self.refs: list[ClipRef] = []
        for e in dataset.episodes:
            if e.split != split or e.length < length:
                continue
            for k in range((e.length - length) // stride + 1):
                self.refs.append(ClipRef(e.id, k * stride, length))

    @property
    def count(self) -> int:
        return len(self.refs)

    def read(self, index: int) -> np.ndarray:
        return self.dataset.read_clip(self.refs[index])


def batch_indices(count: int, batch_size: int, seed: int, position: int) -> np.ndarray:
    """Clip indices of batch number `position` of the endless stream train/data.ts endlessBatches draws
    (Batches.ts shuffledBatches: a fresh permutation per epoch, `SeededRandom.derive(seed, "epoch:<e>")`, last
    partial batch dropped). A pure function of the position, so a resumed run continues the same stream."""
    b = min(batch_size, count)
    per_epoch = count // b
    epoch, k = divmod(position, per_epoch)
    order = SeededRandom.derive(seed, f"epoch:{epoch}").permutation(count)
    return order[k * b : (k + 1) * b]


def batches(clips: Clips, batch_size: int, seed: int, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(position, [B, T, H, W, 3] float32) from `start` on, endlessly."""
    position = start
    while True:
        idx = batch_indices(clips.count, batch_size, seed, position)
        yield position, np.stack([clips.read(int(i)) for i in idx])
        position += 1


class MixtureBatches:
    """Batches.ts mixtureBatches (train/data.ts mixedBatches: the robot-mixed warm-up, Craft + CALVIN): each batch
    position draws its component from `SeededRandom.derive(seed, "mixture:pick")` by the cumulative weights, then
    that component's next clip from its own seeded pass order (`mixture:<i>:pass:<p>`). Stateful like the tfjs
    generator: `skip(n)` replays n batches' choices without reading a frame (a resumed run's fast-forward)."""

    def __init__(self, counts: list[int], weights: list[float], batch_size: int, seed: int) -> None:
        if not counts:
            raise ValueError("mixture: no components")
        for i, (n, w) in enumerate(zip(counts, weights)):
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"mixture component {i}: weight must be ≥ 0, got {w}")
            if w > 0 and n == 0:
                raise ValueError(f"mixture component {i} has no clips (episodes shorter than the clip span?)")
        total = 0.0
        for w in weights:  # left to right, as the tfjs reduce: the same doubles
            total += w
        if not total > 0:
            raise ValueError("mixture: weights sum to 0")
        self.cumulative = []
        for i in range(len(weights)):
            acc = 0.0
            for w in weights[: i + 1]:
                acc += w
            self.cumulative.append(acc / total)
        self.counts, self.weights, self.batch_size, self.seed = counts, weights, batch_size, seed
        self.pick = SeededRandom.derive(seed, "mixture:pick")
        self.cursors = [[0, 0, SeededRandom.derive(seed, f"mixture:{i}:pass:0").permutation(n)] for i, n in enumerate(counts)]

    def _next_index(self, i: int) -> int:
        cursor = self.cursors[i]
        if cursor[1] >= len(cursor[2]):
            cursor[0] += 1
            cursor[1] = 0
            cursor[2] = SeededRandom.derive(self.seed, f"mixture:{i}:pass:{cursor[0]}").permutation(self.counts[i])
        index = int(cursor[2][cursor[1]])
        cursor[1] += 1
        return index

    def next(self) -> list[tuple[int, int]]:
        """The next batch as (component, clip index) pairs."""
        out = []
        for _ in range(self.batch_size):
            u = self.pick.next()
            i = next((k for k, c in enumerate(self.cumulative) if u < c), len(self.cumulative) - 1)
            while self.weights[i] == 0:
                i = (i + len(self.weights) - 1) % len(self.weights)
            out.append((i, self._next_index(i)))
        return out

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.next()
