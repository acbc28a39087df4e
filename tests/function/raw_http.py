"""Raw HTTP/1.1 over a socket, for requests no well-behaved client would send."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def post_bytes(body: bytes, headers: Optional[List[str]] = None, path: str = "/") -> bytes:
    """A well-formed POST with ``body``; ``headers`` are extra 'Name: value' lines."""
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(headers or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Reader:
    """Replies read one by one from a socket (pipelined replies included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def reply(self) -> Optional[Reply]:
        """The next reply, or None when the server closed the connection first."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._more():
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            return Reply(100, headers, b"")
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._more():
                raise ConnectionError("connection closed inside a reply body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Reply(status, headers, body)

    def closed_within(self, seconds: float) -> Optional[float]:
        """Seconds until the server closed the connection (nothing else arriving), or None
        when it was still open after ``seconds``."""
        started = time.monotonic()
        self.sock.settimeout(seconds)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return time.monotonic() - started
                self.buffer += data
        except socket.timeout:
            return None
        except ConnectionResetError:
            return time.monotonic() - started


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> Optional[Reply]:
    """Send ``raw`` on a new connection and read one reply (None: closed unanswered)."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return Reader(sock).reply()
