"""Knative func, legacy Python template (parliament-functions 0.1.0): ``main(context)``.

parliament serves ``POST /`` and hands us ``context.request`` (the Flask request) and
``context.cloud_event`` (a cloudevents 1.x event, or None when the body was not one).
parliament has no start hook and its readiness always says OK, so the engine (policy,
Kubernetes client, the large ``kubernetes`` import) is built here, when parliament imports
this module before it serves; a broken policy then answers 503 with the reason.
"""

from __future__ import annotations

from typing import Dict, Tuple, Union

from cloudevents.http import CloudEvent
from parliament import Context

from function import runtime
from function.engine import Response

# Ours, so a Broker can route outcomes (Trigger filter on this type) to notifiers.
RESPONSE_TYPE = "dev.falcoresponder.response.v1"
RESPONSE_SOURCE = "falco-responder"

Reply = Union[CloudEvent, Tuple[bytes, int, Dict[str, str]]]

runtime.start()


def main(context: Context) -> Reply:
    request = context.request
    event = context.cloud_event
    if event is None:
        # A plain JSON post (parliament's own CloudEvent parse failed): the core reads the
        # raw request, so a malformed CloudEvent gets the core's 400, not a guess here.
        result = runtime.handle_http(list(request.headers.items()), request.get_data())
        return _plain(result)
    result = runtime.handle_cloudevent(dict(event.get_attributes()), event.get_data(),
                                       list(request.headers.items()))
    if result.status != 200:
        return _plain(result)  # 400/401/413/503 pass through; a Broker retries only 5xx
    # parliament sends a returned CloudEvent in binary mode with status 200; it does not
    # set datacontenttype, so we do.
    return CloudEvent({"type": RESPONSE_TYPE, "source": RESPONSE_SOURCE,
                       "datacontenttype": "application/json"}, result.body)


def _plain(result: Response) -> Tuple[bytes, int, Dict[str, str]]:
    return result.body_bytes(), result.status, result.headers
