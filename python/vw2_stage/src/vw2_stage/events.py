"""Run events of a process stage: one JSON object per line on the inherited fd `VW2_EVENTS_FD` (default 3), the
worker protocol's stage events (packages/core/src/worker/protocol.ts) plus `checkpoint`. Only rank 0 reports:
under torchrun every other rank's calls are no-ops, so a training loop calls these unconditionally.

The engine always sets VW2_EVENTS_FD (3 unless it says otherwise). Without the variable (a command run by hand)
events are printed to stderr as readable lines.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import Mapping

from .spec import process_rank

EVENTS_FD_ENV = "VW2_EVENTS_FD"


class _Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.resolved = False

    def target(self) -> int | None:
        """The events fd, or None for the stderr fallback; resolved once per process (fork-safe enough: a
        torchrun child resolves its own)."""
        if not self.resolved:
            named = os.environ.get(EVENTS_FD_ENV)
            if not named:
                # never guess: an fd 3 opened by something else (a test runner, a library) must not get event lines
                self.fd = None
            elif "TORCHELASTIC_RUN_ID" in os.environ:
                self.fd = _launcher_fd(int(named))
            else:
                fd = int(named)
                try:
                    os.fstat(fd)
                except OSError:
                    raise RuntimeError(f"{EVENTS_FD_ENV}={named}: fd {fd} is not open in this process (the engine must pass it to the command)") from None
                self.fd = fd
            self.resolved = True
        return self.fd


def _launcher_fd(fd: int) -> int | None:
    """torchrun starts its workers with every fd but 0–2 closed, so fd `fd` of a worker is not the engine's (it may
    be any file the worker opened). The launcher (the worker's parent) still holds it: on Linux the worker opens
    the same pipe through /proc/<launcher>/fd/<fd> (O_APPEND: a regular file is appended to, not overwritten)."""
    path = f"/proc/{os.getppid()}/fd/{fd}"
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError as e:
        print(f"vw2_stage: cannot reach the events fd {fd} of the torchrun launcher ({path}: {e.strerror}); events go to stderr",
              file=sys.stderr, flush=True)
        return None


_sink = _Sink()


def _now_ms() -> int:
    return int(time.time() * 1000)


def emit(event: Mapping[str, object]) -> None:
    """Writes one event line (rank 0 only). One write call per line, under a lock: lines never interleave."""
    if process_rank()[0] != 0:
        return
    line = json.dumps({"vw2": 1, **event}, separators=(",", ":"), allow_nan=False) + "\n"
    with _sink.lock:
        fd = _sink.target()
        if fd is None:
            print(f"[vw2 {event['type']}] {json.dumps(dict(event))}", file=sys.stderr, flush=True)
            return
        data = line.encode("utf-8")
        while data:
            n = os.write(fd, data)
            data = data[n:]


def progress(done: int, total: int, message: str | None = None) -> None:
    event: dict[str, object] = {"type": "progress", "done": done, "total": total}
    if message is not None:
        event["message"] = message
    emit(event)


def metrics(values: Mapping[str, float], step: int, timestamp: int | None = None) -> None:
    """Scalars at `step`; non-finite values are dropped (JSON has no NaN, and the tracker refuses them)."""
    clean = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}
    emit({"type": "metrics", "step": int(step), "timestamp": timestamp if timestamp is not None else _now_ms(), "values": clean})


def log(message: str) -> None:
    emit({"type": "log", "message": message, "timestamp": _now_ms()})


def upload_event(relative: str) -> None:
    emit({"type": "upload", "path": relative})


def checkpointed(step: int, total: int) -> None:
    """A durable mid-stage checkpoint at `step` of `total` (send only once it is complete on disk)."""
    emit({"type": "checkpoint", "step": int(step), "total": int(total)})
