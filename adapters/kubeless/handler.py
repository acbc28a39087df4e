"""Kubeless python runtime (python3.8 image: bottle 0.12 + cherrypy): ``handler(event, context)``.

The runtime imports this module (``MOD_NAME=handler``) in its server and, through its
forkserver preload, once more in the process that every request's child is forked from, then
calls :func:`handler` in that child and ships the result back by pickling it. The engine
(policy, Kubernetes client, the large ``kubernetes`` import) is therefore built here, at
import, so each child inherits it ready instead of paying for it per alert.
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Tuple

import bottle  # provided by the Kubeless runtime image

from function import runtime

# Each request runs in a child process that exits after it: dedup and the blast-radius
# counts must live where every child of this pod sees them, not in the child's memory.
os.environ.setdefault("FALCO_RESPONDER_STATE_FILE", "/tmp/falco-responder/guards.json")
runtime.start()


def handler(event: Mapping[str, Any], context: Mapping[str, Any]) -> bottle.HTTPResponse:
    # `data` is the parsed JSON only for `Content-Type: application/json` exactly (what
    # Falcosidekick's kubeless output sends), otherwise the raw bytes: the core takes both.
    request = event["extensions"]["request"]
    result = runtime.handle_payload(_headers(request), event["data"])
    # An HTTPResponse is the one reply the runtime sends with our status (a dict would be a
    # 200); it pickles, so it survives the trip back from the child process.
    return bottle.HTTPResponse(result.body_bytes(), result.status, dict(result.headers))


def _headers(request: Any) -> List[Tuple[str, str]]:
    """The request copy's headers (its WSGI environ survives pickling, the body stream not)."""
    return list(request.headers.items())
