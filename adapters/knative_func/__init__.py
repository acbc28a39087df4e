"""Knative Functions, current (func-python 0.8.x): the instance ``new()`` returns.

func's scaffolding does ``from function import new`` and serves it with
``func_python.cloudevent.serve``: the middleware parses the request into a cloudevents 2.x
event at ``scope["event"]`` (a request that is not a CloudEvent gets 400 before this code
runs) and ``send`` becomes a CloudEvent sender. This module only translates: the event's
attributes and data go to the core, and the core's decision comes back as a CloudEvent
(type ``dev.falcoresponder.response.v1``, or ``...error.v1`` with the core's status), so a
Broker can route outcomes to notifiers and retries what answered 503.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List, Mapping, Tuple

from function import runtime

RESPONSE_TYPE = "dev.falcoresponder.response.v1"
ERROR_TYPE = "dev.falcoresponder.error.v1"
SOURCE = "falco-responder"


class Function:
    def start(self, cfg: Mapping[str, str]) -> None:
        # Policy, Kubernetes client and the kubernetes import, before the first alert.
        runtime.start(dict(cfg))

    def stop(self) -> None:
        runtime.reset()

    def alive(self) -> Tuple[bool, str]:
        return True, "alive"

    def ready(self) -> Tuple[bool, str]:
        return runtime.ready()

    async def handle(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        event = scope["event"]
        headers: List[Tuple[str, str]] = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        attributes = {k: v for k, v in event.get_attributes().items() if v is not None}
        data = event.get_data()
        if runtime.may_block():
            # Kubernetes calls block: keep the event loop free for other requests.
            response = await asyncio.get_running_loop().run_in_executor(
                None, runtime.handle_cloudevent, attributes, data, headers)
        else:
            response = runtime.handle_cloudevent(attributes, data, headers)
        body = response.body_bytes()
        await send.http({"type": "http.response.start", "status": response.status,
                         "headers": [*reply_headers(response.status, response.body),
                                     (b"content-length", str(len(body)).encode())]})
        await send.http({"type": "http.response.body", "body": body})


def reply_headers(status: int, body: Dict[str, Any]) -> List[Tuple[bytes, bytes]]:
    """A binary-mode CloudEvent reply, written directly: the SDK's encoder validates and
    re-encodes what the core already produced, at a cost per alert we need not pay."""
    headers = [(b"ce-specversion", b"1.0"),
               (b"ce-type", (RESPONSE_TYPE if status == 200 else ERROR_TYPE).encode()),
               (b"ce-source", SOURCE.encode()),
               (b"ce-id", str(uuid.uuid4()).encode()),
               (b"content-type", b"application/json")]
    target = (body.get("alert") or {}).get("target")
    if target:
        headers.append((b"ce-subject", str(target).encode()))
    return headers


def new() -> Function:
    return Function()
