"""Mid-stage checkpoints for torch training loops, in the stage's resume directory (it survives kill -9).

One checkpoint = `ckpt-<step>.pt` (torch.save of model, optimizer, RNG states of python/numpy/torch, data
position, extras) + `ckpt-<step>.json` (step, byte count, sha256 of the .pt). Both are written to a temporary
name, fsynced and renamed; the .json is renamed last, so a checkpoint exists only once both are complete.
`load_latest` takes the newest checkpoint whose checksum matches and warns about (and skips) corrupt ones.
The last `keep` checkpoints stay (default 2: a crash while writing one still leaves a complete older one).

Only rank 0 writes (it holds the same weights as every rank under DDP); every rank reads on resume.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import events
from .spec import process_rank

_NAME = re.compile(r"^ckpt-(\d+)\.json$")


@dataclass(frozen=True)
class Restored:
    step: int
    data_position: Any
    extra: Mapping[str, Any]
    path: Path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unwrap(model: Any) -> Any:
    """DDP / torch.compile wrappers hold the real module in `.module` / `._orig_mod`."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoints:
    def __init__(self, directory: str | os.PathLike[str], keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be ≥ 1, got {keep}")
        self.dir = Path(directory)
        self.keep = keep

    def steps(self) -> list[int]:
        """Steps of the committed checkpoints (a .json exists), newest first; validity is checked on load."""
        if not self.dir.is_dir():
            return []
        found = [int(m.group(1)) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found, reverse=True)

    def _paths(self, step: int) -> tuple[Path, Path]:
        return self.dir / f"ckpt-{step:09d}.pt", self.dir / f"ckpt-{step:09d}.json"

    def save(self, step: int, *, model: Any, optimizer: Any = None, data_position: Any = None,
             extra: Mapping[str, Any] | None = None, total: int | None = None) -> Path | None:
        """Writes checkpoint `step` (rank 0; other ranks return None), prunes old ones and, with `total`, emits
        the `checkpoint` event the engine shows as "resumable at step k/K"."""
        if process_rank()[0] != 0:
            return None
        import torch

        self.dir.mkdir(parents=True, exist_ok=True)
        pt, meta = self._paths(step)
        payload = {
            "step": step,
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "rng": rng_state(),
            "data_position": data_position,
            "extra": dict(extra or {}),
        }
        tmp = pt.with_name(pt.name + ".tmp")
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, pt)
        record = {"step": step, "file": pt.name, "bytes": pt.stat().st_size, "sha256": _sha256(pt)}
        tmp_meta = meta.with_name(meta.name + ".tmp")
        with open(tmp_meta, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_meta, meta)  # the commit point
        _fsync_dir(self.dir)
        for old in self.steps()[self.keep:]:
            for p in self._paths(old):
                p.unlink(missing_ok=True)
        if total is not None:
            events.checkpointed(step, total)
        return pt

    def _valid(self, step: int) -> Path | None:
        pt, meta = self._paths(step)
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            return self._reject(step, f"{meta.name} unreadable ({e})")
        if not pt.is_file():
            return self._reject(step, f"{pt.name} missing")
        if pt.stat().st_size != record.get("bytes") or _sha256(pt) != record.get("sha256"):
            return self._reject(step, f"{pt.name} does not match its checksum in {meta.name}")
        return pt

    def _reject(self, step: int, why: str) -> None:
        message = f"checkpoint step {step} in {self.dir} is corrupt: {why}; falling back to an older one"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        events.log(message)
        return None

    def load_latest(self, *, model: Any = None, optimizer: Any = None, map_location: Any = "cpu",
                    restore_rng: bool = True) -> Restored | None:
        """Loads the newest valid checkpoint into `model` / `optimizer` (and the RNGs); None when there is none."""
        import torch

        for step in self.steps():
            pt = self._valid(step)
            if pt is None:
                continue
            try:
                payload = torch.load(pt, map_location=map_location, weights_only=False)
            except Exception as e:  # a checksum-valid file that still fails to unpickle: treat it as corrupt
                self._reject(step, f"torch.load failed: {e}")
                continue
            if model is not None:
                _unwrap(model).load_state_dict(payload["model"])
            if optimizer is not None and payload["optimizer"] is not None:
                optimizer.load_state_dict(payload["optimizer"])
            if restore_rng:
                set_rng_state(payload["rng"])
            return Restored(step=payload["step"], data_position=payload["data_position"], extra=payload["extra"], path=pt)
        return None
