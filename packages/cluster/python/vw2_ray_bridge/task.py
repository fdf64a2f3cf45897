"""The Ray task: runs ONE stage invocation as a Node worker (packages/core/src/worker/main.ts <spec.json>).

Runs inside a Ray worker process on whichever node Ray picked. It
  - takes the GPU ids Ray granted (ray.get_gpu_ids()) and exports exactly those as CUDA_VISIBLE_DEVICES,
  - starts the Node worker as the leader of its own process group, with its stdin a pipe we hold open
    (if this Ray worker dies, the Node worker sees EOF and stops: the worker protocol's parent-death rule),
  - streams the worker's events (fd passed as `eventsFd`), stdout and stderr back to the bridge over a
    ZeroMQ PUSH socket while it runs: blocking sends at the high-water mark push back on the worker,
  - on cancellation (ray.cancel raises KeyboardInterrupt here) kills the whole group: SIGTERM, then
    SIGKILL after the grace period,
  - raises WorkerLost when the Node worker died of a signal nobody here sent (OOM killer, a node going
    down, kill -9): Ray retries the task (retry_exceptions) up to max_retries times.
This module is pickled by value (ray.cloudpickle.register_pickle_by_value), so Ray workers need only ray
and pyzmq installed, not this package.
"""
from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import time
import uuid
from typing import Any

from . import transport

STDERR_TAIL_LINES = 40
POLL_S = 0.2  # how long a blocking wait may last before KeyboardInterrupt (ray.cancel) gets a chance to run


class WorkerLost(Exception):
    """The Node worker died of a signal this task did not send: Ray retries the invocation."""


class _EventSender:
    """PUSH socket to the bridge's events endpoint; every message names the invocation and the attempt."""

    def __init__(self, endpoint: str, token: str | None, key: str, attempt: str, hwm: int) -> None:
        import zmq

        self._zmq = zmq
        self._socket = zmq.Context.instance().socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 10_000)
        self._socket.connect(endpoint)
        self._base: dict[str, Any] = {"v": 1, "id": key, "attempt": attempt}
        if token is not None:
            self._base["token"] = token

    def send(self, kind: str, fields: dict[str, Any] | None = None, payload: bytes | None = None) -> None:
        frames = [json.dumps({**self._base, "type": kind, **(fields or {})}, separators=(",", ":")).encode()]
        if payload is not None:
            frames.append(payload)
        # wait for room in short slices (back-pressure, but still interruptible by ray.cancel)
        while not self._socket.poll(int(POLL_S * 1000), self._zmq.POLLOUT):
            pass
        self._socket.send_multipart(frames)

    def log(self, message: str) -> None:
        event = {"vw2": 1, "type": "log", "message": message, "timestamp": int(time.time() * 1000)}
        self.send("event", payload=json.dumps(event).encode())

    def close(self) -> None:
        self._socket.close()


