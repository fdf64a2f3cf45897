"""vw2_stage: the Python side of vw2's process-stage protocol (README.md).

    import vw2_stage as stage
    spec = stage.load()                      # config, inputs, outputs, resume_dir, pause_at_step, seed, rank
    stage.progress(k, n); stage.metrics({"train/loss": 0.3}, step=k); stage.log("...")
    stage.upload(spec.output("checkpoint") / "manifest.json")
    stage.checkpointed(k, n)                 # or Checkpoints(spec.resume_dir).save(k, model=..., total=n)
"""
from __future__ import annotations

import os
from pathlib import Path

from . import events
from .events import checkpointed, log, metrics, progress
from .spec import PROTOCOL, Input, Spec, SpecError, process_rank

__all__ = [
    "PROTOCOL", "Input", "Spec", "SpecError", "load", "progress", "metrics", "log", "upload", "checkpointed",
    "process_rank", "Checkpoints", "init_distributed",
]

_loaded: Spec | None = None


def load(path: str | os.PathLike[str] | None = None) -> Spec:
    """The stage spec (VW2_STAGE_SPEC, or `path`); remembered so `upload` can map absolute paths to outputs."""
    global _loaded
    from .spec import load as _load

    _loaded = _load(path)
    return _loaded


def upload(path: str | os.PathLike[str]) -> None:
    """Marks an output file for upload to the tracker. `path`: a file inside one of the outputs (absolute), or
    already the protocol's `<output>/<relative path>`."""
    p = Path(path)
    if p.is_absolute():
        if _loaded is None:
            raise RuntimeError("upload(absolute path) needs vw2_stage.load() first, to know the output directories")
        for name, d in _loaded.outputs.items():
            try:
                rel = p.resolve().relative_to(d.resolve())
            except ValueError:
                continue
            events.upload_event(f"{name}/{rel.as_posix()}")
            return
        raise ValueError(f"{p} is not inside an output directory ({', '.join(str(d) for d in _loaded.outputs.values())})")
    parts = p.as_posix().split("/")
    if len(parts) < 2 or ".." in parts or (_loaded is not None and parts[0] not in _loaded.outputs):
        raise ValueError(f"upload path must be <output>/<relative path> of a declared output, got {p.as_posix()!r}")
    events.upload_event(p.as_posix())


def __getattr__(name: str):
    # torch-dependent helpers load lazily, so `import vw2_stage` works without torch
    if name == "Checkpoints":
        from .checkpoint import Checkpoints

        return Checkpoints
    if name == "init_distributed":
        from .distributed import init_distributed

        return init_distributed
    raise AttributeError(name)
