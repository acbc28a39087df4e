"""`make run`'s HTTP server: the core behind waitress.

waitress (Pylons; pure Python, no dependencies, the server of OpenFaaS's python3-http
template) owns HTTP itself: strict Content-Length and chunked framing, request size limits,
``Expect: 100-continue``, pipelining, ``TCP_NODELAY``, a listen backlog of 1024, and reading
on one event loop so a slow or idle socket holds no thread. This module only hands a
request that arrived whole to the engine and writes the engine's Response back; a request
cut short is closed unanswered and never decided.

Two limits waitress does not have are added here: a request must arrive whole within
``REQUEST_SECONDS`` of its first byte (a sender trickling a byte at a time is not idle to
waitress), and an idle connection is closed after ``IDLE_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from .engine import Engine
from .metrics import metrics_text

log = logging.getLogger("function.server")

#: An idle keep-alive connection, or a request that stopped arriving, is closed after
#: this; waitress looks every CLEANUP_SECONDS and its loop wakes every second, so the
#: socket is closed within IDLE_SECONDS + 2 s.
IDLE_SECONDS = 7
#: A request must arrive whole (headers and body) within this of its first byte.
REQUEST_SECONDS = 7
CLEANUP_SECONDS = 1
#: Worker threads: alerts that wait on the Kubernetes API wait in parallel.
THREADS = 8
#: Headers of a Falco alert are a few hundred bytes; a CloudEvent's, a few kB.
MAX_HEADER_BYTES = 64 * 1024

#: A GET route: () -> (status, content type, body).
Route = Callable[[], Tuple[int, str, bytes]]
StartResponse = Callable[[str, List[Tuple[str, str]]], Any]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _json(status: int, body: object) -> Tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode("utf-8")


def default_routes(engine: Engine) -> Dict[str, Route]:
    """GET routes besides the alert endpoint. The engine is built before the server listens,
    so a server that answers is alive; it is ready unless the start-up check of its own
    permissions found some missing."""
    alive: Route = lambda: _json(200, {"status": "ok"})  # noqa: E731

    def ready() -> Tuple[int, str, bytes]:
        problem = engine.permissions.problem()
        if problem:
            return _json(503, {"status": "not ready", "reason": problem})
        return _json(200, {"status": "ok"})

    return {"/health": alive, "/health/liveness": alive, "/health/readiness": ready,
            "/metrics": lambda: (200, *metrics_text())}


class App:
    """The WSGI application: POST (any path) is an alert, GET is a route, HEAD its head."""

    def __init__(self, engine: Engine, routes: Optional[Dict[str, Route]] = None) -> None:
        self.engine = engine
        self.routes = default_routes(engine) if routes is None else routes

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "POST":
            # waitress calls us only once the body is whole, its length checked.
            body = environ["wsgi.input"].read()
            response = self.engine.handle_http(_headers(environ), body)
            status, kind, data = response.status, "application/json", response.body_bytes()
        elif method in ("GET", "HEAD"):
            route = self.routes.get(environ.get("PATH_INFO") or "/")
            status, kind, data = route() if route else _json(
                404, {"error": {"type": "not_found", "message": "not found"}})
        else:
            status, kind, data = _json(405, {"error": {
                "type": "method_not_allowed",
                "message": f"method {method[:20]!r} not allowed: POST an alert"}})
        headers = [("Content-Type", kind), ("Content-Length", str(len(data)))]
        if status == 405:
            headers.append(("Allow", "POST, GET, HEAD"))
        start_response(f"{status} {_REASONS.get(status, 'Unknown')}", headers)
        return [b""] if method == "HEAD" else [data]


def _headers(environ: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The request's headers from WSGI's CGI-style names (the engine lower-cases them)."""
    headers = [(key[5:].replace("_", "-"), value) for key, value in environ.items()
               if key.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            headers.append((name, environ[key]))
    return headers


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's parser, remembering when the request's first byte came."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()


class _Channel(HTTPChannel):  # type: ignore[misc]
    parser_class = _Parser

    def send_continue(self) -> None:
        # waitress would answer "100 Continue" to a request it has already refused (a
        # declared length over the limit) and then read that body; refuse it at once.
        if self.request.error is None:
            super().send_continue()


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        # waitress closes connections idle for channel_timeout; a request still arriving
        # after REQUEST_SECONDS is closed too, however steadily it trickles.
        super().maintenance(now)
        cutoff = time.monotonic() - REQUEST_SECONDS
        for channel in list(self.active_channels.values()):
            request = channel.request
            if request is not None and not request.completed and request.started < cutoff:
                channel.will_close = True


def create(engine: Engine, host: str, port: int,
           routes: Optional[Dict[str, Route]] = None) -> Any:
    """A bound, listening server (``.run()`` serves, ``.close()`` stops)."""
    # One byte over the limit reaches the engine, which answers that with its own 413;
    # waitress answers a declared length over it before reading the body.
    adj = Adjustments(
        host=host, port=port, threads=THREADS, channel_timeout=IDLE_SECONDS,
        cleanup_interval=CLEANUP_SECONDS, max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=engine.settings.max_body_bytes + 2, connection_limit=1000,
        backlog=1024, ident="falco-responder", expose_tracebacks=False)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return _Server(App(engine, routes), {}, dispatcher=dispatcher, adj=adj,
                   sockinfo=adj.listen[0])


def serve(engine: Engine, host: str, port: int) -> int:
    server = create(engine, host, port)
    log.info(json.dumps({"message": "listening",
                         "address": f"http://{server.effective_host}:{server.effective_port}/",
                         "policy": engine.policy.source, "cluster": engine.cluster,
                         "dry_run": engine.policy.dry_run or engine.settings.dry_run
                         or engine.kube is None}))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