def _empty_dir(path: str) -> None:
    """A retried attempt must not see the files a lost attempt left half-written."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def _kill_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    if child.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_invocation(key: str, spec: dict[str, Any], launch: dict[str, Any]) -> dict[str, Any]:
    """Runs the invocation; returns {"status": "done" | "failed", ...}. See the module docstring."""
    import ray

    attempt = uuid.uuid4().hex[:12]
    sender = _EventSender(launch["eventsEndpoint"], launch.get("token"), key, attempt, int(launch.get("hwm", 1000)))
    gpus = [str(g) for g in ray.get_gpu_ids()]
    child: subprocess.Popen[bytes] | None = None
    events_read = -1
    signalled_by_us = False
    workspace: transport.Workspace | None = None
    finished = False
    try:
        node = ray.util.get_node_ip_address()
        sender.send("attempt", {"gpus": gpus, "node": node, "pid": os.getpid()})
        if launch.get("transport") == transport.NAME:  # no shared filesystem: node-local paths (transport.py)
            workspace = transport.Workspace.open(spec, launch, attempt, sender.log)
            spec = workspace.spec
        _empty_dir(spec["outputRoot"])
        _empty_dir(spec["scratchDir"])
        events_read, events_write = os.pipe()
        spec_file = os.path.join(spec["scratchDir"], f".ray-spec-{attempt}.json")
        with open(spec_file, "w", encoding="utf-8") as out:
            json.dump({**spec, "gpus": gpus, "eventsFd": events_write}, out)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(gpus), "OMP_NUM_THREADS": str(max(1, int(spec.get("cpus", 1))))}
        child = subprocess.Popen(
            [launch["node"], launch["entry"], spec_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(events_write,),
            start_new_session=True,  # its own process group: cancellation kills the whole group
            env=env,
            cwd=launch.get("cwd") or None,
        )
        os.close(events_write)

        uploads: list[str] = []
        stderr_tail: list[str] = []
        outcome: dict[str, Any] | None = None
        selector = selectors.DefaultSelector()
        assert child.stdout is not None and child.stderr is not None
        streams = {events_read: "events", child.stdout.fileno(): "stdout", child.stderr.fileno(): "stderr"}
        pending = {fd: b"" for fd in streams}
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)

        def handle(fd: int, line: bytes) -> None:
            nonlocal outcome
            text = line.decode("utf-8", errors="replace")
            if streams[fd] == "events" and text.startswith("{"):
                try:
                    event = json.loads(text)
                except json.JSONDecodeError:
                    event = None
                if isinstance(event, dict) and event.get("vw2") == 1 and isinstance(event.get("type"), str):
                    kind = event["type"]
                    if kind == "started":
                        return
                    if kind == "done":
                        outcome = {"status": "done"}
                        return
                    if kind == "failed":
                        outcome = {"status": "failed", "message": str(event.get("message", "stage failed"))}
                        return
                    if kind == "upload" and isinstance(event.get("path"), str):
                        uploads.append(event["path"])
                    sender.send("event", payload=line)
                    return
            if streams[fd] == "stderr":
                stderr_tail.append(text)
                del stderr_tail[:-STDERR_TAIL_LINES]
            if text.strip() != "":
                sender.log(text)

        while selector.get_map():
            for selected, _ in selector.select(timeout=POLL_S):
                fd = selected.fd
                chunk = os.read(fd, 65536)
                if chunk == b"":
                    selector.unregister(fd)
                    if pending[fd]:
                        handle(fd, pending[fd])
                    continue
                lines = (pending[fd] + chunk).split(b"\n")
                pending[fd] = lines.pop()
                for line in lines:
                    handle(fd, line)
        selector.close()
        while child.poll() is None:
            try:
                child.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
        code = child.returncode
        tail = "\n".join(stderr_tail)
        if code < 0 or (code == 143 and outcome is None):
            raise WorkerLost(f"node worker pid {child.pid} on {node} died (exit {code}{', signal ' + signal.Signals(-code).name if code < 0 else ''}); stderr: {stderr_tail[-1] if stderr_tail else ''}")
        if outcome is None:
            why = "the worker could not use its spec" if code == 2 else f"node worker exited with status {code} without reporting"
            outcome = {"status": "failed", "message": f"{why}: {stderr_tail[-1] if stderr_tail else '(no stderr)'}"}
        if outcome["status"] == "failed":
            outcome["stderrTail"] = tail
        result = {**outcome, "gpus": gpus, "uploads": uploads, "attempt": attempt, "node": node}
        if workspace is not None and result["status"] == "done":
            result["outputs"] = workspace.pack_outputs()  # the task's return value: Ray's object store carries it
        finished = result["status"] == "done"
        sender.send("end", {"status": result["status"]})
        return result
    except BaseException:
        # ray.cancel (KeyboardInterrupt), shutdown, or our own error: the Node worker's group goes with us
        if child is not None and child.poll() is None:
            signalled_by_us = True
            _kill_group(child, float(launch.get("killGraceS", 3.0)))
        raise
    finally:
        if child is not None and child.poll() is None and not signalled_by_us:
            _kill_group(child, float(launch.get("killGraceS", 3.0)))
        if events_read >= 0:
            try:
                os.close(events_read)
            except OSError:
                pass
        if workspace is not None:
            workspace.close(finished)
        sender.close()
