"""A small, bounded load generator and cold-start timer for the adapter benchmarks.

Loopback or the benchmark's own network hosts only: every address here is a server the
benchmark itself started, on 127.0.0.1 or on a test network host it made.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

Headers = Sequence[Tuple[str, str]]
Enter = Callable[[], ContextManager[None]]
_here: Enter = contextlib.nullcontext


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: Dict[int, int]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _one(conn: http.client.HTTPConnection, headers: Headers, body: bytes) -> int:
    conn.putrequest("POST", "/", skip_accept_encoding=True)
    for name, value in headers:
        if name.lower() not in ("content-length", "host"):
            conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    response.read()
    return response.status


def run_threads(target: Callable[[], None], count: int) -> float:
    """Seconds from starting ``count`` threads running ``target`` to the last one ending."""
    pool = [threading.Thread(target=target) for _ in range(count)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def run(port: int, headers: Headers, body: bytes, requests: int = 3000,
        threads: int = 4, address: str = "127.0.0.1", enter: Enter = _here) -> Load:
    """``requests`` POSTs from ``threads`` keep-alive clients; latency per request.
    ``enter()``: where each client thread makes its sockets (a network host's namespace)."""
    latencies: List[float] = []
    statuses: Dict[int, int] = {}
    lock = threading.Lock()
    per_thread = requests // threads

    def worker() -> None:
        with enter():
            work()

    def work() -> None:
        conn = http.client.HTTPConnection(address, port, timeout=30)
        mine: List[float] = []
        seen: Dict[int, int] = {}
        for _ in range(per_thread):
            start = time.perf_counter()
            try:
                status = _one(conn, headers, body)
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection(address, port, timeout=30)
                status = 0
            mine.append((time.perf_counter() - start) * 1000)
            seen[status] = seen.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    with enter():
        warm = http.client.HTTPConnection(address, port, timeout=30)
        for _ in range(100):
            _one(warm, headers, body)
        warm.close()
    elapsed = run_threads(worker, threads)
    latencies.sort()
    return Load(len(latencies), elapsed, statistics.median(latencies),
                latencies[int(len(latencies) * 0.99) - 1], statuses)


def cold_start(argv: Sequence[str], port: int, headers: Headers, body: bytes,
               env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
               timeout: float = 60.0, address: str = "127.0.0.1", enter: Enter = _here) -> float:
    """Seconds from process start to the first POST answered 200; the process and every
    process it started (a watchdog's function) are stopped."""
    started = time.perf_counter()
    process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - started < timeout:
            conn = http.client.HTTPConnection(address, port, timeout=5)
            try:
                with enter():  # the socket is made at the first request
                    if _one(conn, headers, body) == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.005)
            finally:
                conn.close()
        raise TimeoutError(f"{argv[0]} did not answer within {timeout}s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def import_seconds(python: str, module: str, runs: int = 3,
                   env: Optional[Dict[str, str]] = None) -> float:
    """Median seconds for a fresh interpreter to import ``module`` (minus a bare start)."""
    def timed(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([python, "-c", code], check=True, env=env)
        return time.perf_counter() - start

    bare = statistics.median(timed("pass") for _ in range(runs))
    return statistics.median(timed(f"import {module}") for _ in range(runs)) - bare
