"""Artifact transport through Ray's object store, for Ray nodes that share no filesystem with the driver
(docs/ray.md, "Nodes without a shared filesystem"). Chosen with `transport: "object-store"` on submit.

  bridge (driver's machine)                          Ray task (any node)
  InputRefs.acquire: tar each input dir, ray.put  →  Workspace.open: per input, ray.get + untar into the node's
  (once per artifact while some invocation needs it)   own store <root>/store/<hash>/<output> unless already
                                                       there (one fetch per node), outputs/scratch in
                                                       <root>/work/<invocation>-<attempt>, resume in <root>/resume
  deliver: untar into the driver's staging outputRoot ← Workspace.pack_outputs: tar of outputRoot, the task's result
  (then the driver verifies and publishes as usual)

<root> is $VW2_RAY_NODE_STORE in the environment the node's `ray start` ran with (Ray workers inherit it),
else <tmp>/vw2-ray-node-<node id>. Tar keeps every byte and the relative layout; the driver's manifest check
(sha256 per file) is what guarantees the published outputs are the ones the stage wrote.

This module is pickled by value together with task.py (bridge.py registers both), so a node needs only
ray and pyzmq.
"""
from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import threading
import uuid
from typing import Any, Callable, Optional

NAME = "object-store"
NODE_STORE_ENV = "VW2_RAY_NODE_STORE"


def pack_dir(path: str) -> bytes:
    """The directory's files as an uncompressed tar (sorted, relative names): artifacts are mostly
    already-compressed tensors and images, and gzip would cost more CPU than it saves on the wire."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for parent, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
                full = os.path.join(parent, name)
                tar.add(full, arcname=os.path.relpath(full, path), recursive=False)
            for name in dirs:
                full = os.path.join(parent, name)
                if not os.path.islink(full) and not os.listdir(full):  # keep empty directories: an output may be an empty dir
                    tar.add(full, arcname=os.path.relpath(full, path), recursive=False)
    return buffer.getvalue()


def unpack_into(data: bytes, dest: str) -> None:
    """Extracts a pack_dir tar into dest (created); the "data" filter refuses absolute paths, `..`
    and links pointing outside dest."""
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(dest, filter="data")


def node_store_root() -> str:
    """This node's own store directory (see the module docstring)."""
    configured = os.environ.get(NODE_STORE_ENV)
    if configured:
        return configured
    import ray

    return os.path.join(tempfile.gettempdir(), f"vw2-ray-node-{ray.get_runtime_context().get_node_id()[:12]}")


def input_key(input: dict[str, Any]) -> str:
    """store/<hash>/<output>: an input artifact is immutable once published, so its hash and output name
    identify its bytes."""
    return f"{input['hash']}/{os.path.basename(os.path.normpath(input['dir']))}"


