"""The stage spec a process stage reads at start-up (process-stage protocol 1, see README.md).

The engine writes spec.json and names it in `VW2_STAGE_SPEC`; `load()` parses it into a `Spec` and adds what the
process learns from its own environment (torchrun's RANK / WORLD_SIZE / LOCAL_RANK).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PROTOCOL = 1
SPEC_ENV = "VW2_STAGE_SPEC"


class SpecError(ValueError):
    """spec.json is missing or does not match protocol 1; the message names the file and the bad field."""


@dataclass(frozen=True)
class Input:
    """A published upstream artifact: read-only directory, its kind and the producing invocation's hash."""

    dir: Path
    kind: str
    hash: str


@dataclass(frozen=True)
class Spec:
    protocol: int
    step: str
    stage: str
    config: Mapping[str, Any]
    seed: int
    invocation_hash: str
    inputs: Mapping[str, Input]
    outputs: Mapping[str, Path]
    resume_dir: Path
    pause_at_step: int | None
    gpus: tuple[str, ...]
    cpus: int
    path: Path
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0 (or no torchrun): the one process that reports events and writes outputs."""
        return self.rank == 0

    def output(self, name: str) -> Path:
        """The directory to fill for output `name` (created on first use)."""
        if name not in self.outputs:
            raise KeyError(f"{self.path}: no output {name!r}; the stage declares {sorted(self.outputs)}")
        d = self.outputs[name]
        d.mkdir(parents=True, exist_ok=True)
        return d

    def input(self, name: str) -> Input:
        if name not in self.inputs:
            raise KeyError(f"{self.path}: no input {name!r}; the stage declares {sorted(self.inputs)}")
        return self.inputs[name]


def process_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def _parse(path: Path, u: Any) -> Spec:
    def fail(key: str, expected: str) -> None:
        raise SpecError(f"{path}: {key} must be {expected}")

    if not isinstance(u, dict):
        fail("(root)", "a JSON object")
    if u.get("protocol") != PROTOCOL:
        fail("protocol", f"{PROTOCOL} (this vw2_stage speaks protocol {PROTOCOL}; got {u.get('protocol')!r})")
    for key in ("step", "stage", "invocationHash", "resumeDir"):
        if not isinstance(u.get(key), str) or u[key] == "":
            fail(key, "a non-empty string")
    if not isinstance(u.get("seed"), int) or isinstance(u.get("seed"), bool):
        fail("seed", "an integer")
    if not isinstance(u.get("config"), dict):
        fail("config", "a JSON object")
    cpus = u.get("cpus", 1)
    if not isinstance(cpus, int) or cpus < 0:
        fail("cpus", "a non-negative integer")
    gpus = u.get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(g, str) for g in gpus):
        fail("gpus", "an array of strings")
    pause = u.get("pauseAtStep")
    if pause is not None and (not isinstance(pause, int) or isinstance(pause, bool) or pause < 0):
        fail("pauseAtStep", "null or a non-negative integer")
    inputs: dict[str, Input] = {}
    if not isinstance(u.get("inputs", {}), dict):
        fail("inputs", "an object")
    for name, i in u.get("inputs", {}).items():
        if not isinstance(i, dict) or not all(isinstance(i.get(k), str) for k in ("dir", "kind", "hash")):
            fail(f"inputs.{name}", "{ dir, kind, hash } strings")
        inputs[name] = Input(Path(i["dir"]), i["kind"], i["hash"])
    outputs: dict[str, Path] = {}
    if not isinstance(u.get("outputs", {}), dict):
        fail("outputs", "an object")
    for name, d in u.get("outputs", {}).items():
        if not isinstance(d, str) or not os.path.isabs(d):
            fail(f"outputs.{name}", "an absolute directory path")
        outputs[name] = Path(d)
    rank, world, local = process_rank()
    return Spec(
        protocol=PROTOCOL, step=u["step"], stage=u["stage"], config=u["config"], seed=u["seed"], invocation_hash=u["invocationHash"],
        inputs=inputs, outputs=outputs, resume_dir=Path(u["resumeDir"]), pause_at_step=pause, gpus=tuple(gpus), cpus=cpus,
        path=path, rank=rank, world_size=world, local_rank=local, raw=u,
    )


def load(path: str | os.PathLike[str] | None = None) -> Spec:
    """Reads the spec named by `path` or `VW2_STAGE_SPEC`; raises SpecError naming the file and the field."""
    where = path if path is not None else os.environ.get(SPEC_ENV)
    if not where:
        raise SpecError(f"{SPEC_ENV} is not set: run this command as a vw2 process stage, or point {SPEC_ENV} at a spec.json")
    p = Path(where)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{p}: cannot read the stage spec: {e.strerror}") from e
    try:
        u = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{p}: invalid JSON: {e}") from e
    return _parse(p, u)
