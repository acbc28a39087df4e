"""A small threaded HTTP server for local runs (`make run`), with no framework at all.

Production runs behind a FaaS runtime through an adapter; this one exists so the core
can be tried on a laptop with nothing but the standard library.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .engine import Engine
from .metrics import metrics_text

log = logging.getLogger("function.server")


def serve(engine: Engine, host: str, port: int) -> int:
    limit = engine.settings.max_body_bytes

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(400, {"error": {"type": "bad_request",
                                           "message": "Content-Length: expected a number"}})
                return
            # Read at most one byte past the limit: the engine answers 413 from that.
            body = self.rfile.read(min(length, limit + 1))
            if length > limit + 1:
                self.close_connection = True
            response = engine.handle_http(list(self.headers.items()), body)
            self._send(response.status, response.body)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                return self._write(200, *metrics_text())
            ok = self.path.startswith("/health")
            self._send(200 if ok else 404, {"status": "ok"} if ok else {"error": "not found"})

        def _send(self, status: int, body: object) -> None:
            self._write(status, "application/json", json.dumps(body).encode("utf-8"))

        def _write(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the engine logs one JSON line per alert already

    server = ThreadingHTTPServer((host, port), Handler)
    log.info(json.dumps({"message": "listening", "address": f"http://{host}:{port}/",
                         "policy": engine.policy.source, "cluster": engine.cluster,
                         "dry_run": engine.policy.dry_run or engine.settings.dry_run
                         or engine.kube is None}))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
