"""Knative func (func-python 0.8.x): our adapter against an empty function, same server.

    .venv/bin/python -m bench.adapters_knative_func      (part of `make bench`)

Both run in func-python's CloudEvent middleware on hypercorn, in the same venv, and get
the same request: Falcosidekick's binary CloudEvent (../shared/fixtures/wire). Ours runs
dry (no cluster), so the numbers are the adapter + core cost, not Kubernetes latency.
Targets: throughput >= 80 % of the empty function's; cold start reported with what
dominates it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from bench import load
from tests.adapters import runtimes
from tests.adapters.test_knative_func import REQUIREMENTS, SCAFFOLD
from tests.function.wire import SHARED, parse_wire
from tests.testbed import procs

ROUNDS = 3
EMPTY = """
from cloudevents.core.v1.event import CloudEvent
from func_python.cloudevent import serve

class Empty:
    async def handle(self, scope, receive, send):
        await send.binary(CloudEvent(attributes={
            "type": "empty", "source": "empty", "id": "1", "specversion": "1.0"},
            data={"ok": True}))

def new():
    return Empty()

serve(new)
"""


def main() -> int:
    venv = runtimes.venv("knative-func", "3.12", REQUIREMENTS)
    python = str(venv / "bin" / "python")
    import subprocess

    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--force-reinstall", str(runtimes.REPO)],
                   check=True, capture_output=True)
    request = parse_wire(SHARED / "wire" / "cloudevents_binary.http")
    results: Dict[str, List[load.Load]] = {}
    colds: Dict[str, float] = {}
    servers = []
    with tempfile.TemporaryDirectory(prefix="bench-knative-") as tmp:
        try:
            for label, source in (("empty function", EMPTY), ("falco-responder", SCAFFOLD)):
                main_py = Path(tmp) / f"{label.split()[0]}.py"
                main_py.write_text(source)
                port = procs.free_port()
                env = {**os.environ, "LISTEN_ADDRESS": f"127.0.0.1:{port}", "PYTHONPATH": "",
                       "FALCO_RESPONDER_CLUSTER": "off"}
                colds[label] = min(load.cold_start([python, str(main_py)], port,
                                                   request.headers, request.body, env=env,
                                                   cwd=tmp) for _ in range(3))
                server = procs.start(label, [python, str(main_py)],
                                     Path(tmp) / f"{port}.log", env, Path(tmp))
                servers.append((label, port, server))
                procs.wait_until(lambda p=port: _open(p), 30, f"{label} listening", server)
            # Alternate the two, so background load on the machine hits both alike.
            for _ in range(ROUNDS):
                for label, port, _server in servers:
                    result = load.run(port, request.headers, request.body)
                    assert set(result.statuses) == {200}, result.statuses
                    results.setdefault(label, []).append(result)
        finally:
            for _label, _port, server in servers:
                server.stop()
    rows = [(label, max(runs, key=lambda r: r.per_second), colds[label])
            for label, runs in results.items()]
    kubernetes_import = load.import_seconds(python, "kubernetes")
    (_, empty, empty_cold), (_, ours, ours_cold) = rows
    print(f"Knative func (func-python 0.8, hypercorn), binary CloudEvent, 4 keep-alive clients, "
          f"3000 requests, best of {ROUNDS} alternating rounds")
    print("| function | alerts/s | p50 (ms) | p99 (ms) | cold start (s) |")
    print("|---|---|---|---|---|")
    for label, result, cold in rows:
        print(f"| {label} | {result.per_second:.0f} | {result.p50_ms:.2f} | "
              f"{result.p99_ms:.2f} | {cold:.2f} |")
    share = ours.per_second / empty.per_second
    print(f"throughput: {share:.0%} of the empty function (target >= 80%) -> "
          f"{'meets' if share >= 0.8 else 'MISSES'}")
    print(f"cold start: +{ours_cold - empty_cold:.2f} s over the empty function; "
          f"`import kubernetes` alone takes {kubernetes_import:.2f} s in this venv "
          "(paid in start(), before the first alert)")
    return 0


def _open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    sys.exit(main())
