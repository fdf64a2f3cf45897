"""Wire protocol v1 between a vw2 driver (DEALER) and the bridge (ROUTER), and between Ray tasks (PUSH)
and the bridge (PULL). Mirrors packages/cluster/src/protocol.ts; docs/ray.md has the full table.

Every message is a multipart ZeroMQ message:
  frame 0: JSON object header, always with "v" (protocol version) and "type"; "token" when the bridge
           requires one (any endpoint beyond loopback)
  frame 1: optional binary payload (for "event": one worker event line, verbatim JSON bytes: an invocation
           event of the run-event stream, {"vw2":1,"type":...}, packages/core/src/RunEvent.ts; every type but
           started/done/failed passes, checkpoint included)
Anything else (not JSON, not an object, wrong version, unknown type, bad fields, bad token, > 2 frames)
is answered with {"type": "error"} and otherwise ignored: the bridge never crashes on input.
"""
from __future__ import annotations

import hmac
import json
from typing import Any, Optional

VERSION = 1
MAX_FRAMES = 2

# driver -> bridge
DRIVER_TYPES = {"hello", "submit", "cancel", "ping", "bye"}
# task -> bridge (events socket)
TASK_TYPES = {"attempt", "event", "end"}


class ProtocolError(Exception):
    """A message the bridge rejects; the text goes back to the sender in an error reply."""


def encode(header: dict[str, Any], payload: Optional[bytes] = None) -> list[bytes]:
    frames = [json.dumps({"v": VERSION, **header}, separators=(",", ":")).encode()]
    if payload is not None:
        frames.append(payload)
    return frames


def decode(frames: list[bytes], allowed: set[str], token: Optional[str]) -> tuple[dict[str, Any], Optional[bytes]]:
    """Parses and checks one message; raises ProtocolError naming what is wrong."""
    if len(frames) == 0 or len(frames) > MAX_FRAMES:
        raise ProtocolError(f"expected 1-{MAX_FRAMES} frames (JSON header [+ payload]), got {len(frames)}")
    try:
        header = json.loads(frames[0].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"header frame is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header frame must be a JSON object")
    if header.get("v") != VERSION:
        raise ProtocolError(f"protocol version {header.get('v')!r} not supported (this bridge speaks v{VERSION})")
    if token is not None:
        given = header.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            raise ProtocolError("bad or missing token")
    kind = header.get("type")
    if kind not in allowed:
        raise ProtocolError(f"unknown message type {kind!r} (expected one of {', '.join(sorted(allowed))})")
    return header, frames[1] if len(frames) == 2 else None


def require(header: dict[str, Any], field: str, kind: type, what: str) -> Any:
    value = header.get(field)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProtocolError(f"{header.get('type')}.{field} must be {what}")
    return value


def check_submit(header: dict[str, Any]) -> None:
    require(header, "id", str, "a string")
    spec = require(header, "spec", dict, "an object (the worker spec)")
    for field in ("experimentFile", "step", "invocationHash", "outputRoot", "scratchDir", "resumeDir"):
        if not isinstance(spec.get(field), str) or spec.get(field) == "":
            raise ProtocolError(f"submit.spec.{field} must be a non-empty string")
    resources = require(header, "resources", dict, "an object { cpus, gpus, memoryMb }")
    for field in ("cpus", "gpus", "memoryMb"):
        value = resources.get(field)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ProtocolError(f"submit.resources.{field} must be a number >= 0")
    retries = header.get("maxRetries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ProtocolError("submit.maxRetries must be an integer >= 0")
