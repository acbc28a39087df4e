"""OpenFaaS python3-http: our adapter against an empty function, same template server.

    .venv/bin/python -m bench.adapters_openfaas

Both run in the template stand-in (tests/adapters/openfaas_template: Flask + waitress) from
the image layout, in the same Python 3.12 venv, and get the same request: Falcosidekick's
openfaas output (../shared/fixtures/wire/openfaas_gateway_direct.http). Ours runs dry (no
cluster). of-watchdog is not in front (the Go module proxy refuses it), so its proxy hop,
the same for both, is not counted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

from bench import load
from bench.adapters_kubeless import ROUNDS, report
from tests.adapters import runtimes
from tests.adapters.test_openfaas import TEMPLATE_REQUIREMENTS, image_layout, requirements
from tests.function.wire import SHARED, parse_wire
from tests.testbed import procs

EMPTY = "def handle(event, context):\n    return {'statusCode': 200, 'body': 'OK'}\n"


def main() -> int:
    venv = runtimes.venv("openfaas", "3.12", [*TEMPLATE_REQUIREMENTS, *requirements()])
    python = str(venv / "bin" / "python")
    request = parse_wire(SHARED / "wire" / "openfaas_gateway_direct.http")
    results: Dict[str, List[load.Load]] = {}
    colds: Dict[str, float] = {}
    servers: List[Tuple[str, int, procs.Process]] = []
    with tempfile.TemporaryDirectory(prefix="bench-openfaas-") as tmp:
        ours = image_layout(Path(tmp) / "ours")
        empty = image_layout(Path(tmp) / "empty")
        (empty / "function" / "handler.py").write_text(EMPTY)
        try:
            for label, folder in (("empty function", empty), ("falco-responder", ours)):
                port = procs.free_port()
                env = {**os.environ, "UPSTREAM_PORT": str(port), "PYTHONPATH": "",
                       "FALCO_RESPONDER_CLUSTER": "off", "FALCO_RESPONDER_LOG_LEVEL": "WARNING"}
                argv = [python, "index.py"]
                colds[label] = min(load.cold_start(argv, port, request.headers, request.body,
                                                   env=env, cwd=str(folder))
                                   for _ in range(3))
                server = procs.start(label, argv, Path(tmp) / f"{port}.log", env, folder)
                servers.append((label, port, server))
                procs.wait_until(lambda p=port: runtimes.answering(f"http://127.0.0.1:{p}/"),
                                 60, f"{label} answering", server)
            for _ in range(ROUNDS):
                for label, port, _server in servers:
                    result = load.run(port, request.headers, request.body)
                    assert set(result.statuses) == {200}, result.statuses
                    results.setdefault(label, []).append(result)
        finally:
            for _label, _port, server in servers:
                server.stop()
    report("OpenFaaS python3-http (Flask + waitress), openfaas output, 4 keep-alive clients, "
           "3000 requests", results, colds, load.import_seconds(python, "kubernetes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
