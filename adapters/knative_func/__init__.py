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
from typing import Any, Dict, List, Mapping, Optional, Tuple

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
        # The core blocks on Kubernetes calls: keep the event loop free for other requests.
        response = await asyncio.get_running_loop().run_in_executor(
            None, runtime.handle_cloudevent, attributes, event.get_data(), headers)
        await send.binary(reply_event(response.status, response.body,
                                      subject=_subject(response.body)), response.status)


def reply_event(status: int, body: Dict[str, Any], subject: Optional[str] = None) -> Any:
    from cloudevents.core.v1.event import CloudEvent

    attributes = {"type": RESPONSE_TYPE if status == 200 else ERROR_TYPE, "source": SOURCE,
                  "id": str(uuid.uuid4()), "specversion": "1.0",
                  "datacontenttype": "application/json"}
    if subject:
        attributes["subject"] = subject
    return CloudEvent(attributes=attributes, data=body)


def _subject(body: Dict[str, Any]) -> Optional[str]:
    alert = body.get("alert") or {}
    target = alert.get("target")
    return str(target) if target else None


def new() -> Function:
    return Function()
