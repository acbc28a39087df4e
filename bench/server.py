"""`make run`'s server alone, dry run (no cluster): keep-alive latency and 200 connections.

    make bench        (or: .venv/bin/python -m bench.server)

- keep-alive: 1,000 dry-run alerts one after another on one connection, p50 and p99
  (target: p50 <= 1 ms; http.server's two writes met the client's delayed ACK: 44 ms);
- 200 connections opened at once, each sending one alert: how many were reset or not
  answered 200 (target: 0; http.server's backlog of 5 reset 69-137 of them).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

from bench.contenders import ALERT, Contender, dry, make_run
from bench.load import run_threads

SEQUENTIAL, CONCURRENT = 1000, 200


def keep_alive(port: int, body: bytes) -> List[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for _ in range(SEQUENTIAL + 100):
        started = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return sorted(times[100:])  # the first 100 warm up


def concurrent(port: int, body: bytes) -> int:
    """Connections of CONCURRENT opened together that were not answered 200."""
    failed: List[str] = []
    gate = threading.Barrier(CONCURRENT)

    def one() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            gate.wait()
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failed.append(str(response.status))
            conn.close()
        except OSError as e:
            failed.append(type(e).__name__)

    run_threads(one, CONCURRENT)
    if failed:
        print("  failures:", sorted(set(failed)))
    return len(failed)


def main() -> int:
    body = json.dumps(ALERT).encode()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        server: Contender = dry(make_run)(Path(tmp), Path(tmp) / "none")
        server.start(Path(tmp))
        try:
            times = keep_alive(server.port, body)
            lost = concurrent(server.port, body)
        finally:
            server.stop()
    p50, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
    print(f"`make run` server, dry run; load average {os.getloadavg()[0]:.1f} (2 cores)")
    print("| keep-alive p50 / p99 | 200 connections at once: not answered 200 |")
    print("|---|---|")
    print(f"| {p50:.2f} / {p99:.2f} ms | {lost} |")
    ok = p50 <= 1.0 and lost == 0
    print(f"target: p50 <= 1 ms and 0 lost -> {'meets' if ok else 'MISSES'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
