"""functions-framework 3.10.x: our two targets against empty functions, same server.

    .venv/bin/python -m bench.adapters_functions_framework

Each pair runs in the real ``functions-framework`` server (gunicorn, its default 1 worker
x 4*CPU threads) in the same venv and gets the same request: Falcosidekick's binary
CloudEvent for ``cloud_event``, its webhook POST for ``http`` (../shared/fixtures/wire).
Ours runs dry (no cluster), so the numbers are the adapter + core cost, not Kubernetes
latency. Loopback only, bounded request counts.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bench import load
from tests.adapters import runtimes
from tests.adapters.test_functions_framework import ADAPTER, requirements
from tests.function.wire import SHARED, parse_wire
from tests.testbed import procs

ROUNDS = 3
EMPTY = """
import functions_framework

@functions_framework.cloud_event
def cloud_event(event):
    pass

@functions_framework.http
def http(request):
    return {"ok": True}
"""


@dataclass(frozen=True)
class Contender:
    label: str
    argv: Sequence[str]  # "{port}" is replaced by the port
    cwd: str
    headers: Sequence[Tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Row:
    label: str
    best: load.Load
    cold: float


def compare(contenders: Sequence[Contender], env: Dict[str, str]) -> List[Row]:
    """Cold start (best of 3) per contender, then ROUNDS alternating load runs each."""
    colds: Dict[str, float] = {}
    runs: Dict[str, List[load.Load]] = {}
    servers = []
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        try:
            for c in contenders:
                def argv(port: int, c: Contender = c) -> List[str]:
                    return [a.replace("{port}", str(port)) for a in c.argv]
                colds[c.label] = min(
                    load.cold_start(argv(port), port, c.headers, c.body, env=env, cwd=c.cwd)
                    for port in (procs.free_port() for _ in range(3)))
                port = procs.free_port()
                server = procs.start(c.label.replace(" ", "-"), argv(port),
                                     Path(tmp) / f"{port}.log", env, Path(c.cwd))
                servers.append((c, port, server))
                procs.wait_until(lambda p=port: _open(p), 60, f"{c.label} listening", server)
            # Alternate, so background load on the machine hits every contender alike.
            for _ in range(ROUNDS):
                for c, port, _server in servers:
                    result = load.run(port, c.headers, c.body)
                    assert set(result.statuses) == {200}, (c.label, result.statuses)
                    runs.setdefault(c.label, []).append(result)
        finally:
            for _c, _port, server in servers:
                server.stop()
    return [Row(label, max(done, key=lambda r: r.per_second), colds[label])
            for label, done in runs.items()]


def report(title: str, rows: Sequence[Row], pairs: Sequence[Tuple[str, str]],
           python: str) -> None:
    by = {row.label: row for row in rows}
    print(f"{title}; 4 keep-alive clients, 3000 requests, best of {ROUNDS} alternating rounds")
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
    print(f"`import kubernetes` alone takes {load.import_seconds(python, 'kubernetes'):.2f} s "
          "in this venv (paid when the module loads, before the first alert)")


def _open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    venv = runtimes.venv("functions-framework", "3.11", requirements())
    python = str(venv / "bin" / "python")
    ff = str(venv / "bin" / "functions-framework")
    event = parse_wire(SHARED / "wire" / "cloudevents_binary.http")
    webhook = parse_wire(SHARED / "wire" / "webhook_post.http")
    env = {**os.environ, "PYTHONPATH": str(runtimes.REPO), "FALCO_RESPONDER_CLUSTER": "off"}
    env.pop("FALCO_RESPONDER_TOKEN", None)
    with tempfile.TemporaryDirectory(prefix="bench-ff-") as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text(EMPTY)
        contenders = []
        for target, signature, request in (("cloud_event", "cloudevent", event),
                                           ("http", "http", webhook)):
            for label, source in ((f"empty {target}", empty),
                                  (f"falco-responder {target}", ADAPTER / "main.py")):
                argv = [ff, "--source", str(source), "--target", target, "--signature-type",
                        signature, "--host", "127.0.0.1", "--port", "{port}"]
                contenders.append(Contender(label, argv, tmp, request.headers, request.body))
        rows = compare(contenders, env)
    report("functions-framework 3.10 (gunicorn gthread)", rows,
           [("falco-responder cloud_event", "empty cloud_event"),
            ("falco-responder http", "empty http")], python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
