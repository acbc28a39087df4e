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

from adapters.kubeless.bundle import bundle
from bench.compare import Contender, compare, report
from tests.adapters import runtimes
from tests.adapters.test_kubeless import RUNTIME, SERVER, requirements
from tests.function.wire import SHARED, parse_wire

REQUESTS = 600  # every request forks a child: a few hundred per second at most
EMPTY = "def handler(event, context):\n    return 'OK'\n"


def main() -> int:
    python = str(runtimes.venv("kubeless", "3.8", [*RUNTIME, *requirements()]) / "bin" / "python")
    request = parse_wire(SHARED / "wire" / "kubeless_direct.http")
    env = {**os.environ, "FALCO_RESPONDER_CLUSTER": "off"}
    with tempfile.TemporaryDirectory(prefix="bench-kubeless-") as tmp:
        empty_dir, ours_dir = Path(tmp) / "empty", Path(tmp) / "ours"
        empty_dir.mkdir()
        (empty_dir / "empty.py").write_text(EMPTY)
        with zipfile.ZipFile(bundle(Path(tmp) / "f.zip")) as archive:
            archive.extractall(ours_dir)
        contenders = [
            Contender(label, [python, str(SERVER)], str(SERVER.parent), request.headers,
                      request.body, {"MOD_NAME": module, "FUNC_HANDLER": "handler",
                                     "FUNC_PORT": "{port}", "KUBELESS_DIR": str(folder),
                                     "PYTHONPATH": str(folder),
                                     "FALCO_RESPONDER_STATE_FILE": f"{tmp}/guards.json"})
            for label, folder, module in (("empty function", empty_dir, "empty"),
                                          ("falco-responder", ours_dir, "handler"))]
        rows = compare(contenders, env, requests=REQUESTS)
    report("Kubeless python3.8 (bottle + cherrypy, forkserver child per request), kubeless "
           "output", rows, [("falco-responder", "empty function")], python, REQUESTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
