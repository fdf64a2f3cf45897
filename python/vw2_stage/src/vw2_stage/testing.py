"""Runs a stage command the way the engine does, for the tests of stage commands: a fresh process group, the spec
in VW2_STAGE_SPEC, the events on an inherited pipe at fd 3 (VW2_EVENTS_FD), stdout/stderr captured as free-form
log text. `run.events` fills while the command runs; `wait_for` blocks until a matching event arrives."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StageRun:
    proc: subprocess.Popen
    events: list[dict[str, Any]] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    _reader: threading.Thread | None = None
    _eof: bool = False
    _seen: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, timeout: float = 300) -> int:
        out, err = self.proc.communicate(timeout=timeout)
        self.stdout, self.stderr = out, err
        if self._reader is not None:
            self._reader.join(timeout=30)
        return self.proc.returncode

    def wait_for(self, predicate, timeout: float = 300) -> dict[str, Any]:
        """Blocks until an event matching `predicate` has arrived; returns it."""
        with self._seen:
            ok = self._seen.wait_for(lambda: any(predicate(e) for e in self.events) or self._eof, timeout=timeout)
            match = [e for e in self.events if predicate(e)]
        if not ok or not match:
            raise AssertionError(f"no matching event (exit {self.proc.poll()}); events: {self.events[-5:]}")
        return match[0]

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.proc.pid, sig)


def write_spec(path: Path, **fields: Any) -> Path:
    spec = {
        "protocol": 1, "step": "s", "stage": "s", "config": {}, "seed": 0, "invocationHash": "0" * 64,
        "inputs": {}, "outputs": {}, "resumeDir": str(path.parent / "resume"), "pauseAtStep": None, "gpus": [], "cpus": 1,
    }
    spec.update(fields)
    path.write_text(json.dumps(spec))
    return path


def start_stage(argv: list[str], spec: Path | None, env: dict[str, str] | None = None, events_fd: int | None = 3) -> StageRun:
    """Starts `argv` as a process-group leader with the events pipe at `events_fd` in the child (None: no pipe)."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "VW2_EVENTS_FD")}
    child_env["PYTHONUNBUFFERED"] = "1"
    if spec is not None:
        child_env["VW2_STAGE_SPEC"] = str(spec)
    r = w = None
    preexec = None
    if events_fd is not None:
        r, w = os.pipe()
        child_env["VW2_EVENTS_FD"] = str(events_fd)

        def preexec() -> None:  # the child's fd `events_fd` is the pipe's write end, whatever number it had here
            os.dup2(w, events_fd)
    child_env.update(env or {})
    proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=preexec, pass_fds=() if w is None else (w, events_fd))
    run = StageRun(proc)
    if w is not None:
        os.close(w)

        def read() -> None:
            with os.fdopen(r, "r", encoding="utf-8") as f:
                for line in f:
                    run.raw_lines.append(line)
                    with run._seen:
                        run.events.append(json.loads(line))
                        run._seen.notify_all()
            with run._seen:
                run._eof = True
                run._seen.notify_all()

        run._reader = threading.Thread(target=read, daemon=True)
        run._reader.start()
    return run
