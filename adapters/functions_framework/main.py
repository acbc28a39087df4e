"""Google functions-framework (3.10.x) adapter: two targets over the one core.

    functions-framework --source adapters/functions_framework/main.py \
        --target cloud_event --signature-type cloudevent   # CloudEvents (binary/structured)
    functions-framework --source adapters/functions_framework/main.py \
        --target http --signature-type http                # plain JSON (webhook, http_output)

The framework has no start hook, so the engine (policy, Kubernetes client, the large
``kubernetes`` import) is built when the framework loads this module, before it serves.
"""

from __future__ import annotations

from typing import Dict, Tuple

import flask
import functions_framework
from cloudevents.http import CloudEvent

from function import runtime
from function.engine import Response

runtime.start()


@functions_framework.cloud_event
def cloud_event(event: CloudEvent) -> None:
    """A parsed CloudEvent. The framework ignores the return value and answers 200 "OK",
    so any other status is raised as a ready-made response: ``flask.abort(response)``
    (werkzeug wraps it in an HTTPException with no code, which Flask sends as it is and
    the framework's 500 crash handler never sees). 400/401/413 tell the sender not to
    retry; 503 lets a Knative Broker retry."""
    attributes = dict(event.get_attributes())  # context attributes and extensions
    headers = list(flask.request.headers.items())
    result = runtime.handle_cloudevent(attributes, event.get_data(), headers)
    if result.status != 200:
        flask.abort(_flask_response(result))


@functions_framework.http
def http(request: flask.Request) -> Tuple[bytes, int, Dict[str, str]]:
    """Plain Falco JSON (Falcosidekick's webhook output, Falco's http_output); the core
    also reads a CloudEvent sent here, from the raw headers and body."""
    if request.method == "GET" and request.path == "/metrics":
        content_type, body = runtime.metrics()
        return body, 200, {"Content-Type": content_type}
    result = runtime.handle_http(list(request.headers.items()), request.get_data())
    return result.body_bytes(), result.status, result.headers


def _flask_response(result: Response) -> flask.Response:
    return flask.Response(result.body_bytes(), status=result.status, headers=result.headers)
