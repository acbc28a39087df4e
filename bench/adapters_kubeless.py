"""Kubeless (python3.8 runtime): our adapter against an empty function, same server.

    .venv/bin/python -m bench.adapters_kubeless

Both run in the runtime stand-in (tests/adapters/kubeless_server: bottle 0.12 + cherrypy,
one forkserver child per request), in the same Python 3.8 venv, and get the same request:
Falcosidekick's kubeless output (../shared/fixtures/wire/kubeless_direct.http). Ours runs dry
(no cluster), so the numbers are the adapter + core cost, not Kubernetes latency.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

from adapters.kubeless.bundle import bundle
from bench import load
from tests.adapters import runtimes
from tests.adapters.test_kubeless import RUNTIME, SERVER, requirements
from tests.function.wire import SHARED, parse_wire
from tests.testbed import procs

ROUNDS = 3
REQUESTS = 600  # every request forks a child: a few hundred per second at most
EMPTY = "def handler(event, context):\n    return 'OK'\n"


def main() -> int:
    python = str(runtimes.venv("kubeless", "3.8", [*RUNTIME, *requirements()]) / "bin" / "python")
    request = parse_wire(SHARED / "wire" / "kubeless_direct.http")
    results: Dict[str, List[load.Load]] = {}
    colds: Dict[str, float] = {}
    servers: List[Tuple[str, int, procs.Process]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kubeless-") as tmp:
        empty_dir, ours_dir = Path(tmp) / "empty", Path(tmp) / "ours"
        empty_dir.mkdir()
        (empty_dir / "empty.py").write_text(EMPTY)
        with zipfile.ZipFile(bundle(Path(tmp) / "f.zip")) as archive:
            archive.extractall(ours_dir)
        try:
            for label, folder, module in (("empty function", empty_dir, "empty"),
                                          ("falco-responder", ours_dir, "handler")):
                port = procs.free_port()
                env = {**os.environ, "MOD_NAME": module, "FUNC_HANDLER": "handler",
                       "FUNC_PORT": str(port), "KUBELESS_DIR": str(folder),
                       "PYTHONPATH": str(folder), "FALCO_RESPONDER_CLUSTER": "off",
                       "FALCO_RESPONDER_LOG_LEVEL": "WARNING"}
                argv = [python, str(SERVER)]
                colds[label] = min(load.cold_start(argv, port, request.headers, request.body,
                                                   env=env, cwd=str(SERVER.parent))
                                   for _ in range(3))
                server = procs.start(label, argv, Path(tmp) / f"{port}.log", env, SERVER.parent)
                servers.append((label, port, server))
                procs.wait_until(lambda p=port: runtimes.answering(
                    f"http://127.0.0.1:{p}/healthz"), 60, f"{label} answering", server)
            for _ in range(ROUNDS):  # alternate, so background load hits both alike
                for label, port, _server in servers:
                    result = load.run(port, request.headers, request.body, requests=REQUESTS)
                    assert set(result.statuses) == {200}, result.statuses
                    results.setdefault(label, []).append(result)
        finally:
            for _label, _port, server in servers:
                server.stop()
    report("Kubeless python3.8 (bottle + cherrypy, forkserver child per request), "
           f"kubeless output, 4 keep-alive clients, {REQUESTS} requests", results, colds,
           load.import_seconds(python, "kubernetes"))
    return 0


def report(title: str, results: Dict[str, List[load.Load]], colds: Dict[str, float],
           kubernetes_import: float) -> None:
    rows = [(label, max(runs, key=lambda r: r.per_second), colds[label])
            for label, runs in results.items()]
    (_, empty, empty_cold), (_, ours, ours_cold) = rows
    print(f"{title}, best of {ROUNDS} alternating rounds")
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
          "(paid at import, before the first alert)")


if __name__ == "__main__":
    sys.exit(main())
