"""A tiny threaded HTTP server that records every request it gets.

It stands where a function would be (a webhook target, a Knative broker, a Kubeless or
OpenFaaS function) so a test can assert on exactly what a real peer sent over the wire.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tests.testbed.netns import Host


@dataclass(frozen=True)
class Request:
    """One request as received: header names are kept, lookups ignore their case."""

    method: str
    path: str
    headers: Tuple[Tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """The first header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def header_dict(self) -> Dict[str, str]:
        """Headers with lower-cased names (the last one wins on repeats)."""
        return {key.lower(): value for key, value in self.headers}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, tuple(self.headers.items()), body)
        owner = self.server.owner
        with owner.condition:
            owner.requests.append(request)
            owner.condition.notify_all()
        payload = owner.response_body
        self.send_response(owner.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the recorded requests are what tests look at."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: Receiver


class Receiver:
    """An HTTP server on ``host:port`` (port 0: any free one) in a background thread;
    with ``netns`` (a network host) it listens inside it, by default on its address.

    ``url`` is its base URL; ``requests`` every request so far; ``wait_for(n)`` blocks until
    ``n`` have arrived. Answers every request with ``status`` and ``response_body``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, status: int = 200,
                 response_body: bytes = b"{}", netns: Optional[Host] = None) -> None:
        self.status = status
        self.response_body = response_body
        self.requests: List[Request] = []
        self.condition = threading.Condition()
        if netns is not None:
            host = netns.ip if host == "127.0.0.1" else host
            # The listening socket is made inside the namespace and stays there.
            with netns.entered():
                self._server = _Server((host, port), _Handler)
        else:
            self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"receiver-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> List[Request]:
        """The first ``count`` requests, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"receiver {self.url} got {len(self.requests)} request(s) within "
                        f"{timeout:.0f}s, expected {count}"
                    )
                self.condition.wait(left)
            return list(self.requests[:count])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
