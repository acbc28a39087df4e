"""Our adapter against an empty function on the same runtime server, for every runtime.

Each contender is started once for its cold start (best of 3: process start to the first
alert answered), then served while the load runs in alternating rounds, so background load
on the machine hits every contender alike. Loopback or the benchmark's own network hosts
only, bounded request counts.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager, Dict, List, Optional, Sequence, Tuple

from bench import load
from tests.testbed import procs
from tests.testbed.netns import Host

ROUNDS = 3


@dataclass(frozen=True)
class Contender:
    label: str
    argv: Sequence[str]  # "{port}" is replaced by the port, here and in env values
    cwd: str
    headers: Sequence[Tuple[str, str]]
    body: bytes
    env: Dict[str, str] = field(default_factory=dict)
    #: A network host it runs on (argv already enters it) at ``fixed_port``, for servers
    #: whose ports are fixed (the watchdog's 8080, its function's 5000): one host each.
    host: Optional[Host] = None
    fixed_port: int = 8080

    def port(self) -> int:
        return self.fixed_port if self.host is not None else procs.free_port()

    def address(self) -> str:
        return self.host.ip if self.host is not None else "127.0.0.1"

    def enter(self) -> ContextManager[None]:
        return self.host.entered() if self.host is not None else contextlib.nullcontext()

    def open(self, port: int) -> bool:
        if self.host is not None:
            return self.host.connectable(port, self.host.ip)
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    def at(self, port: int) -> Tuple[List[str], Dict[str, str]]:
        fill = str(port)
        return ([a.replace("{port}", fill) for a in self.argv],
                {k: v.replace("{port}", fill) for k, v in self.env.items()})


@dataclass(frozen=True)
class Row:
    label: str
    best: load.Load
    cold: float


def compare(contenders: Sequence[Contender], env: Dict[str, str],
            requests: int = 3000) -> List[Row]:
    colds: Dict[str, float] = {}
    runs: Dict[str, List[load.Load]] = {}
    servers = []
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        try:
            for c in contenders:
                times = []
                for _ in range(3):
                    port = c.port()
                    argv, extra = c.at(port)
                    times.append(load.cold_start(argv, port, c.headers, c.body,
                                                 env={**env, **extra}, cwd=c.cwd,
                                                 address=c.address(), enter=c.enter))
                colds[c.label] = min(times)
                port = c.port()
                argv, extra = c.at(port)
                server = procs.start(c.label.replace(" ", "-"), argv,
                                     Path(tmp) / f"{port}.log", {**env, **extra}, Path(c.cwd))
                servers.append((c, port, server))
                procs.wait_until(lambda c=c, p=port: c.open(p), 60, f"{c.label} listening",
                                 server)
            for _ in range(ROUNDS):
                for c, port, _server in servers:
                    result = load.run(port, c.headers, c.body, requests=requests,
                                      address=c.address(), enter=c.enter)
                    assert set(result.statuses) == {200}, (c.label, result.statuses)
                    runs.setdefault(c.label, []).append(result)
        finally:
            for _c, _port, server in servers:
                server.stop()
    return [Row(label, max(done, key=lambda r: r.per_second), colds[label])
            for label, done in runs.items()]


def report(title: str, rows: Sequence[Row], pairs: Sequence[Tuple[str, str]],
           python: str, requests: int = 3000,
           python_env: Optional[Dict[str, str]] = None) -> None:
    by = {row.label: row for row in rows}
    print(f"{title}; 4 keep-alive clients, {requests} requests, best of {ROUNDS} "
          "alternating rounds")
    print("| function | alerts/s | p50 (ms) | p99 (ms) | cold start (s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.label} | {row.best.per_second:.0f} | {row.best.p50_ms:.2f} | "
              f"{row.best.p99_ms:.2f} | {row.cold:.2f} |")
    for ours, empty in pairs:
        share = by[ours].best.per_second / by[empty].best.per_second
        print(f"{ours}: throughput {share:.0%} of {empty} (target >= 80%) -> "
              f"{'meets' if share >= 0.8 else 'MISSES'}; cold start "
              f"+{by[ours].cold - by[empty].cold:.2f} s")
    seconds = load.import_seconds(python, "kubernetes", env=python_env)
    print(f"`import kubernetes` alone takes {seconds:.2f} s "
          "in this venv (paid before the first alert: at start, or when the module loads)")

