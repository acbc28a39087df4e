"""OpenFaaS python3-http template: ``handle(event, context)`` over the one core.

The template (Flask + waitress behind of-watchdog in ``mode=http``) imports this module
before it serves, so the engine (policy, Kubernetes client, the large ``kubernetes`` import)
is built here, off the request path; a broken policy then answers 503 with the reason.
The token, if any, is read from the OpenFaaS secret named in ``FALCO_RESPONDER_TOKEN_FILE``
(``/var/openfaas/secrets/<name>``).
"""

from __future__ import annotations

from typing import Any, Dict

from function import runtime  # the core, under the template's package name (__init__.py)

runtime.start()


def handle(event: Any, context: Any) -> Dict[str, Any]:
    if event.method == "GET" and event.path == "/metrics":
        content_type, body = runtime.metrics()
        return {"statusCode": 200, "body": body.decode("utf-8"),
                "headers": {"Content-Type": content_type}}
    result = runtime.handle_http(list(event.headers.items()), event.body)
    # A str body is sent as it is (a dict would be re-encoded by jsonify): the core's JSON,
    # encoded once, with its own Content-Type and status.
    return {"statusCode": result.status, "body": result.body_bytes().decode("utf-8"),
            "headers": dict(result.headers)}
