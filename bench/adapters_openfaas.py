"""OpenFaaS python3-http: our function against an empty one, both behind the real watchdog.

    .venv/bin/python -m bench.adapters_openfaas      (part of `make bench`)

Both are the image ``faas-cli build --shrinkwrap`` describes, realised as its Dockerfile
builds it (``tests.testbed.openfaas``): the real of-watchdog in ``mode=http`` in front of
the template's own ``index.py`` (Flask + waitress), the same virtualenv, each on a network
host of its own (the template's port 5000 is fixed). The empty one is the same image with
``handler.py`` replaced. They get the same request: Falcosidekick's openfaas output
(../shared/fixtures/wire/openfaas_gateway_direct.http). Ours runs dry (no cluster). Only the
benchmark's own hosts are sent to, with bounded request counts.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.compare import Contender, compare, report
from tests.function.wire import SHARED, parse_wire
from tests.testbed import openfaas
from tests.testbed.netns import create_network
from tests.testbed.python import venv

EMPTY = "def handle(event, context):\n    return {'statusCode': 200, 'body': 'OK'}\n"


def main() -> int:
    request = parse_wire(SHARED / "wire" / "openfaas_gateway_direct.http")
    spec = openfaas.stack()["functions"]["falco-responder"]
    stack_env = {k: str(v) for k, v in spec["environment"].items()
                 if k != "FALCO_RESPONDER_TOKEN_FILE"}
    with tempfile.TemporaryDirectory(prefix="bench-openfaas-") as tmp:
        context = openfaas.shrinkwrap(copy_to=Path(tmp) / "context")
        network = create_network(Path(tmp) / "network")
        try:
            contenders = []
            for label in ("empty function", "falco-responder"):
                image = openfaas.realise(context, Path(tmp) / label.split()[0])
                if label == "empty function":
                    (image.home_app / "function" / "handler.py").write_text(EMPTY)
                python_bin = venv("openfaas", "3.12", image.requirements) / "bin"
                host = network.host(label.split()[0])
                workdir = Path(tmp) / f"{label.split()[0]}-run"
                env = openfaas.environment(image, python_bin, stack_env)
                argv = host.exec_argv(openfaas.watchdog_argv(workdir, image, env))
                contenders.append(Contender(
                    label, argv, tmp, request.headers, request.body, env, host=host,
                    fixed_port=openfaas.PORT))
            rows = compare(contenders, {"FALCO_RESPONDER_CLUSTER": "off"})
        finally:
            network.delete()
    report("OpenFaaS python3-http behind of-watchdog 0.11.6 (Flask + waitress), openfaas "
           "output", rows, [("falco-responder", "empty function")],
           str(python_bin / "python"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
