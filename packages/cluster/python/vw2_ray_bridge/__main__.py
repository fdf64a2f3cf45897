"""python -m vw2_ray_bridge --ray-address HOST:PORT [options]: connects to Ray, binds the ROUTER and the
events PULL socket, prints one JSON line {"ready": true, "endpoint": ..., ...} on stdout, then serves."""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from .bridge import Bridge, Options, log


def gcs_unreachable(address: str) -> str | None:
    """ray.init retries a dead host:port for minutes; a plain TCP connect says so in seconds."""
    if address == "auto" or "://" in address or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return None
    except (OSError, ValueError) as error:
        return f"cannot reach the Ray head (GCS) at {address}: {error} (is a head running? `vw2 ray up`, or pass --ray-address)"


def main() -> int:
    p = argparse.ArgumentParser(prog="vw2_ray_bridge", description="vw2 <-> Ray bridge (ZeroMQ ROUTER)")
    p.add_argument("--ray-address", required=True, help="Ray cluster address (host:port or 'auto')")
    p.add_argument("--bind-host", default="127.0.0.1", help="interface to bind (default loopback; anything else requires a token)")
    p.add_argument("--advertise-host", default=None, help="host Ray tasks use to reach the events socket (default: --bind-host)")
    p.add_argument("--ports", default="6320-6339", help="port range for the ROUTER and events sockets")
    p.add_argument("--heartbeat-ms", type=int, default=1000)
    p.add_argument("--timeout-ms", type=int, default=5000)
    p.add_argument("--hwm", type=int, default=1000, help="high-water mark (messages) of every socket")
    p.add_argument("--kill-grace-ms", type=int, default=3000)
    p.add_argument("--forward-env", default="", help="comma-separated variable names (NAME or PREFIX*) passed to every task via runtime_env")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (a bridge started by a driver)")
    args = p.parse_args()

    token = os.environ.get("VW2_RAY_BRIDGE_TOKEN") or None
    loopback = args.bind_host in ("127.0.0.1", "localhost", "::1")
    if not loopback and token is None:
        log(f"--bind-host {args.bind_host} exposes the bridge beyond loopback: set VW2_RAY_BRIDGE_TOKEN (a shared secret)")
        return 2
    low, _, high = args.ports.partition("-")
    patterns = [n.strip() for n in args.forward_env.split(",") if n.strip()]
    env = {k: v for k, v in os.environ.items() if any(k.startswith(p[:-1]) if p.endswith("*") else k == p for p in patterns)}

    address = args.ray_address
    unreachable = gcs_unreachable(address)
    if unreachable is not None:
        log(unreachable)
        return 2

    import ray

    ray.init(address=address, runtime_env={"env_vars": env} if env else None, logging_level="WARNING", log_to_driver=False, namespace="vw2")
    options = Options(
        ray_address=address, bind_host=args.bind_host, advertise_host=args.advertise_host, port_min=int(low), port_max=int(high or low),
        token=token, heartbeat_s=args.heartbeat_ms / 1000, timeout_s=args.timeout_ms / 1000, hwm=args.hwm,
        kill_grace_s=args.kill_grace_ms / 1000, env=env, exit_on_stdin_eof=args.exit_on_stdin_eof,
    )
    try:
        asyncio.run(Bridge(options).serve())
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
