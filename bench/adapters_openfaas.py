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

from bench.compare import Contender, compare, report
from tests.adapters import runtimes
from tests.adapters.test_openfaas import TEMPLATE_REQUIREMENTS, image_layout, requirements
from tests.function.wire import SHARED, parse_wire

EMPTY = "def handle(event, context):\n    return {'statusCode': 200, 'body': 'OK'}\n"


def main() -> int:
    venv = runtimes.venv("openfaas", "3.12", [*TEMPLATE_REQUIREMENTS, *requirements()])
    python = str(venv / "bin" / "python")
    request = parse_wire(SHARED / "wire" / "openfaas_gateway_direct.http")
    env = {**os.environ, "PYTHONPATH": "", "FALCO_RESPONDER_CLUSTER": "off"}
    with tempfile.TemporaryDirectory(prefix="bench-openfaas-") as tmp:
        ours = image_layout(Path(tmp) / "ours")
        empty = image_layout(Path(tmp) / "empty")
        (empty / "function" / "handler.py").write_text(EMPTY)
        contenders = [Contender(label, [python, "index.py"], str(folder), request.headers,
                                request.body, {"UPSTREAM_PORT": "{port}"})
                      for label, folder in (("empty function", empty), ("falco-responder", ours))]
        rows = compare(contenders, env)
    report("OpenFaaS python3-http (Flask + waitress), openfaas output", rows,
           [("falco-responder", "empty function")], python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