# ---- bridge side (the driver's machine: it reads and writes the driver's store paths) --------------------
class DriverSide:
    """The bridge's half: one ray.put per input artifact while at least one submitted invocation needs it
    (each invocation's refs are released when it ends, so the object store does not keep every artifact of
    a long run), and the delivery of outputs into the driver's staging dirs."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}
        self._users: dict[str, int] = {}
        self._by_invocation: dict[str, list[str]] = {}
        self._output_roots: dict[str, str] = {}
        self._lock = threading.Lock()  # acquire runs in a worker thread (asyncio.to_thread), release on the loop

    def acquire(self, invocation: str, spec: dict[str, Any]) -> dict[str, Any]:
        """{input name: {"key", "ref"}} for the task; packs and puts what no running invocation holds."""
        import ray

        refs: dict[str, Any] = {}
        keys: list[str] = []
        with self._lock:
            self._by_invocation[invocation] = keys
            self._output_roots[invocation] = spec["outputRoot"]
        try:
            for name, input in spec.get("inputs", {}).items():
                key = input_key(input)
                with self._lock:
                    held = self._refs.get(key)
                if held is None:
                    if not os.path.isdir(input["dir"]):
                        raise FileNotFoundError(f"input {name}: {input['dir']} is not a directory on the bridge's machine (the object-store transport needs the bridge beside the driver's store)")
                    held = ray.put(pack_dir(input["dir"]))  # outside the lock: packing may take long
                with self._lock:
                    held = self._refs.setdefault(key, held)  # a concurrent acquire may have put it first
                    self._users[key] = self._users.get(key, 0) + 1
                    keys.append(key)
                # nested (not a top-level argument), so Ray does not resolve it before the task starts: the
                # task fetches only what its node does not have yet
                refs[name] = {"key": key, "ref": [held]}
        except BaseException:
            self.release(invocation)
            raise
        return refs

    def deliver(self, invocation: str, outputs: bytes) -> None:
        """Writes the task's packed outputs into the driver's staging dir, replacing whatever was there;
        the driver then verifies and publishes them as with any executor."""
        with self._lock:
            output_root = self._output_roots[invocation]
        shutil.rmtree(output_root, ignore_errors=True)
        unpack_into(outputs, output_root)

    def release(self, invocation: str) -> None:
        with self._lock:
            self._output_roots.pop(invocation, None)
            for key in self._by_invocation.pop(invocation, []):
                self._users[key] -= 1
                if self._users[key] == 0:
                    del self._users[key]
                    del self._refs[key]


# ---- task side (any node) ---------------------------------------------------------------------------------
class Workspace:
    """Node-local inputs, outputs, scratch and resume dirs for one attempt of an invocation."""

    def __init__(self, spec: dict[str, Any], work: str) -> None:
        self.spec = spec
        self.work = work

    @staticmethod
    def open(spec: dict[str, Any], launch: dict[str, Any], attempt: str, log: Callable[[str], None]) -> "Workspace":
        """Fetches the inputs this node lacks (ray.get) and returns the spec rewritten to node-local paths."""
        import ray

        root = node_store_root()
        inputs: dict[str, Any] = {}
        fetched: list[str] = []
        cached: list[str] = []
        for name, input in spec["inputs"].items():
            given = launch["inputs"][name]
            local = os.path.join(root, "store", given["key"])
            if os.path.isdir(local):
                cached.append(name)
            else:
                # unpack beside the final place, then rename: concurrent tasks on one node never see half an input
                partial = os.path.join(root, "store", f".partial-{uuid.uuid4().hex}")
                unpack_into(ray.get(given["ref"][0]), partial)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                try:
                    os.rename(partial, local)
                except OSError:  # another task on this node got there first: same bytes
                    shutil.rmtree(partial, ignore_errors=True)
                fetched.append(name)
            inputs[name] = {**input, "dir": local}
        work = os.path.join(root, "work", f"{spec['invocationHash'][:16]}-{attempt}")
        local_spec = {
            **spec,
            "inputs": inputs,
            "outputRoot": os.path.join(work, "out"),
            "scratchDir": os.path.join(work, "scratch"),
            # mid-stage checkpoints stay on this node: a retry here resumes, a retry elsewhere starts over
            "resumeDir": os.path.join(root, "resume", spec["invocationHash"]),
        }
        log(f"ray transport {NAME}: node store {root}; inputs fetched: {', '.join(fetched) or 'none'}; already on this node: {', '.join(cached) or 'none'}")
        return Workspace(local_spec, work)

    def pack_outputs(self) -> bytes:
        return pack_dir(self.spec["outputRoot"])

    def close(self, finished: bool) -> None:
        """Removes this attempt's outputs and scratch; the resume dir goes once the stage finished (done and
        not paused at an early-stopping rung): the driver never sees this node's copy, so nobody else would."""
        shutil.rmtree(self.work, ignore_errors=True)
        if finished and self.spec.get("pauseAtStep") is None:
            shutil.rmtree(self.spec["resumeDir"], ignore_errors=True)


def prefer_node(resource: str) -> Any:
    """A soft node affinity to the alive node that offers the Ray resource `resource` (e.g. a custom
    `node2`, or `node:__internal_head__`): Ray waits for that node while it is busy, and schedules elsewhere
    when it is gone (a retry after the node died runs on another node). None when no alive node has it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    for node in ray.nodes():
        if node.get("Alive") and resource in node.get("Resources", {}):
            return NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=True)
    return None


def check_submit(header: dict[str, Any]) -> Optional[str]:
    """What is wrong with a submit's transport fields, if anything."""
    transport = header.get("transport", "shared-path")
    if transport not in ("shared-path", NAME):
        return f"submit.transport must be \"shared-path\" or \"{NAME}\", got {transport!r}"
    prefer = header.get("preferNode")
    if prefer is not None and (not isinstance(prefer, str) or prefer == ""):
        return "submit.preferNode must be a non-empty string (a Ray resource name) when given"
    return None
