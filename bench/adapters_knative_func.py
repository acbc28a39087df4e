"""Knative func (func-python 0.8.x): our adapter against an empty function, same server.

    .venv/bin/python -m bench.adapters_knative_func      (part of `make bench`)

Both run in func-python's CloudEvent middleware on hypercorn, in the same venv (this
repository installed as func installs it), and get the same request: Falcosidekick's binary
CloudEvent (../shared/fixtures/wire). Ours runs dry (no cluster), so the numbers are the
adapter + core cost, not Kubernetes latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.compare import Contender, compare, report
from tests.adapters import runtimes
from tests.adapters.test_knative_func import REQUIREMENTS, SCAFFOLD
from tests.function.wire import SHARED, parse_wire

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
    python = str(runtimes.venv("knative-func", "3.12", REQUIREMENTS) / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--force-reinstall", str(runtimes.REPO)],
                   check=True, capture_output=True)
    request = parse_wire(SHARED / "wire" / "cloudevents_binary.http")
    env = {**os.environ, "PYTHONPATH": "", "FALCO_RESPONDER_CLUSTER": "off"}
    with tempfile.TemporaryDirectory(prefix="bench-knative-") as tmp:
        contenders = []
        for label, source in (("empty function", EMPTY), ("falco-responder", SCAFFOLD)):
            main_py = Path(tmp) / f"{label.split()[0]}.py"
            main_py.write_text(source)
            contenders.append(Contender(label, [python, str(main_py)], tmp, request.headers,
                                        request.body, {"LISTEN_ADDRESS": "127.0.0.1:{port}"}))
        rows = compare(contenders, env)
    report("Knative func (func-python 0.8, hypercorn), binary CloudEvent", rows,
           [("falco-responder", "empty function")], python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
