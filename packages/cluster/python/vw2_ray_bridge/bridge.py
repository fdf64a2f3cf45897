"""The bridge server: a ZeroMQ ROUTER for vw2 drivers and a PULL socket for the Ray tasks' event streams,
driven by one asyncio loop. One Ray task per submitted invocation (task.run_invocation).

Liveness: the bridge pings every driver each `heartbeat_s`; a driver that sent nothing for `timeout_s` is
presumed dead: its invocations are cancelled and it is forgotten (logged on stderr). Drivers do the same
with the bridge's pings. Back-pressure: bounded socket queues (SNDHWM/RCVHWM) and ROUTER_MANDATORY, so a
full driver queue blocks the sender (and, through the PULL socket, the Ray tasks and their Node workers)
instead of dropping messages.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import ray
import zmq
import zmq.asyncio
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from . import protocol, task, transport
from .protocol import ProtocolError

ray.cloudpickle.register_pickle_by_value(task)
ray.cloudpickle.register_pickle_by_value(transport)


def log(message: str) -> None:
    sys.stderr.write(f"vw2-ray-bridge: {message}\n")
    sys.stderr.flush()


@dataclass
class Options:
    ray_address: str
    bind_host: str = "127.0.0.1"
    port_min: int = 6320
    port_max: int = 6339
    token: Optional[str] = None
    heartbeat_s: float = 1.0
    timeout_s: float = 5.0
    hwm: int = 1000
    kill_grace_s: float = 3.0
    env: dict[str, str] = field(default_factory=dict)
    exit_on_stdin_eof: bool = False
    # address Ray tasks use to reach the events socket (defaults to bind_host; set it when binding 0.0.0.0)
    advertise_host: Optional[str] = None


@dataclass
class Driver:
    identity: bytes
    last_seen: float
    name: str
    invocations: set[str] = field(default_factory=set)  # bridge keys


@dataclass
class Invocation:
    key: str
    driver: bytes
    id: str
    submitted: float
    ref: Any = None
    pg: Any = None
    attempts: list[str] = field(default_factory=list)
    ends: dict[str, asyncio.Event] = field(default_factory=dict)
    cancelling: bool = False
    watcher: Optional[asyncio.Task[None]] = None

    def end_event(self, attempt: str) -> asyncio.Event:
        return self.ends.setdefault(attempt, asyncio.Event())


class Bridge:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.ctx = zmq.asyncio.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.pull = self.ctx.socket(zmq.PULL)
        self.drivers: dict[bytes, Driver] = {}
        self.invocations: dict[str, Invocation] = {}
        self.stopping = asyncio.Event()
        # one RemoteFunction for the bridge's life: Ray exports (pickles) the function once, not per task
        self.remote_task = ray.remote(task.run_invocation)
        self.object_store = transport.DriverSide()  # artifacts for nodes without a shared filesystem
        self.endpoint = ""
        self.events_endpoint = ""

    # ---- sockets -------------------------------------------------------------------------------------
    def bind(self) -> None:
        for sock, hwm_opt in ((self.router, zmq.SNDHWM), (self.router, zmq.RCVHWM), (self.pull, zmq.RCVHWM)):
            sock.setsockopt(hwm_opt, self.o.hwm)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.LINGER, 0)
        self.pull.setsockopt(zmq.LINGER, 0)
        host = self.o.bind_host
        port = self.router.bind_to_random_port(f"tcp://{host}", min_port=self.o.port_min, max_port=self.o.port_max + 1, max_tries=200)
        events_port = self.pull.bind_to_random_port(f"tcp://{host}", min_port=self.o.port_min, max_port=self.o.port_max + 1, max_tries=200)
        advertise = self.o.advertise_host or host
        self.endpoint = f"tcp://{advertise}:{port}"
        self.events_endpoint = f"tcp://{advertise}:{events_port}"

    async def send(self, identity: bytes, header: dict[str, Any], payload: Optional[bytes] = None) -> None:
        """Sends to one driver; waits (back-pressure) while its queue is full, up to the heartbeat timeout."""
        try:
            await asyncio.wait_for(self.router.send_multipart([identity, *protocol.encode(header, payload)]), self.o.timeout_s)
        except (zmq.ZMQError, asyncio.TimeoutError) as error:
            driver = self.drivers.get(identity)
            if driver is not None:
                self.forget_driver(driver, f"cannot deliver to it ({error.__class__.__name__}: {error})")

    async def reply_error(self, identity: bytes, message: str, id: Optional[str] = None) -> None:
        log(f"rejected a message: {message}")
        await self.send(identity, {"type": "error", "message": message, **({"id": id} if id is not None else {})})

    # ---- driver messages ------------------------------------------------------------------------------
    async def driver_loop(self) -> None:
        while True:
            frames = await self.router.recv_multipart()
            identity, body = frames[0], frames[1:]
            try:
                header, _payload = protocol.decode(body, protocol.DRIVER_TYPES, self.o.token)
                await self.on_driver_message(identity, header)
            except ProtocolError as error:
                await self.reply_error(identity, str(error), header_id(body))
            except Exception as error:  # a bug or a Ray error must not take the bridge down
                log(f"error handling a message: {error!r}")
                await self.reply_error(identity, f"bridge error: {error}", header_id(body))

    async def on_driver_message(self, identity: bytes, header: dict[str, Any]) -> None:
        kind = header["type"]
        driver = self.drivers.get(identity)
        if kind == "hello":
            if driver is None:
                name = str(header.get("driver", identity.hex()))
                driver = self.drivers[identity] = Driver(identity, time.monotonic(), name)
                log(f"driver {name} connected")
            driver.last_seen = time.monotonic()
            await self.send(identity, {"type": "welcome", "bridge": {"pid": os.getpid(), "rayAddress": self.o.ray_address, "heartbeatMs": int(self.o.heartbeat_s * 1000), "timeoutMs": int(self.o.timeout_s * 1000)}, "nodes": cluster_nodes()})
            return
        if driver is None:
            raise ProtocolError(f"{kind} before hello: say hello first")
        driver.last_seen = time.monotonic()
        if kind == "ping":
            return
        if kind == "bye":
            self.forget_driver(driver, "said bye")
            return
        if kind == "submit":
            protocol.check_submit(header)
            if any(self.invocations[k].id == header["id"] for k in driver.invocations):
                raise ProtocolError(f"submit.id {header['id']!r} is already running for this driver")
            self.submit(driver, header)
            return
        if kind == "cancel":
            id = protocol.require(header, "id", str, "a string")
            inv = next((self.invocations[k] for k in driver.invocations if self.invocations[k].id == id), None)
            if inv is None:
                raise ProtocolError(f"cancel.id {id!r}: no such running invocation")
            self.cancel(inv)

    # ---- Ray tasks ------------------------------------------------------------------------------------
    def submit(self, driver: Driver, header: dict[str, Any]) -> None:
        started = time.perf_counter()
        res = header["resources"]
        cpus, gpus, memory = float(res["cpus"]), float(res["gpus"]), int(res["memoryMb"]) * 1024 * 1024
        inv = Invocation(key=uuid.uuid4().hex, driver=driver.identity, id=header["id"], submitted=time.monotonic())
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": int(header.get("maxRetries", 0)), "retry_exceptions": [task.WorkerLost]}
        if memory > 0:
            options["memory"] = memory
        if gpus > 1:
            # multi-GPU stages reserve all their devices on one node, atomically
            bundle = {k: v for k, v in {"CPU": cpus, "GPU": gpus, "memory": float(memory)}.items() if v > 0}
            inv.pg = placement_group([bundle], strategy="STRICT_PACK")
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(placement_group=inv.pg, placement_group_bundle_index=0)
        launch = {"node": header.get("node") or self.o.env.get("VW2_RAY_NODE"), "entry": header.get("entry"), "cwd": header.get("cwd"), "eventsEndpoint": self.events_endpoint, "token": self.o.token, "killGraceS": self.o.kill_grace_s, "hwm": self.o.hwm}
        # transport and node preference (transport.py; docs/ray.md, "Nodes without a shared filesystem")
        problem = transport.check_submit(header)
        if problem is not None:
            raise ProtocolError(problem)
        if header.get("preferNode") and "scheduling_strategy" not in options:
            strategy = transport.prefer_node(header["preferNode"])
            if strategy is not None:
                options["scheduling_strategy"] = strategy
        if header.get("transport") == transport.NAME:
            inv.ref = asyncio.ensure_future(self.put_inputs_then_run(inv, options, header["spec"], launch))
        else:
            inv.ref = self.remote_task.options(**options).remote(inv.key, header["spec"], launch)
        self.invocations[inv.key] = inv
        driver.invocations.add(inv.key)
        inv.watcher = asyncio.ensure_future(self.watch(inv))
        asyncio.ensure_future(self.send(driver.identity, {"type": "accepted", "id": inv.id, "submitMs": round((time.perf_counter() - started) * 1000, 3)}))

    async def put_inputs_then_run(self, inv: Invocation, options: dict[str, Any], spec: dict[str, Any], launch: dict[str, Any]) -> Any:
        """Object-store transport: packs and puts the inputs off the event loop (heartbeats keep flowing while a
        large input is packed), then submits the task; watch() awaits this in place of the task's ref."""
        inputs = await asyncio.to_thread(self.object_store.acquire, inv.key, spec)
        if inv.cancelling:
            raise RuntimeError("cancelled before the task was submitted")
        inv.ref = self.remote_task.options(**options).remote(inv.key, spec, {**launch, "transport": transport.NAME, "inputs": inputs})
        return await inv.ref

    async def watch(self, inv: Invocation) -> None:
        reply: dict[str, Any]
        try:
            result = await inv.ref
            # the task's events travel on another socket: deliver them all before the outcome
            try:
                await asyncio.wait_for(inv.end_event(result["attempt"]).wait(), 5.0)
            except asyncio.TimeoutError:
                log(f"{inv.id}: no end marker from attempt {result['attempt']}; reporting the outcome anyway")
            if result["status"] == "done" and "outputs" in result:  # object-store transport: into the driver's staging dir
                await asyncio.to_thread(self.object_store.deliver, inv.key, result["outputs"])
            if result["status"] == "done":
                reply = {"type": "done", "id": inv.id, "gpus": result["gpus"], "uploads": result["uploads"], "node": result.get("node")}
            else:
                reply = {"type": "failed", "id": inv.id, "message": result.get("message", "stage failed"), "stderrTail": result.get("stderrTail", "")}
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reply = {"type": "failed", "id": inv.id, "message": describe_ray_error(error, len(inv.attempts))}
        finally:
            self.object_store.release(inv.key)
            if inv.pg is not None:
                try:
                    remove_placement_group(inv.pg)
                except Exception:
                    pass
        if inv.cancelling:
            reply = {"type": "cancelled", "id": inv.id}
        self.invocations.pop(inv.key, None)
        driver = self.drivers.get(inv.driver)
        if driver is not None:
            driver.invocations.discard(inv.key)
            await self.send(driver.identity, reply)

    def cancel(self, inv: Invocation) -> None:
        if inv.cancelling:
            return
        inv.cancelling = True
        try:
            ray.cancel(inv.ref)  # KeyboardInterrupt inside the task: it kills the Node worker's group
        except Exception as error:
            log(f"{inv.id}: ray.cancel: {error!r}")
        asyncio.ensure_future(self.force_cancel_later(inv))

    async def force_cancel_later(self, inv: Invocation) -> None:
        await asyncio.sleep(self.o.kill_grace_s + 5.0)
        if inv.key in self.invocations:
            log(f"{inv.id}: task still running {self.o.kill_grace_s + 5.0:.0f}s after cancel; force-cancelling its Ray worker")
            try:
                ray.cancel(inv.ref, force=True)
            except Exception as error:
                log(f"{inv.id}: ray.cancel(force=True): {error!r}")

    # ---- task events ----------------------------------------------------------------------------------
    async def events_loop(self) -> None:
        while True:
            frames = await self.pull.recv_multipart()
            try:
                header, payload = protocol.decode(frames, protocol.TASK_TYPES, self.o.token)
                await self.on_task_message(header, payload)
            except ProtocolError as error:
                log(f"rejected a task message: {error}")

    async def on_task_message(self, header: dict[str, Any], payload: Optional[bytes]) -> None:
        inv = self.invocations.get(str(header.get("id")))
        attempt = str(header.get("attempt"))
        if inv is None:
            return  # an invocation that already ended (a late event of a cancelled task)
        kind = header["type"]
        if kind == "attempt":
            inv.attempts.append(attempt)
            fields = {"id": inv.id, "gpus": header.get("gpus", []), "node": header.get("node"), "attempt": len(inv.attempts)}
            if len(inv.attempts) == 1:
                await self.send(inv.driver, {"type": "started", **fields, "queuedMs": round((time.monotonic() - inv.submitted) * 1000, 1)})
            else:
                await self.send(inv.driver, {"type": "retry", **fields})
            return
        if not inv.attempts or attempt != inv.attempts[-1]:
            return  # from a superseded attempt
        if kind == "event" and payload is not None:
            await self.send(inv.driver, {"type": "event", "id": inv.id}, payload)
        elif kind == "end":
            inv.end_event(attempt).set()

    # ---- liveness -------------------------------------------------------------------------------------
    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.o.heartbeat_s)
            now = time.monotonic()
            for driver in list(self.drivers.values()):
                silent = now - driver.last_seen
                if silent > self.o.timeout_s:
                    self.forget_driver(driver, f"silent for {silent:.1f}s (heartbeat timeout {self.o.timeout_s:.1f}s)")
                else:
                    await self.send(driver.identity, {"type": "ping", "t": int(time.time() * 1000)})

    def forget_driver(self, driver: Driver, why: str) -> None:
        if self.drivers.pop(driver.identity, None) is None:
            return
        running = [self.invocations[k] for k in driver.invocations if k in self.invocations]
        log(f"driver {driver.name} {why}: cancelling its {len(running)} invocation(s)")
        for inv in running:
            self.cancel(inv)

    # ---- lifecycle ------------------------------------------------------------------------------------
    async def serve(self) -> None:
        self.bind()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        if self.o.exit_on_stdin_eof:
            def on_stdin() -> None:
                if os.read(0, 4096) == b"":
                    loop.remove_reader(0)
                    log("stdin closed (the driver that started this bridge is gone): stopping")
                    self.stopping.set()
            loop.add_reader(0, on_stdin)
        print(json.dumps({"ready": True, "protocol": protocol.VERSION, "endpoint": self.endpoint, "eventsEndpoint": self.events_endpoint, "pid": os.getpid()}), flush=True)
        workers = [asyncio.ensure_future(c) for c in (self.driver_loop(), self.events_loop(), self.heartbeat_loop())]
        stop = asyncio.ensure_future(self.stopping.wait())
        done, _ = await asyncio.wait([*workers, stop], return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            if finished is not stop and finished.exception() is not None:
                log(f"internal loop failed: {finished.exception()!r}")
        await self.shutdown(workers)

    async def shutdown(self, workers: list[asyncio.Future[Any]]) -> None:
        running = list(self.invocations.values())
        if running:
            log(f"stopping: cancelling {len(running)} running invocation(s)")
        for inv in running:
            self.cancel(inv)
        watchers = [inv.watcher for inv in running if inv.watcher is not None]
        if watchers:
            await asyncio.wait(watchers, timeout=self.o.kill_grace_s + 8.0)
        for w in workers:
            w.cancel()
        self.router.close(0)
        self.pull.close(0)
        self.ctx.term()


def header_id(body: list[bytes]) -> Optional[str]:
    try:
        value = json.loads(body[0]).get("id")
        return value if isinstance(value, str) else None
    except Exception:
        return None


def cluster_nodes() -> list[dict[str, Any]]:
    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        r = node.get("Resources", {})
        nodes.append({"node": node.get("NodeManagerAddress"), "cpus": r.get("CPU", 0), "gpus": r.get("GPU", 0), "memoryMb": int(r.get("memory", 0) // (1024 * 1024))})
    return nodes


def describe_ray_error(error: Exception, attempts: int) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, task.WorkerLost) or "WorkerLost" in str(type(cause)):
        return f"node worker lost on every attempt ({attempts}): {cause}"
    name = type(error).__name__
    text = str(error).strip().splitlines()
    return f"ray: {name}: {text[-1] if text else ''}"
