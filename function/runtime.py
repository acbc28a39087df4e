"""One engine per process, for the runtime adapters.

Adapters call :func:`start` from their runtime's start hook (or at import, where the
runtime has none) so the policy, the Kubernetes client and the large ``kubernetes`` import
are paid before the first alert. An invalid policy or setting does not crash the process:
it is logged once as one JSON line, readiness says why, and every request gets 503 with
that reason until the function is fixed and restarted, so nothing runs half-configured.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Mapping, Optional, Tuple

from .engine import Engine, Response
from .errors import ResponderError, Unavailable
from .metrics import METRICS, metrics_text
from .settings import Settings

log = logging.getLogger("function")

_lock = threading.Lock()
_engine: Optional[Engine] = None
_failure: Optional[str] = None


def start(env: Optional[Mapping[str, str]] = None, *, cluster: bool = True) -> Tuple[bool, str]:
    """Build the process's engine once; returns readiness (ok, reason)."""
    global _engine, _failure
    with _lock:
        if _engine is None and _failure is None:
            try:
                settings = Settings.from_env(env)
                logging.basicConfig(level=settings.log_level, format="%(message)s")
                _engine = Engine.from_settings(settings, cluster=cluster)
                log.info(json.dumps({"message": "started", "policy": _engine.policy.source,
                                     "cluster": _engine.cluster,
                                     "guard_state": _engine.state.kind}))
                if settings.metrics_port:
                    METRICS.serve_port(settings.metrics_port)
            except ResponderError as e:
                _failure = e.message
                log.error(json.dumps({"message": "refusing to start", "error": e.message}))
    return ready()


def ready() -> Tuple[bool, str]:
    if _engine is not None:
        problem = _engine.permissions.problem()
        if problem:
            return False, f"not ready: {problem}"
        return True, f"ready: policy {_engine.policy.source}; {_engine.cluster}"
    return False, f"not ready: {_failure or 'not started'}"


def may_block() -> bool:
    """Whether handling an alert may wait on the network (a cluster is configured).

    Async runtimes run the core in a worker thread only then: without a cluster every
    decision is pure computation, and a thread hop would cost more than the decision.
    """
    return _engine is not None and _engine.kube is not None


def engine() -> Engine:
    """The started engine; starts it on first use where the runtime has no start hook."""
    if _engine is None:
        start()
    if _engine is None:
        raise Unavailable(ready()[1])
    return _engine


def reset() -> None:
    """Forget the engine (tests, and a runtime's stop hook)."""
    global _engine, _failure
    with _lock:
        _engine, _failure = None, None


def metrics() -> Tuple[str, bytes]:
    """(Content-Type, body) for a runtime's GET /metrics route."""
    return metrics_text()


def _serve(call: Callable[[Engine], Response]) -> Response:
    try:
        current = engine()
    except Unavailable as e:
        return Response(e.status, e.to_json())
    return call(current)


def handle_http(headers: Any, body: Optional[bytes]) -> Response:
    return _serve(lambda e: e.handle_http(headers, body))


def handle_cloudevent(attributes: Mapping[str, Any], data: Any,
                      headers: Any = None) -> Response:
    return _serve(lambda e: e.handle_cloudevent(attributes, data, headers))


def handle_payload(headers: Any, data: Any) -> Response:
    return _serve(lambda e: e.handle_payload(headers, data))
