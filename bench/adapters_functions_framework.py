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
import sys
import tempfile
from pathlib import Path

from bench.compare import Contender, compare, report
from tests.adapters import runtimes
from tests.adapters.test_functions_framework import ADAPTER, requirements
from tests.function.wire import SHARED, parse_wire
from tests.testbed.python import venv

EMPTY = """
import functions_framework

@functions_framework.cloud_event
def cloud_event(event):
    pass

@functions_framework.http
def http(request):
    return {"ok": True}
"""


def main() -> int:
    folder = venv("functions-framework", "3.11", requirements())
    python = str(folder / "bin" / "python")
    ff = str(folder / "bin" / "functions-framework")
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
