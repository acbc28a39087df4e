"""A small delaying proxy in front of the real API server, for faults it cannot produce on
demand: an answer that arrives too late (the request was carried out, its answer lost).

It terminates TLS with the API server's own serving certificate (so clients verify it
against the test bed's CA, as they verify the API server), passes every request on to the
real API server unchanged, and holds the answers of the chosen methods for ``delay``
seconds before relaying them. It never answers anything itself.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Collection, List, Optional, Tuple
from urllib.parse import urlparse

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class DelayingProxy:
    def __init__(self, upstream: str, ca_file: Path, cert: Path, key: Path) -> None:
        self.delay = 0.0
        self.methods: Optional[Collection[str]] = None  # None: every method
        self.seen: List[Tuple[str, str]] = []
        target = urlparse(upstream)
        upstream_tls = ssl.create_default_context(cafile=str(ca_file))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPSConnection(target.hostname, target.port,
                                                   context=upstream_tls, timeout=30)
                try:
                    conn.request(self.command, self.path, body, headers)
                    answer = conn.getresponse()
                    data = answer.read()
                finally:
                    conn.close()
                outer.seen.append((self.command, self.path))
                if outer.methods is None or self.command in outer.methods:
                    time.sleep(outer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in _HOP:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True  # the client gave up waiting: the point

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(cert), str(key))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, delay: float, methods: Optional[Collection[str]] = None) -> None:
        """From now on, answers to ``methods`` (None: all) wait ``delay`` seconds."""
        self.methods = methods
        self.delay = delay

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
